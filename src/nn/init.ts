import { defaultGenerator, Generator } from "../tensor/random.js";
import { Tensor } from "../tensor/tensor.js";

/**
 * In-place initializers, as `torch.nn.init`. Each draws from `generator`
 * (the default one, seeded by `manualSeed`, when omitted).
 */

/** Fill with N(mean, std²): the paper's MNIST net uses small Gaussian weights. */
export function normal(t: Tensor, options: { mean?: number; std?: number; generator?: Generator } = {}): Tensor {
  const { mean = 0, std = 1, generator = defaultGenerator } = options;
  for (let i = 0; i < t.size; i++) t.data[i] = mean + std * generator.normal();
  return t;
}

/** Fill with U(low, high). */
export function uniform(t: Tensor, options: { low?: number; high?: number; generator?: Generator } = {}): Tensor {
  const { low = 0, high = 1, generator = defaultGenerator } = options;
  for (let i = 0; i < t.size; i++) t.data[i] = low + (high - low) * generator.uniform();
  return t;
}

export function constant(t: Tensor, value: number): Tensor {
  t.data.fill(value);
  return t;
}

export function zeros(t: Tensor): Tensor {
  return constant(t, 0);
}

export function ones(t: Tensor): Tensor {
  return constant(t, 1);
}

/** fan_in and fan_out of a weight (out, in, ...kernel). */
export function fans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new Error(`fans: need a weight of at least 2 dimensions; got [${t.shape.join(", ")}]`);
  const receptive = t.shape.slice(2).reduce((p, d) => p * d, 1);
  return { fanIn: t.shape[1] * receptive, fanOut: t.shape[0] * receptive };
}

/** He initialization: N(0, gain²/fan), gain = sqrt(2) for ReLU. */
export function kaimingNormal(
  t: Tensor,
  options: { mode?: "fanIn" | "fanOut"; gain?: number; generator?: Generator } = {},
): Tensor {
  const { fanIn, fanOut } = fans(t);
  const fan = options.mode === "fanOut" ? fanOut : fanIn;
  const std = (options.gain ?? Math.SQRT2) / Math.sqrt(fan);
  return normal(t, { std, generator: options.generator });
}

/**
 * U(−b, b) with b = gain·sqrt(3/fan_in). PyTorch's default for Linear and
 * Conv weights is this with gain = sqrt(2/(1 + 5)), i.e. b = 1/sqrt(fan_in).
 */
export function kaimingUniform(t: Tensor, options: { gain?: number; generator?: Generator } = {}): Tensor {
  const { fanIn } = fans(t);
  const bound = (options.gain ?? Math.SQRT2) * Math.sqrt(3 / fanIn);
  return uniform(t, { low: -bound, high: bound, generator: options.generator });
}
