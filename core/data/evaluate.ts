/** Held-out loss. The model stays outside: the caller's lossFn turns a batch into summed loss. */
import { makeBatch, type Batch } from './batch.ts';
import { DataConfigError, EmptyDatasetError } from './errors.ts';
import type { Example } from './example.ts';

/** Sum of the per-token losses over the batch's mask and the number of tokens summed. */
export type BatchLossFn = (batch: Batch) => { sum: number; count: number };

export interface EvalResult {
  /** Mean loss per masked token (nats). */
  loss: number;
  perplexity: number;
  tokens: number;
}

/** Token-weighted mean loss over `examples` in order, batchSize at a time. */
export function evaluate(lossFn: BatchLossFn, examples: readonly Example[], batchSize: number): EvalResult {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new DataConfigError(`batchSize must be a positive integer, got ${batchSize}`);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const r = lossFn(makeBatch(examples.slice(i, i + batchSize)));
    sum += r.sum;
    count += r.count;
  }
  if (count === 0) throw new EmptyDatasetError('held-out set', 'no examples (or no loss tokens) to evaluate');
  const loss = sum / count;
  return { loss, perplexity: Math.exp(loss), tokens: count };
}
