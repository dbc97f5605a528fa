import type { Backend } from "../backend.js";
import { gemm } from "./gemm.js";
import { copyRows } from "./concat.js";
import { col2im, conv2dBackward, conv2dForward, im2col } from "./conv.js";
import { conv2dWinogradBackwardInput, conv2dWinogradBackwardWeight, conv2dWinogradForward } from "./winograd.js";
import { avgPool2dBackward, avgPool2dForward, maxPool2dBackward, maxPool2dForward } from "./pool.js";
import {
  channelAffine,
  channelAffineActivated,
  channelGradInput,
  channelGradInputActivated,
  channelGradSums,
  channelGradSumsActivated,
  channelMoments,
} from "./batchnorm.js";
import {
  addInPlace,
  addRowVector,
  copy,
  countNonFinite,
  fill,
  relu,
  reluBackward,
  sgdStep,
  sgdStepChecked,
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
  channelAffineActivated,
  channelGradSumsActivated,
  channelGradInputActivated,
  im2col,
  col2im,
  conv2dForward,
  conv2dBackward,
  conv2dWinogradForward,
  conv2dWinogradBackwardInput,
  conv2dWinogradBackwardWeight,
  maxPool2dForward,
  maxPool2dBackward,
  avgPool2dForward,
  avgPool2dBackward,
  sigmoid,
  sigmoidBackward,
  relu,
  reluBackward,
  softmaxCrossEntropy,
  addInPlace,
  fill,
  copy,
  copyRows,
  countNonFinite,
  sgdStep,
  sgdStepChecked,
};
