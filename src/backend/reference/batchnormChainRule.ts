/**
 * The BN backward exactly as the paper writes it (§3, the chain rule through
 * x̂, σ²_B and μ_B), for one channel of m values. Slow and literal on purpose:
 * tests show that the fused kernel computes the same function.
 *
 *   ∂ℓ/∂x̂_i  = ∂ℓ/∂y_i · γ
 *   ∂ℓ/∂σ²   = Σ_i ∂ℓ/∂x̂_i · (x_i − μ) · (−1/2)·(σ² + ε)^(−3/2)
 *   ∂ℓ/∂μ    = (Σ_i ∂ℓ/∂x̂_i · (−1/sqrt(σ² + ε))) + ∂ℓ/∂σ² · (Σ_i −2(x_i − μ))/m
 *   ∂ℓ/∂x_i  = ∂ℓ/∂x̂_i / sqrt(σ² + ε) + ∂ℓ/∂σ² · 2(x_i − μ)/m + ∂ℓ/∂μ / m
 *   ∂ℓ/∂γ    = Σ_i ∂ℓ/∂y_i · x̂_i
 *   ∂ℓ/∂β    = Σ_i ∂ℓ/∂y_i
 */
export function batchNormBackwardChainRule(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  gamma: number,
  eps: number,
): { dx: Float64Array; dgamma: number; dbeta: number } {
  const m = x.length;
  let mu = 0;
  for (let i = 0; i < m; i++) mu += x[i];
  mu /= m;
  let variance = 0;
  for (let i = 0; i < m; i++) variance += (x[i] - mu) ** 2;
  variance /= m;
  const std = Math.sqrt(variance + eps);

  const dxhat = new Float64Array(m);
  for (let i = 0; i < m; i++) dxhat[i] = dy[i] * gamma;
  let dvar = 0;
  for (let i = 0; i < m; i++) dvar += dxhat[i] * (x[i] - mu) * -0.5 * Math.pow(variance + eps, -1.5);
  let dmu = 0;
  let sumMinus2 = 0;
  for (let i = 0; i < m; i++) {
    dmu += dxhat[i] * (-1 / std);
    sumMinus2 += -2 * (x[i] - mu);
  }
  dmu += (dvar * sumMinus2) / m;
  const dx = new Float64Array(m);
  let dgamma = 0;
  let dbeta = 0;
  for (let i = 0; i < m; i++) {
    dx[i] = dxhat[i] / std + (dvar * 2 * (x[i] - mu)) / m + dmu / m;
    dgamma += dy[i] * ((x[i] - mu) / std);
    dbeta += dy[i];
  }
  return { dx, dgamma, dbeta };
}
