import type { Backend } from "../backend.js";
import { gemm } from "./gemm.js";
import { channelAffine, channelGradInput, channelGradSums, channelMoments } from "./batchnorm.js";
import {
  addRowVector,
  relu,
  reluBackward,
  sgdStep,
  sigmoid,
  sigmoidBackward,
  softmaxCrossEntropy,
  sumRows,
} from "./elementwise.js";

/**
 * The reference backend: plain TypeScript, float32 and float64, written to
 * be read. It is the oracle every fast backend is tested against.
 */
export const referenceBackend: Backend = {
  name: "reference",
  gemm,
  addRowVector,
  sumRows,
  channelMoments,
  channelAffine,
  channelGradSums,
  channelGradInput,
  sigmoid,
  sigmoidBackward,
  relu,
  reluBackward,
  softmaxCrossEntropy,
  sgdStep,
};
