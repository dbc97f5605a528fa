export { SGD } from "./sgd.js";
export type { SGDOptions, SGDState } from "./sgd.js";
export { Adam, AdamW } from "./adam.js";
export type { AdamOptions, AdamState } from "./adam.js";
export { LRScheduler, StepLR, ExponentialLR, CosineAnnealingLR } from "./lrScheduler.js";
export type { HasLearningRate, LRSchedulerState } from "./lrScheduler.js";
