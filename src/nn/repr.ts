/**
 * Values printed the way Python prints them, so that `String(model)` reads
 * exactly like PyTorch's `repr(model)`.
 */

/** A float as Python's `repr(float)`: `0.1`, `1e-05`, `1.0`, `1e+16`, `nan`, `inf`. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  // The shortest digits that round-trip (both languages pick the same ones).
  const [mantissa, expText] = x.toExponential().split("e");
  const exp = Number(expText);
  // Python switches to scientific notation below 1e-4 and from 1e16 on.
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? "-" : "+";
    return `${mantissa}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const digits = mantissa.replace("-", "").replace(".", "");
  const negative = x < 0 ? "-" : "";
  let body: string;
  if (exp >= 0) {
    const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
    const frac = digits.slice(exp + 1);
    body = `${intPart}.${frac === "" ? "0" : frac}`;
  } else {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  }
  return negative + body;
}

/** Python's `repr` of a bool. */
export function pyBool(b: boolean): string {
  return b ? "True" : "False";
}

/** A pair as PyTorch prints a size: `(3, 3)`. */
export function pyTuple(values: readonly number[]): string {
  return values.length === 1 ? `(${values[0]},)` : `(${values.join(", ")})`;
}

/** A size the user may have given as one number: `2` if both sides agree, else `(2, 3)`. */
export function pySize(pair: readonly [number, number]): string {
  return pair[0] === pair[1] ? String(pair[0]) : pyTuple(pair);
}

/** Indents every line after the first by `spaces` (PyTorch's `_addindent`). */
export function addIndent(text: string, spaces: number): string {
  const lines = text.split("\n");
  if (lines.length === 1) return text;
  const pad = " ".repeat(spaces);
  return [lines[0], ...lines.slice(1).map((l) => pad + l)].join("\n");
}
