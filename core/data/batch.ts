/**
 * Batches from a cursor. The training order of epoch e is a Fisher–Yates permutation from
 * (seed, 'data.shuffle', e) (identity when shuffle is off), recomputed on demand, so a cursor
 * stored in a manifest is all a later process needs to continue the exact same sequence.
 */
import { permutation, rngFor } from '../lisa/rng.ts';
import { DataConfigError } from './errors.ts';
import { lossTokens, type Example } from './example.ts';
import type { PreparedDataset } from './dataset.ts';

/** The next training example is order(epoch)[index]. */
export interface Cursor {
  epoch: number;
  index: number;
}

/**
 * Rows padded to the batch's longest row. tokens[b][t] = ids[t], targets[b][t] = ids[t+1],
 * mask[b][t] = example mask[t+1]; padding positions hold id PAD_ID and mask 0 (a causal model
 * never lets them influence real positions).
 */
export interface Batch {
  tokens: number[][];
  targets: number[][];
  mask: number[][];
  /** Σ mask: the positions the loss averages over. */
  lossTokens: number;
}

/** Any valid id works for padding since its mask is 0; 0 is valid in every vocabulary. */
export const PAD_ID = 0;

export const SHUFFLE_STREAM = 'data.shuffle';

export function epochOrder(ds: Pick<PreparedDataset, 'train' | 'seed' | 'shuffle'>, epoch: number): number[] {
  const n = ds.train.length;
  return ds.shuffle ? permutation(n, rngFor(ds.seed, SHUFFLE_STREAM, epoch)) : Array.from({ length: n }, (_, i) => i);
}

/** The next batchSize training examples from `cursor`, continuing into the next epoch(s). */
export function nextBatch(ds: PreparedDataset, cursor: Cursor, batchSize: number): Batch & { cursor: Cursor } {
  const n = ds.train.length;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new DataConfigError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(cursor.epoch) || cursor.epoch < 0 || !Number.isInteger(cursor.index) || cursor.index < 0 || cursor.index >= n) {
    throw new DataConfigError(
      `cursor {epoch: ${cursor.epoch}, index: ${cursor.index}} does not point into ${ds.source}'s ${n} training examples (was it made for other data?)`,
      { cursor, examples: n },
    );
  }
  let { epoch, index } = cursor;
  let order = epochOrder(ds, epoch);
  const picked: Example[] = [];
  while (picked.length < batchSize) {
    picked.push(ds.train[order[index]]);
    index++;
    if (index === n) {
      epoch++;
      index = 0;
      if (picked.length < batchSize) order = epochOrder(ds, epoch);
    }
  }
  return { ...makeBatch(picked), cursor: { epoch, index } };
}

export function makeBatch(examples: readonly Example[]): Batch {
  const width = Math.max(...examples.map((e) => e.ids.length - 1));
  const tokens: number[][] = [];
  const targets: number[][] = [];
  const mask: number[][] = [];
  let count = 0;
  for (const e of examples) {
    const pad = width - (e.ids.length - 1);
    const fill = (row: number[], v: number) => row.concat(new Array<number>(pad).fill(v));
    tokens.push(fill(e.ids.slice(0, -1), PAD_ID));
    targets.push(fill(e.ids.slice(1), PAD_ID));
    mask.push(fill(e.mask.slice(1), 0));
    count += lossTokens(e);
  }
  return { tokens, targets, mask, lossTokens: count };
}
