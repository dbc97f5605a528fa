import { Tensor } from "../tensor/tensor.js";
import { adaptiveAvgPool2d, avgPool2d, AvgPool2dOptions, maxPool2d, Pool2dOptions } from "../ops/pool.js";
import { Size2, toPair } from "../ops/conv.js";
import { Module } from "./module.js";
import { pySize } from "./repr.js";

export type { AvgPool2dOptions, Pool2dOptions };

/** Max over kh×kw windows of (N, C, H, W), as PyTorch's `nn.MaxPool2d` (padding never wins; ties go to the first maximum). */
export class MaxPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];

  constructor(kernelSize: Size2, options: Pool2dOptions = {}) {
    super();
    this.kernelSize = toPair(kernelSize, "MaxPool2d: kernelSize", 1);
    this.stride = toPair(options.stride ?? this.kernelSize, "MaxPool2d: stride", 1);
    this.padding = toPair(options.padding ?? 0, "MaxPool2d: padding", 0);
  }

  override extraRepr(): string {
    return `kernel_size=${pySize(this.kernelSize)}, stride=${pySize(this.stride)}, padding=${pySize(this.padding)}, dilation=1, ceil_mode=False`;
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}

/** Mean over kh×kw windows of (N, C, H, W), as PyTorch's `nn.AvgPool2d`. */
export class AvgPool2d extends Module {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly countIncludePad: boolean;

  constructor(kernelSize: Size2, options: AvgPool2dOptions = {}) {
    super();
    this.kernelSize = toPair(kernelSize, "AvgPool2d: kernelSize", 1);
    this.stride = toPair(options.stride ?? this.kernelSize, "AvgPool2d: stride", 1);
    this.padding = toPair(options.padding ?? 0, "AvgPool2d: padding", 0);
    this.countIncludePad = options.countIncludePad ?? true;
  }

  override extraRepr(): string {
    return `kernel_size=${pySize(this.kernelSize)}, stride=${pySize(this.stride)}, padding=${pySize(this.padding)}`;
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding, countIncludePad: this.countIncludePad });
  }
}

/** Average (N, C, H, W) down to (N, C, outH, outW) whatever H and W are, as PyTorch's `nn.AdaptiveAvgPool2d`. */
export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: [number, number];

  constructor(outputSize: Size2) {
    super();
    this.outputSize = toPair(outputSize, "AdaptiveAvgPool2d: outputSize", 1);
  }

  override extraRepr(): string {
    return `output_size=${pySize(this.outputSize)}`;
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}

/**
 * Global average pooling, (N, C, H, W) → (N, C, 1, 1): `AdaptiveAvgPool2d(1)`,
 * the pooling before Inception's classifier. Follow it with `Flatten` for (N, C).
 */
export class GlobalAvgPool2d extends AdaptiveAvgPool2d {
  constructor() {
    super(1);
  }
}
