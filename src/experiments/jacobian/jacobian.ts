/**
 * Layer Jacobians of the §4.1 network (§3.3's conjecture), exactly and in
 * float64.
 *
 * What is differentiated. §3.3 looks at "two consecutive layers with
 * normalized inputs, and the transformation between these normalized
 * vectors: ẑ = F(x̂)". In the §4.1 network the vectors that BN normalizes are
 * the sigmoid inputs (the pre-activations) z₁, z₂, z₃ of the hidden layers,
 * so hidden layer l's Jacobian is
 *   J₁ = ∂z₁/∂x          (x: the 784 pixels; 100×784)
 *   J_l = ∂z_l/∂z_{l−1}  (l ≥ 2; 100×100: sigmoid, then the linear layer, then BN)
 * and the hidden stack's input-to-output Jacobian is ∂z_L/∂x = J_L ⋯ J₁.
 * Without BN, z_l = W_l·sigmoid(z_{l−1}) + b_l, so J_l = W_l·diag(σ′(z_{l−1})).
 * With BN in inference mode (population statistics: the statistics held
 * fixed), z_l = γ ⊙ (W_l·u − μ)/√(σ²+ε) + β, so
 *   J_l = diag(γ/√(σ²+ε)) · W_l · diag(σ′(z_{l−1})).
 * The BN transform alone, y = γ ⊙ (u − μ)/√(σ²+ε) + β with μ, σ² fixed, has
 * the diagonal Jacobian diag(γ_k/√(σ²_k+ε)); its singular values are
 * |γ_k|/√(σ²_k+ε) (bnTransformSingularValues; a test checks it against the
 * reverse-mode Jacobian of the module).
 *
 * How. The network is copied to float64 and each Jacobian is built row by
 * row in reverse mode: one forward pass of all images, then for each output
 * unit k one backward pass with the gradient e_k on every image's row (the
 * images do not interact in inference mode, so image r's input gradient is
 * row k of image r's Jacobian). Exact up to float64 rounding; a test checks
 * it against central finite differences.
 */
import { nn, noGrad, Tensor } from "../../index.js";
import { percentiles } from "../figure1/percentile.js";
import { singularValues, symmetricEigenvalues } from "./linalg.js";

/** A distribution of singular values: min, 15th percentile, median, 85th percentile, max. */
export interface Distribution {
  min: number;
  p15: number;
  median: number;
  p85: number;
  max: number;
}

export function distribution(values: ArrayLike<number>): Distribution {
  const [min, p15, median, p85, max] = percentiles(values, [0, 15, 50, 85, 100]);
  return { min, p15, median, p85, max };
}

/** A float64 copy of a Sequential of Linear, BatchNorm1d, Sigmoid and ReLU layers (the figure1 networks), in inference mode. */
export function float64Copy(model: nn.Sequential): nn.Sequential {
  const layers: nn.Module[] = [];
  for (let i = 0; i < model.length; i++) {
    const m = model.at(i);
    if (m instanceof nn.Linear) layers.push(new nn.Linear(m.inFeatures, m.outFeatures, { bias: m.bias !== null, dtype: "float64" }));
    else if (m instanceof nn.BatchNorm1d) layers.push(new nn.BatchNorm1d(m.numFeatures, { eps: m.eps, affine: m.affine, dtype: "float64" }));
    else if (m instanceof nn.Sigmoid) layers.push(new nn.Sigmoid());
    else if (m instanceof nn.ReLU) layers.push(new nn.ReLU());
    else throw new Error(`float64Copy: layer ${i} is a ${m.constructor.name}; only Linear, BatchNorm1d, Sigmoid and ReLU are supported`);
  }
  const copy = new nn.Sequential(...layers);
  copy.loadStateDict(model.stateDict());
  for (const p of copy.parameters()) p.requiresGrad = false; // only input gradients are wanted
  return copy.eval();
}

/** Where the hidden layers' pre-activations (the inputs of the nonlinearities) come out, and where the BN layers sit. */
export function hiddenLayout(model: nn.Sequential): { preActivation: number[]; batchNorm: number[] } {
  const preActivation: number[] = [];
  const batchNorm: number[] = [];
  for (let i = 0; i < model.length; i++) {
    const m = model.at(i);
    if (m instanceof nn.Sigmoid || m instanceof nn.ReLU) preActivation.push(i - 1);
    if (m instanceof nn.BatchNorm1d) batchNorm.push(i);
  }
  if (preActivation.length === 0) throw new Error("hiddenLayout: the network has no hidden nonlinearity");
  return { preActivation, batchNorm };
}

/** Run layers from..to (inclusive) of `model` on x. */
function runLayers(model: nn.Sequential, from: number, to: number, x: Tensor): Tensor {
  let h = x;
  for (let i = from; i <= to; i++) h = model.at(i).forward(h);
  return h;
}

/**
 * The Jacobians of f at each of the n rows of `inputs` (n×inDim, float64):
 * an n×outDim×inDim array, image r's Jacobian at [r·outDim·inDim, …), row-major.
 * f must treat rows independently (a network in inference mode does).
 *
 * Reverse mode, all rows at once: each image is repeated outDim times and
 * copy k gets the output gradient e_k, so one backward pass returns every
 * row of every Jacobian (images in chunks of `chunk` to bound the memory).
 */
export function jacobians(
  f: (x: Tensor) => Tensor,
  inputs: Float64Array,
  n: number,
  inDim: number,
  chunk = 10,
): { values: Float64Array; outDim: number } {
  if (inputs.length !== n * inDim) throw new Error(`jacobians: expected ${n}×${inDim} inputs; got ${inputs.length} values`);
  let values = new Float64Array(0);
  let outDim = -1;
  for (let r0 = 0; r0 < n; r0 += chunk) {
    const m = Math.min(chunk, n - r0);
    if (outDim < 0) {
      const probe = noGrad(() => f(new Tensor(inputs.slice(0, inDim), [1, inDim])));
      if (probe.dtype !== "float64" || probe.shape.length !== 2) {
        throw new Error(`jacobians: f must map [rows, ${inDim}] float64 to [rows, m] float64; got [${probe.shape.join(", ")}] ${probe.dtype}`);
      }
      outDim = probe.shape[1];
      values = new Float64Array(n * outDim * inDim);
    }
    const xs = new Float64Array(m * outDim * inDim);
    for (let r = 0; r < m; r++) {
      const row = inputs.subarray((r0 + r) * inDim, (r0 + r + 1) * inDim);
      for (let k = 0; k < outDim; k++) xs.set(row, (r * outDim + k) * inDim);
    }
    const x = new Tensor(xs, [m * outDim, inDim], true);
    const y = f(x);
    const seed = new Float64Array(m * outDim * outDim);
    for (let r = 0; r < m; r++) for (let k = 0; k < outDim; k++) seed[(r * outDim + k) * outDim + k] = 1;
    y.backward(seed);
    const g = x.grad as Tensor | null;
    if (g === null) throw new Error("jacobians: the input got no gradient");
    // Row (r·outDim + k) of the input gradient is row k of image r's Jacobian: the layout of `values`.
    values.set(g.data, r0 * outDim * inDim);
  }
  return { values, outDim };
}

/** |γ_k|/√(σ²_k + ε): the singular values of the BN transform with its statistics held fixed (the population statistics). */
export function bnTransformSingularValues(bn: nn.BatchNorm1d): Float64Array {
  if (bn.runningVar === null) throw new Error("bnTransformSingularValues: the layer keeps no running statistics");
  const n = bn.numFeatures;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const gamma = bn.weight ? bn.weight.data[k] : 1;
    out[k] = Math.abs(gamma) / Math.sqrt(bn.runningVar.data[k] + bn.eps);
  }
  return out;
}

/** The measurements of one network at one moment of training. */
export interface JacobianMeasurement {
  /** Per hidden layer (1-based order): the distribution of the singular values of J_l over all images. */
  layers: Distribution[];
  /** The hidden stack ∂z_L/∂x. */
  stack: Distribution;
  /** BN network: per BN layer, the BN transform alone with fixed statistics. */
  bnTransform: Distribution[];
}

/** One hidden layer's local derivatives, in float64. */
interface HiddenLayer {
  /** W, outDim×inDim row-major. */
  weight: Float64Array;
  outDim: number;
  inDim: number;
  /** BN network: γ/√(σ²+ε) per unit (the BN transform's diagonal); baseline: null. */
  scale: Float64Array | null;
  /** The nonlinearity that follows z (and precedes the next layer). */
  activation: "sigmoid" | "relu";
}

function hiddenLayers(net: nn.Sequential): HiddenLayer[] {
  const { preActivation } = hiddenLayout(net);
  let from = 0;
  return preActivation.map((end) => {
    let linear: nn.Linear | null = null;
    let bn: nn.BatchNorm1d | null = null;
    for (let i = from; i <= end; i++) {
      const m = net.at(i);
      if (m instanceof nn.Linear) linear = m;
      else if (m instanceof nn.BatchNorm1d) bn = m;
    }
    if (linear === null) throw new Error(`measureJacobians: hidden layer ending at module ${end} has no Linear`);
    const act = net.at(end + 1) instanceof nn.ReLU ? "relu" : "sigmoid";
    from = end + 1;
    const outDim = linear.outFeatures;
    let scale: Float64Array | null = null;
    if (bn) {
      const sv = bnTransformSingularValues(bn); // |γ|/√(σ²+ε); the sign of γ is put back below
      scale = sv.map((v, k) => (bn!.weight && bn!.weight.data[k] < 0 ? -v : v));
    }
    return { weight: Float64Array.from(linear.weight.data), outDim, inDim: linear.inFeatures, scale, activation: act };
  });
}

/** Row-major (a×b)·(b×c). */
function matmul(x: Float64Array, y: Float64Array, a: number, b: number, c: number): Float64Array {
  const out = new Float64Array(a * c);
  for (let i = 0; i < a; i++) {
    for (let k = 0; k < b; k++) {
      const v = x[i * b + k];
      if (v === 0) continue;
      for (let j = 0; j < c; j++) out[i * c + j] += v * y[k * c + j];
    }
  }
  return out;
}

/** J_l = diag(scale)·W·diag(φ′(z_prev)) (z_prev: the previous layer's pre-activation at one image; null for layer 1). */
function layerJacobian(layer: HiddenLayer, prevActivation: HiddenLayer["activation"] | null, zPrev: ArrayLike<number> | null): Float64Array {
  const { weight, outDim, inDim, scale } = layer;
  const j = new Float64Array(outDim * inDim);
  for (let i = 0; i < outDim; i++) {
    const a = scale ? scale[i] : 1;
    for (let k = 0; k < inDim; k++) {
      let d = 1;
      if (zPrev !== null) {
        const z = zPrev[k];
        if (prevActivation === "relu") d = z > 0 ? 1 : 0;
        else {
          const s = 1 / (1 + Math.exp(-z));
          d = s * (1 - s);
        }
      }
      j[i * inDim + k] = a * weight[i * inDim + k] * d;
    }
  }
  return j;
}

/**
 * Measure the layer Jacobians of `model` (a figure1 network; not altered) at
 * the n images in `images` (n×784 float32 or float64), in float64: the
 * pre-activations from a float64 copy of the network in inference mode, each
 * layer's Jacobian from its local derivatives (forward mode, written out:
 * diag(γ/√(σ²+ε))·W·diag(σ′(z_{l−1})); tests check it against the reverse-mode
 * Jacobian of the modules and against finite differences), the stack's as
 * their product.
 */
export function measureJacobians(model: nn.Sequential, images: ArrayLike<number>, n: number): JacobianMeasurement {
  const net = float64Copy(model);
  const { preActivation, batchNorm } = hiddenLayout(net);
  const layers = hiddenLayers(net);
  const inDim = layers[0].inDim;
  const x = Float64Array.from(images);
  if (x.length !== n * inDim) throw new Error(`measureJacobians: expected ${n} images of ${inDim} values; got ${x.length} values`);
  // The pre-activations of every hidden layer at these images: where J_l (l ≥ 2) is taken.
  const pre: Float64Array[] = [];
  noGrad(() => {
    let h = new Tensor(x, [n, inDim]);
    let at = 0;
    for (const idx of preActivation) {
      h = runLayers(net, at, idx, h);
      pre.push(Float64Array.from(h.data));
      at = idx + 1;
    }
  });
  // Layer 1 is affine in the pixels (linear, then BN with fixed statistics): its Jacobian is the same at every image.
  const j1 = layerJacobian(layers[0], null, null);
  const h1 = layers[0].outDim;
  const layerValues: Float64Array[] = [singularValues(j1, h1, inDim)];
  for (let l = 1; l < layers.length; l++) layerValues.push(new Float64Array(n * Math.min(layers[l].outDim, layers[l].inDim)));
  // The stack ∂z_L/∂x = K·J₁ with K = J_L⋯J₂; its Gram matrix K·(J₁J₁ᵀ)·Kᵀ needs J₁J₁ᵀ once.
  const m1 = matmul(j1, transpose(j1, h1, inDim), h1, inDim, h1);
  const last = layers[layers.length - 1].outDim;
  const stackValues = new Float64Array(n * Math.min(last, inDim));
  for (let r = 0; r < n; r++) {
    let k: Float64Array | null = null;
    for (let l = 1; l < layers.length; l++) {
      const L = layers[l];
      const zPrev = pre[l - 1].subarray(r * L.inDim, (r + 1) * L.inDim);
      const j = layerJacobian(L, layers[l - 1].activation, zPrev);
      const k1 = Math.min(L.outDim, L.inDim);
      layerValues[l].set(singularValues(j, L.outDim, L.inDim), r * k1);
      k = k === null ? j : matmul(j, k, L.outDim, L.inDim, h1); // K keeps h1 columns
    }
    let gram: Float64Array;
    if (k === null) gram = m1;
    else {
      const km = matmul(k, m1, last, h1, h1);
      gram = matmul(km, transpose(k, last, h1), last, h1, last);
      for (let a = 0; a < last; a++) {
        for (let b = a + 1; b < last; b++) {
          const v = 0.5 * (gram[a * last + b] + gram[b * last + a]);
          gram[a * last + b] = v;
          gram[b * last + a] = v;
        }
      }
    }
    const ev = symmetricEigenvalues(gram, last);
    const kk = Math.min(last, inDim);
    for (let i = 0; i < kk; i++) stackValues[r * kk + i] = Math.sqrt(Math.max(0, ev[i]));
  }
  const bnTransform = batchNorm.map((i) => distribution(bnTransformSingularValues(net.at(i) as nn.BatchNorm1d)));
  return { layers: layerValues.map(distribution), stack: distribution(stackValues), bnTransform };
}

function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}
