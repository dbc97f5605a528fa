/**
 * Singular values in float64 for the Jacobian experiment: a cyclic Jacobi
 * eigen-solver for symmetric matrices, applied to the Gram matrix of the
 * smaller side of J (JᵀJ or JJᵀ; both have the squared singular values as
 * their nonzero eigenvalues).
 *
 * Precision: forming the Gram matrix squares the condition number, so a
 * singular value below about 1e-7·σ_max is not resolved (its square drowns
 * in the rounding of σ_max², ~1e-16·σ_max²). Such values come out as ≈ 0 or a
 * few 1e-8·σ_max; they are reported, not hidden.
 */

/**
 * Eigenvalues of the symmetric n×n matrix `a` (row-major; only read, not
 * changed), by cyclic Jacobi rotations until the off-diagonal part is below
 * 1e-15 of the matrix's Frobenius norm (or `maxSweeps`). Sorted descending.
 */
export function symmetricEigenvalues(a: ArrayLike<number>, n: number, maxSweeps = 60): Float64Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`symmetricEigenvalues: n must be a non-negative integer; got ${n}`);
  if (a.length !== n * n) throw new Error(`symmetricEigenvalues: expected ${n}×${n} = ${n * n} values; got ${a.length}`);
  const A = Float64Array.from(a);
  let norm = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const v = A[i * n + j];
      if (!Number.isFinite(v)) throw new Error(`symmetricEigenvalues: the matrix holds ${v} at (${i}, ${j})`);
      if (j > i && Math.abs(v - A[j * n + i]) > 1e-12 * (Math.abs(v) + Math.abs(A[j * n + i]) + 1e-300)) {
        throw new Error(`symmetricEigenvalues: the matrix is not symmetric at (${i}, ${j}): ${v} vs ${A[j * n + i]}`);
      }
      norm += v * v;
    }
  }
  const tol = 1e-15 * Math.sqrt(norm);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += A[i * n + j] * A[i * n + j];
    if (Math.sqrt(2 * off) <= tol) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0 || Math.abs(apq) < 1e-300) continue;
        const app = A[p * n + p];
        const aqq = A[q * n + q];
        // The rotation that zeroes A[p][q] (Golub & Van Loan, Algorithm 8.5.1).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // Rows and columns p, q of A ← RᵀAR, written once per symmetric pair.
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue;
          const akp = A[k * n + p];
          const akq = A[k * n + q];
          const kp = c * akp - s * akq;
          const kq = s * akp + c * akq;
          A[k * n + p] = kp;
          A[p * n + k] = kp;
          A[k * n + q] = kq;
          A[q * n + k] = kq;
        }
        A[p * n + p] = app - t * apq;
        A[q * n + q] = aqq + t * apq;
        A[p * n + q] = 0;
        A[q * n + p] = 0;
      }
    }
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = A[i * n + i];
  return out.sort().reverse();
}

/**
 * The min(rows, cols) singular values of the rows×cols matrix `j`
 * (row-major), descending: square roots of the eigenvalues of the Gram
 * matrix of the smaller side (negative rounding residue clamps to 0).
 */
export function singularValues(j: ArrayLike<number>, rows: number, cols: number): Float64Array {
  if (j.length !== rows * cols) throw new Error(`singularValues: expected ${rows}×${cols} = ${rows * cols} values; got ${j.length}`);
  const wide = cols > rows;
  const n = wide ? rows : cols;
  const m = wide ? cols : rows;
  const g = new Float64Array(n * n);
  // wide: G = J·Jᵀ (n = rows), summing over columns; tall or square: G = Jᵀ·J (n = cols), summing over rows.
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      let s = 0;
      if (wide) for (let k = 0; k < m; k++) s += j[a * cols + k] * j[b * cols + k];
      else for (let k = 0; k < m; k++) s += j[k * cols + a] * j[k * cols + b];
      g[a * n + b] = s;
      g[b * n + a] = s;
    }
  }
  const ev = symmetricEigenvalues(g, n);
  return ev.map((v) => Math.sqrt(Math.max(0, v)));
}
