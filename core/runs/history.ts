import { LisaError, type ErrorCode } from '../errors.ts';
import { candidateUnits } from '../lisa/schedule.ts';
import type { ChunkManifest } from '../store/manifest.ts';
import type { RunSpec } from '../store/run-spec.ts';
import { runUnits } from '../train/method.ts';
import type { OutputRecord } from './outputs.ts';
import { chunkSummary, runStatus, type ChunkSummary, type RunStatus } from './status.ts';

/** An object the store holds but that could not be used: damaged (an integrity error), named with why. */
export interface UnreadableObject {
  /** the object's key in the caller's store (a tenant's keys are relative to its area) */
  key: string;
  code: ErrorCode;
  message: string;
}

/**
 * Everything recorded about a run, as its dashboard shows it. A damaged manifest or output record
 * does not hide the rest: it is left out and named in `unreadable`, and the status comes from the
 * latest chunk that could be read.
 */
export interface RunHistory {
  status: RunStatus;
  /** the chunks that could be read, in seq order */
  chunks: ChunkSummary[];
  /** every unit of the model, in model order: embed, layers.0 … layers.{N-1}, head */
  units: string[];
  /** the units the run trains from; a lisa chunk's `probabilities` are over these, in this order */
  candidates: string[];
  /** the run's exports and compositions, oldest first */
  outputs: OutputRecord[];
  unreadable: UnreadableObject[];
}

/** One line of a store's list of runs: the run's status, or the damaged object that kept it from being read. */
export type RunOverview = { id: string; status: RunStatus } | { id: string; unreadable: UnreadableObject };

export type Readable<T> = { value: T } | { unreadable: UnreadableObject };

/**
 * Runs `read`; data damaged in the store (an error of kind integrity) is returned as the object it
 * names (or `key`) instead of thrown. Any other failure, such as an unavailable store, is thrown.
 */
export async function readOrName<T>(key: string, read: () => Promise<T>): Promise<Readable<T>> {
  try {
    return { value: await read() };
  } catch (err) {
    if (!(err instanceof LisaError) || err.kind !== 'integrity') throw err;
    const named = err.details?.key;
    return { unreadable: { key: typeof named === 'string' ? named : key, code: err.code, message: err.message } };
  }
}

export function runHistory(spec: RunSpec, manifests: Readable<ChunkManifest>[], outputs: Readable<OutputRecord>[]): RunHistory {
  const chunks = manifests.flatMap((m) => ('value' in m ? [m.value] : []));
  return {
    status: runStatus(spec, chunks.at(-1) ?? null),
    chunks: chunks.map(chunkSummary),
    units: candidateUnits(spec.base.nLayers, 'sampled'),
    candidates: runUnits(spec),
    outputs: outputs.flatMap((o) => ('value' in o ? [o.value] : [])),
    unreadable: [...manifests, ...outputs].flatMap((r) => ('unreadable' in r ? [r.unreadable] : [])),
  };
}
