import type { BaseModel } from '../models/load.ts';
import type { Tokenizer } from '../tokenizers/index.ts';
import type { PreparedDataset } from '../data/index.ts';

/** A run's data, tokenized, with the sha256 of its bytes. */
export interface PreparedData {
  sha256: string;
  dataset: PreparedDataset;
}

/** A base model with its tokenizer, as a chunk needs it. */
export interface LoadedBase extends BaseModel {
  tokenizer: Tokenizer;
}

/**
 * What stays in memory between chunks of one process: frozen bases and tokenized datasets,
 * keyed by their sha256. Nothing about a run lives here: every chunk starts from the store.
 * The caller (CLI, HTTP function) owns one instance; core holds no process globals.
 */
export class ResourceCache {
  private readonly bases = new Map<string, Promise<LoadedBase>>();
  private readonly datasets = new Map<string, Promise<PreparedData>>();

  base(ref: string, load: () => Promise<LoadedBase>): Promise<LoadedBase> {
    return memo(this.bases, ref, load);
  }

  dataset(key: string, load: () => Promise<PreparedData>): Promise<PreparedData> {
    return memo(this.datasets, key, load);
  }

  get size(): { bases: number; datasets: number } {
    return { bases: this.bases.size, datasets: this.datasets.size };
  }
}

/** Concurrent callers share one load; a failed load is forgotten so the next call retries. */
function memo<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = load();
    map.set(key, p);
    p.catch(() => map.delete(key));
  }
  return p;
}
