import { relu, sigmoid } from "../ops/activation.js";
import { tanh } from "../ops/elementwise.js";
import { flatten } from "../ops/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { Module } from "./module.js";

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** Passes its input through; what a folded BN becomes. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Collapse dimensions startDim..endDim (default: all but the batch dimension). */
export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }

  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }

  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}
