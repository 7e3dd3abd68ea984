import type { BaseModel } from '../models/load.ts';
import type { Tokenizer } from '../tokenizers/index.ts';
import type { PreparedData } from './sources.ts';
import { LisaError } from '../errors.ts';

/** A base model with its tokenizer, as a chunk needs it. */
export interface LoadedBase extends BaseModel {
  tokenizer: Tokenizer;
}

export class BaseChangedError extends LisaError {
  constructor(ref: string, expected: string, actual: string) {
    super('BASE_CHANGED', `base ${ref} has sha256 ${actual} but the run was created on ${expected}; bases must never change`, {
      ref,
      expected,
      actual,
    });
  }
}

export class DataChangedError extends LisaError {
  constructor(ref: string, expected: string, actual: string) {
    super('DATA_CHANGED', `data ${ref} has sha256 ${actual} but the run was created on ${expected}`, { ref, expected, actual });
  }
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
