export { SGD } from "./sgd.js";
export type { SGDOptions, SGDState } from "./sgd.js";
