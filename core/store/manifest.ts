import { LisaError } from '../errors.ts';
import { getJson, type ObjectStore } from './object-store.ts';
import { sha256Hex } from '../tensors/hashing.ts';
import { chunksPrefix, manifestKey, seqOfManifestKey } from './keys.ts';
import type { Method } from './run-spec.ts';

/** Where a unit's latest weights and AdamW state live. */
export interface UnitRef {
  key: string;
  sha256: string;
  bytes: number;
  /** seq of the chunk that wrote it */
  seq: number;
  /** global step after which it was written */
  step: number;
  /** the unit's own AdamW step count (bias correction) */
  adamStep: number;
}

export interface DataCursor {
  epoch: number;
  index: number;
}

/**
 * One committed chunk. It carries the complete unit map (carried forward from its parent), so
 * resuming reads exactly one manifest.
 */
export interface ChunkManifest {
  version: 1;
  runId: string;
  seq: number;
  createdAt: string;
  /** the run's method (what activeUnits' objects hold: base tensors, or LoRA adapters); manifests from before methods are read as lisa */
  method: Method;
  period: number;
  activeUnits: string[];
  /**
   * The weights the period's units were drawn from, one per candidate in unit order (the blocks,
   * or embed, blocks, head under embedHead 'sampled'), summing to 1. Absent in manifests written
   * before samplers, and in lora and full runs' manifests, which draw nothing.
   */
  probabilities?: number[];
  /** L2 norm of each active unit's gradient before clipping, mean over this chunk's steps (absent before samplers) */
  unitGradNorms?: Record<string, number>;
  /**
   * L2 norm of each active unit's weight change over this chunk (all its tensors, weights after
   * minus before), so a reader sees how far each unit moved without downloading it (absent before
   * the dashboard)
   */
  unitUpdateNorms?: Record<string, number>;
  /** sampler 'grad-norm': each unit's moving average of its gradient norm after this chunk (core/lisa/grad-norm.ts) */
  gradNormEma?: Record<string, number>;
  units: Record<string, UnitRef>;
  /** cursor to continue from */
  cursor: DataCursor;
  /** global step before and after this chunk */
  startStep: number;
  globalStep: number;
  losses: number[];
  learningRates: number[];
  /** token positions processed (padding included): what the accelerator did, for tokens/s and metering */
  tokens: number;
  heldOut: { loss: number; perplexity: number } | null;
  stoppedBy: 'period' | 'deadline' | 'aborted' | 'run-complete';
  seconds: { wall: number; load: number; train: number; upload: number; accelerator: number };
  bytes: { in: number; out: number };
  costUsd: number;
  /** sums over this chunk and all before it */
  totals: { steps: number; tokens: number; seconds: number; costUsd: number; bytesIn: number; bytesOut: number };
}

export class ChunkConflictError extends LisaError {
  constructor(runId: string, seq: number) {
    super('CHUNK_CONFLICT', `another attempt already committed chunk ${seq} of run '${runId}'; retry to continue from it`, {
      runId,
      winningSeq: seq,
    });
  }
}

export class ManifestNotFoundError extends LisaError {
  constructor(runId: string, seq: number) {
    super('CHUNK_NOT_FOUND', `run '${runId}' has no committed chunk ${seq}`, { runId, seq });
  }
}

export class CorruptObjectError extends LisaError {
  constructor(key: string, expected: string, actual: string) {
    super('STORE_OBJECT_CORRUPT', `object ${key} does not match its recorded sha256 (expected ${expected}, got ${actual})`, {
      key,
      expected,
      actual,
    });
  }
}

/** Every committed seq of a run, ascending. */
export async function listSeqs(store: ObjectStore, runId: string): Promise<number[]> {
  const keys = await store.list(chunksPrefix(runId));
  return keys.map((k) => seqOfManifestKey(runId, k)).filter((s): s is number => s !== null).sort((a, b) => a - b);
}

export async function readManifest(store: ObjectStore, runId: string, seq: number): Promise<ChunkManifest> {
  const m = await getJson<Omit<ChunkManifest, 'method'> & { method?: Method }>(store, manifestKey(runId, seq), () => new ManifestNotFoundError(runId, seq));
  return { ...m, method: m.method ?? 'lisa' };
}

/** The latest committed manifest, or null for a run with no chunk yet. */
export async function headManifest(store: ObjectStore, runId: string): Promise<ChunkManifest | null> {
  const seqs = await listSeqs(store, runId);
  const last = seqs.at(-1);
  return last === undefined ? null : readManifest(store, runId, last);
}

/** Reads an object and checks it against the sha256 a manifest recorded for it. */
export async function getVerified(store: ObjectStore, ref: { key: string; sha256: string }): Promise<Uint8Array> {
  const bytes = await store.get(ref.key);
  const actual = sha256Hex(bytes);
  if (actual !== ref.sha256) throw new CorruptObjectError(ref.key, ref.sha256, actual);
  return bytes;
}

/**
 * The commit point: an exclusive create of chunks/{seq}.json. Exactly one attempt wins a seq;
 * a loser gets ChunkConflictError and must clean up its own unit objects.
 */
export async function commitManifest(store: ObjectStore, manifest: ChunkManifest): Promise<void> {
  const body = new TextEncoder().encode(`${JSON.stringify(manifest, null, 1)}\n`);
  const outcome = await store.createExclusive(manifestKey(manifest.runId, manifest.seq), body);
  if (outcome === 'exists') throw new ChunkConflictError(manifest.runId, manifest.seq);
}
