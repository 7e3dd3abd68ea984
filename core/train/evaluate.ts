import * as tf from '@tensorflow/tfjs-core';
import type { Model } from '../models/model.ts';
import { evaluate, type PreparedDataset } from '../data/index.ts';

/** Held-out loss and perplexity of a model, or null when the run holds nothing out. */
export function heldOutLoss(model: Model, dataset: PreparedDataset, batchSize: number): { loss: number; perplexity: number } | null {
  if (dataset.heldOut.length === 0) return null;
  return evaluate((batch) => maskedLossSum(model, batch), dataset.heldOut, batchSize);
}

/** Sum of masked token losses and their count, so batches of any size average correctly. */
function maskedLossSum(model: Model, batch: { tokens: number[][]; targets: number[][]; mask: number[][] }): { sum: number; count: number } {
  const count = batch.mask.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0);
  const mean = tf.tidy(() =>
    model.loss(
      tf.tensor2d(batch.tokens, undefined, 'int32'),
      tf.tensor2d(batch.targets, undefined, 'int32'),
      tf.tensor2d(batch.mask, undefined, 'float32'),
    ),
  );
  const value = mean.dataSync()[0];
  mean.dispose();
  return { sum: value * count, count };
}
