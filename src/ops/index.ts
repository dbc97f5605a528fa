export { add, sub, mul, div, neg, exp, log, square, sqrt, tanh } from "./elementwise.js";
export { sigmoid, relu } from "./activation.js";
export { matmul, linear } from "./matmul.js";
export { sum, mean } from "./reduce.js";
export { reshape, flatten, transpose } from "./shape.js";
export { crossEntropy } from "./loss.js";
export { batchNormTrain, batchNormInference } from "./batchnorm.js";
export type { BatchStats } from "./batchnorm.js";
