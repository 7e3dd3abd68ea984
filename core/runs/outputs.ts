import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ComposeSummary, RunExportSummary } from '../merge/index.ts';
import { runPrefix } from '../store/keys.ts';
import { NotFoundError, type ObjectStore } from '../store/object-store.ts';
import { encodeRecord, getRecord, type RecordRules } from '../store/records.ts';

/**
 * What a run's exports and compositions wrote: one small record per output, in the run's own area,
 *
 *   runs/{runId}/outputs/{yyyymmddhhmmssSSS}-{random}.json
 *
 * so listing the prefix gives them oldest first. A record is written once the output is complete,
 * and names it without the file hashes (those are in the output itself). Like run.json and the
 * manifests, it carries a checksum and is schema-checked on read (core/store/records.ts).
 */
const outputBase = {
  createdAt: z.string(),
  /** the directory or store URL written */
  out: z.string(),
  dtype: z.string(),
  /** units taken from the run(s) rather than the base */
  units: z.array(z.string()),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
};
const ExportRecordSchema = z.object({
  kind: z.literal('export'),
  ...outputBase,
  /** the seq exported; -1 for the base */
  seq: z.number().int().min(-1),
  /** a delta package rather than a merged model */
  delta: z.boolean(),
});
const CompositionRecordSchema = z.object({
  kind: z.literal('composition'),
  ...outputBase,
  method: z.string(),
  runs: z.array(z.object({ runId: z.string(), seq: z.number().int().nonnegative(), weight: z.number() })),
});
const OutputRecordSchema = z.discriminatedUnion('kind', [ExportRecordSchema, CompositionRecordSchema]);

export type ExportRecord = z.infer<typeof ExportRecordSchema>;
export type CompositionRecord = z.infer<typeof CompositionRecordSchema>;
export type OutputRecord = z.infer<typeof OutputRecordSchema>;

const outputRules: RecordRules<typeof OutputRecordSchema> = { schema: OutputRecordSchema, needsChecksum: () => true };

export const outputsPrefix = (runId: string): string => `${runPrefix(runId)}outputs/`;

export function exportRecord(s: RunExportSummary, opts: { dtype?: string; delta?: boolean }, createdAt: Date): ExportRecord {
  return { kind: 'export', createdAt: createdAt.toISOString(), out: s.out, seq: s.seq, delta: opts.delta ?? false, dtype: opts.dtype ?? 'base', ...written(s) };
}

export function compositionRecord(s: ComposeSummary, opts: { dtype?: string }, createdAt: Date): CompositionRecord {
  return { kind: 'composition', createdAt: createdAt.toISOString(), out: s.out, method: s.method, runs: s.runs, dtype: opts.dtype ?? 'base', ...written(s) };
}

function written(s: RunExportSummary | ComposeSummary): Pick<OutputRecord, 'units' | 'files' | 'bytes' | 'seconds'> {
  return { units: s.units, files: s.files.length, bytes: s.bytes, seconds: s.seconds };
}

/** Stores a record under a fresh key (time + random, so records never collide or overwrite). */
export async function putOutputRecord(store: ObjectStore, runId: string, record: OutputRecord, random: (n: number) => Buffer = randomBytes): Promise<string> {
  const stamp = record.createdAt.replace(/\D/g, '').slice(0, 17);
  const key = `${outputsPrefix(runId)}${stamp}-${random(4).toString('hex')}.json`;
  await store.put(key, encodeRecord(record, 1));
  return key;
}

export async function listOutputKeys(store: ObjectStore, runId: string): Promise<string[]> {
  return (await store.list(outputsPrefix(runId))).filter((k) => k.endsWith('.json'));
}

export function readOutputRecord(store: ObjectStore, key: string): Promise<OutputRecord> {
  return getRecord(store, key, outputRules, () => new NotFoundError(store.url, key));
}
