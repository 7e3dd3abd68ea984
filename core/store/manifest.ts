import { z } from 'zod';
import { LisaError } from '../errors.ts';
import { CorruptObjectError, type ObjectStore } from './object-store.ts';
import { sha256Hex } from '../tensors/hashing.ts';
import { chunksPrefix, manifestKey, seqOfManifestKey, unitsPrefix } from './keys.ts';
import { encodeRecord, getRecord, type RecordRules } from './records.ts';
import { METHODS, type Method } from './run-spec.ts';

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
  /** 2: written with a checksum (records.ts); 1: written before checksums */
  version: 1 | 2;
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

/** The manifest format this version writes: with a checksum. */
export const MANIFEST_VERSION = 2;

const Count = z.number().int().min(0);
const Seconds = z.number().min(0);
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest');
const Norms = z.record(z.string(), z.number().min(0));

const UnitRefSchema = z.strictObject({ key: z.string(), sha256: Sha256Hex, bytes: Count, seq: Count, step: Count, adamStep: Count });

/**
 * What a stored manifest must hold. Loose: fields a newer writer adds are kept for the code that
 * reads them (the checksum already covers them); only the fields below are checked.
 */
const ManifestSchema = z.looseObject({
  version: z.union([z.literal(1), z.literal(2)]),
  runId: z.string(),
  seq: Count,
  createdAt: z.iso.datetime(),
  method: z.enum(METHODS).optional(),
  period: Count,
  activeUnits: z.array(z.string()),
  probabilities: z.array(z.number().min(0)).optional(),
  unitGradNorms: Norms.optional(),
  gradNormEma: Norms.optional(),
  units: z.record(z.string(), UnitRefSchema),
  cursor: z.strictObject({ epoch: Count, index: Count }),
  startStep: Count,
  globalStep: Count,
  losses: z.array(z.number()),
  learningRates: z.array(z.number()),
  tokens: Count,
  // loose: the evaluation records more than the interface names (its token count)
  heldOut: z.looseObject({ loss: z.number(), perplexity: z.number() }).nullable(),
  stoppedBy: z.enum(['period', 'deadline', 'aborted', 'run-complete']),
  seconds: z.strictObject({ wall: Seconds, load: Seconds, train: Seconds, upload: Seconds, accelerator: Seconds }),
  bytes: z.strictObject({ in: Count, out: Count }),
  costUsd: z.number().min(0),
  totals: z.strictObject({ steps: Count, tokens: Count, seconds: Seconds, costUsd: z.number().min(0), bytesIn: Count, bytesOut: Count }),
});

// the schema describes the interface: a field added to one and not the other fails to compile here
// (method is the one readManifest fills in: manifests from before methods have none)
const fits: (m: z.output<typeof ManifestSchema>) => ChunkManifest = (m) => ({ ...m, method: m.method ?? 'lisa' });
void fits;

/** The checks a manifest read from chunks/{seq}.json of run `runId` passes. */
function manifestRules(runId: string, seq: number): RecordRules<typeof ManifestSchema> {
  const prefix = unitsPrefix(runId);
  return {
    schema: ManifestSchema,
    needsChecksum: (m) => m.version !== 1,
    check(m) {
      if (m.runId !== runId || m.seq !== seq) return `it describes chunk ${m.seq} of run '${m.runId}', not chunk ${seq} of run '${runId}'`;
      if (m.globalStep !== m.startStep + m.losses.length) return `globalStep ${m.globalStep} is not startStep ${m.startStep} plus its ${m.losses.length} losses`;
      for (const [unit, ref] of Object.entries(m.units)) {
        // a manifest never sends a reader outside its run, or to a chunk after it
        if (!ref.key.startsWith(`${prefix}${unit}/`) || ref.seq > seq) return `unit ${unit} refers to ${ref.key} of chunk ${ref.seq}`;
      }
      return null;
    },
  };
}

/** Every committed seq of a run, ascending. */
export async function listSeqs(store: ObjectStore, runId: string): Promise<number[]> {
  const keys = await store.list(chunksPrefix(runId));
  return keys.map((k) => seqOfManifestKey(runId, k)).filter((s): s is number => s !== null).sort((a, b) => a - b);
}

export async function readManifest(store: ObjectStore, runId: string, seq: number): Promise<ChunkManifest> {
  const m = await getRecord(store, manifestKey(runId, seq), manifestRules(runId, seq), () => new ManifestNotFoundError(runId, seq));
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
  const body = encodeRecord(manifest, 1);
  const outcome = await store.createExclusive(manifestKey(manifest.runId, manifest.seq), body);
  if (outcome === 'exists') throw new ChunkConflictError(manifest.runId, manifest.seq);
}
