import { crossEntropy } from "../ops/loss.js";
import { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

/** Mean cross-entropy over the batch: log-softmax and NLL fused into one op. */
export class CrossEntropyLoss extends Module {
  forward(logits: Tensor, targets: ArrayLike<number> | Tensor): Tensor {
    return crossEntropy(logits, targets);
  }
}
