/**
 * Exports of a run: a merged Hugging Face model at any committed seq, a delta package holding
 * only the units the run changed, which `applyDelta` turns back into the full model, or (for a
 * LoRA run) its adapters in PEFT's layout (./lora.ts). A LoRA run's units are merged as the base
 * with the adapters folded in, so merged models, deltas and compositions treat it like any run.
 *
 * A delta package is one safetensors file with the run's current weights of every unit it has
 * trained (replacements, not differences, so applying one is exact) and metadata:
 *   format "lisa-delta", format_version "1", base_sha256, run_id, seq, global_step, arch,
 *   units (JSON array of unit names).
 * It carries no optimizer state: it cannot resume a run, only rebuild its model.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { LisaError } from '../errors.ts';
import { headManifest, readManifest, type ChunkManifest } from '../store/manifest.ts';
import { readRunSpec, type RunSpec } from '../store/run-spec.ts';
import { storeSource, type ObjectStore } from '../store/object-store.ts';
import { BaseChangedError, baseLoadFailure } from '../train/sources.ts';
import { readHeader, readTensorF32, writeSafetensors, type AbortableSink, type SafetensorsHeader, type TensorEntry } from '../tensors/safetensors.ts';
import { fileSink, fileSource, type ByteSource } from '../tensors/source.ts';
import { isFloatDtype, type Dtype } from '../tensors/dtypes.ts';
import { unitNames } from '../models/units.ts';
import { baseDigests, baseStore, openBaseLayout, type BaseLayout } from './base-files.ts';
import { dirDestination, OutputExistsError, storeDestination, syncDir, type Destination } from './destination.ts';
import { readUnitWeights } from './unit-weights.ts';
import { withWorkerHasher, type Hasher } from '../tensors/hashing.ts';
import { explained, writeModel, type ExportDtype, type ExportSummary, type UnitOverrides, type WriteModelOptions, type WriteProgress } from './writer.ts';
import { foldUnit, NotALoraRunError, writeAdapter } from './lora.ts';
import { loraConfig } from '../train/method.ts';

export const DELTA_FORMAT = 'lisa-delta';
export const DELTA_FORMAT_VERSION = '1';
export const DEFAULT_SHARD_SIZE = 2_000_000_000;

export class DeltaBaseMismatchError extends LisaError {
  constructor(delta: string, base: string, deltaSha: string, baseSha: string) {
    super(
      'DELTA_BASE_MISMATCH',
      `delta ${delta} was made for base sha256 ${deltaSha}, but base ${base} has sha256 ${baseSha}; apply it to the base it was exported from`,
      { delta, base, deltaSha, baseSha },
    );
  }
}

/** A location or size an export cannot use: codes EXPORT_STORE_MISSING, EXPORT_OUTPUT_INVALID, EXPORT_SIZE_INVALID. */
export class ExportArgumentError extends LisaError {}

export class InvalidDeltaError extends LisaError {
  constructor(delta: string, why: string) {
    super('DELTA_INVALID', `delta package ${delta}: ${why}`, { delta });
  }
}

/** A delta package that no longer reads back as the file an export wrote (truncated, empty, a damaged header). */
export class DeltaCorruptError extends LisaError {
  constructor(delta: string, cause: LisaError) {
    super('DELTA_CORRUPT', `delta package ${delta} is damaged: ${cause.message}`, { delta, code: cause.code }, { cause });
  }
}

/** Reads from a delta package, turning the safetensors reader's complaints into DELTA_CORRUPT naming it. */
function readingDelta<T>(delta: string, read: Promise<T>): Promise<T> {
  return read.catch((err: unknown) => {
    throw err instanceof LisaError && err.code.startsWith('SAFETENSORS_') ? new DeltaCorruptError(delta, err) : err;
  });
}

/** Options every export shares. */
export interface OutputOptions {
  /** a directory path or s3://bucket/prefix (a file path or s3://bucket/key for a delta) */
  out: string;
  dtype?: ExportDtype;
  /** bytes of tensor data per shard (default 2 GB) */
  shardSize?: number;
  /** opens s3:// bases and outputs (the caller configures credentials) */
  openStore?: (url: string) => ObjectStore;
  onProgress?: (p: WriteProgress) => void;
  now?: () => number;
}

export interface ExportRunOptions extends OutputOptions {
  store: ObjectStore;
  runId: string;
  /** committed seq; default the head; -1 is the base before any chunk */
  at?: number;
  /** where the base is, when it moved since the run was created (it must still match run.json's sha256) */
  base?: string;
  /** write a delta package (only the changed units) instead of the merged model */
  delta?: boolean;
  /** write a LoRA run's adapters (PEFT's adapter_config.json + adapter_model.safetensors) instead of the merged model */
  adapter?: boolean;
}

export interface RunExportSummary extends ExportSummary {
  runId: string;
  /** the seq exported; -1 for a run with no chunk */
  seq: number;
  /** units taken from the run rather than the base */
  units: string[];
}

/** The manifest at `at` (head by default, none for -1 or a run without chunks). */
export async function manifestAt(store: ObjectStore, runId: string, at?: number): Promise<ChunkManifest | null> {
  if (at === undefined) return headManifest(store, runId);
  return at < 0 ? null : readManifest(store, runId, at);
}

/**
 * Starts checking the base against the sha256 it must have, alongside the export: writeModel
 * commits only once this resolves, so a changed base never yields a model, and the check costs
 * no extra wall time.
 */
export function checkBase(base: BaseLayout, expected: string, hasher: Hasher, mismatch: (actual: { sha256: string; files: Record<string, string> }) => Error): Promise<void> {
  const check = baseDigests(base, hasher).then((actual) => {
    if (actual.sha256 !== expected) throw mismatch(actual);
  });
  check.catch(() => undefined); // awaited by the writer; a failed export may never get there
  return check;
}

/** What every model an export, apply or compose writes shares: where, in which dtype and shards, progress. */
export async function modelOutput(opts: OutputOptions, hasher: Hasher): Promise<Pick<WriteModelOptions, 'dest' | 'dtype' | 'shardSize' | 'hasher' | 'onProgress' | 'now'>> {
  return { dest: await openDestination(opts.out, opts.openStore), dtype: opts.dtype ?? 'base', shardSize: opts.shardSize ?? DEFAULT_SHARD_SIZE, hasher, onProgress: opts.onProgress, now: opts.now };
}

export async function openDestination(out: string, openStore?: (url: string) => ObjectStore): Promise<Destination> {
  if (!out.startsWith('s3://')) return dirDestination(out);
  return storeDestination(requireOpener(openStore, out)(out));
}

/** The units a run changed at `manifest` and their weights: as stored, or for a LoRA run the base's with the adapters folded in. */
export function runOverrides(store: ObjectStore, run: RunSpec, manifest: ChunkManifest | null, base: BaseLayout, hasher: Hasher): UnitOverrides {
  const refs = manifest?.units ?? {};
  const lora = loraConfig(run.config, base.spec);
  return {
    units: new Set(Object.keys(refs)),
    async load(unit) {
      const stored = await readUnitWeights(store, refs[unit], { unit, hasher });
      return lora ? { tensors: await foldUnit(base, unit, stored.tensors, lora), verified: stored.verified } : stored;
    },
  };
}

export function exportRun(opts: ExportRunOptions): Promise<RunExportSummary> {
  return withWorkerHasher((hasher) => exportWith(opts, hasher));
}

async function exportWith(opts: ExportRunOptions, hasher: Hasher): Promise<RunExportSummary> {
  if (opts.adapter && opts.delta) throw new ExportArgumentError('EXPORT_OPTIONS_INVALID', 'adapter and delta exclude each other: an export writes adapters, a delta package or a merged model', {});
  const run = await readRunSpec(opts.store, opts.runId);
  if (opts.adapter && run.config.method !== 'lora') throw new NotALoraRunError(run.id, run.config.method);
  const manifest = await manifestAt(opts.store, run.id, opts.at);
  const ref = opts.base ?? run.config.base;
  const base = await openBaseLayout(ref, baseStore(ref, opts.openStore)).catch(baseLoadFailure(ref, run.base));
  try {
    return await exportBase(opts, hasher, run, manifest, base);
  } finally {
    await base.close();
  }
}

async function exportBase(opts: ExportRunOptions, hasher: Hasher, run: RunSpec, manifest: ChunkManifest | null, base: BaseLayout): Promise<RunExportSummary> {
  const ref = base.ref;
  const verify = checkBase(base, run.base.sha256, hasher, (actual) => new BaseChangedError(ref, run.base, actual));
  const overrides = runOverrides(opts.store, run, manifest, base, hasher);
  const seq = manifest?.seq ?? -1;
  const units = unitNames(base.spec).filter((u) => overrides.units.has(u));
  const provenance = {
    format: 'lisa-export',
    version: 1,
    runId: run.id,
    seq,
    globalStep: manifest?.globalStep ?? 0,
    baseSha256: run.base.sha256,
    units,
  };
  const lora = loraConfig(run.config, base.spec);
  if (opts.adapter && lora) {
    const summary = await writeAdapter({
      store: opts.store,
      run,
      manifest,
      spec: base.spec,
      lora,
      dest: await openDestination(opts.out, opts.openStore),
      dtype: deltaDtype('F32', opts.dtype ?? 'base'),
      verify,
      hasher,
      provenance: { ...provenance, format: 'lisa-adapter' },
      now: opts.now,
    });
    return { ...summary, runId: run.id, seq, units };
  }
  if (opts.delta) {
    const summary = await writeDelta(opts, hasher, base, overrides, verify, {
      format: DELTA_FORMAT,
      format_version: DELTA_FORMAT_VERSION,
      base_sha256: run.base.sha256,
      run_id: run.id,
      seq: String(seq),
      global_step: String(manifest?.globalStep ?? 0),
      arch: base.spec.arch,
      units: JSON.stringify(units),
    });
    return { ...summary, runId: run.id, seq, units };
  }
  const summary = await writeModel({
    base,
    overrides,
    provenance,
    verify,
    ...(await modelOutput(opts, hasher)),
  });
  return { ...summary, runId: run.id, seq, units };
}

/** One file at `out`, appearing whole: temp name then rename locally, a single object in a store. */
async function singleFileOutput(out: string, openStore?: (url: string) => ObjectStore): Promise<{ url: string; sink: AbortableSink; commit(): Promise<void>; abort(): Promise<void> }> {
  if (out.startsWith('s3://')) {
    const slash = out.lastIndexOf('/');
    if (slash <= 's3://'.length) throw new ExportArgumentError('EXPORT_OUTPUT_INVALID', `delta output ${out}: expected s3://bucket/key`, { out });
    const store = requireOpener(openStore, out)(out.slice(0, slash));
    const key = out.slice(slash + 1);
    if (await store.head(key)) throw new OutputExistsError(out, 'an object');
    return { url: out, sink: store.putStream(key), commit: async () => undefined, abort: () => store.delete(key) };
  }
  const path = resolve(out);
  if (await stat(path).catch(() => null)) throw new OutputExistsError(path, 'a file');
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.partial-${randomBytes(6).toString('hex')}`);
  return {
    url: path,
    sink: fileSink(tmp),
    async commit() {
      // link(2) fails when the name was taken meanwhile, where rename(2) would replace it.
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new OutputExistsError(path, 'a file written during the export');
        throw err;
      }
      await rm(tmp, { force: true });
      await syncDir(dirname(path));
    },
    abort: () => rm(tmp, { force: true }),
  };
}

function requireOpener(openStore: ((url: string) => ObjectStore) | undefined, url: string): (url: string) => ObjectStore {
  if (!openStore) throw new ExportArgumentError('EXPORT_STORE_MISSING', `cannot use ${url}: no store opener was given for s3:// locations`, { url });
  return openStore;
}

async function writeDelta(
  opts: OutputOptions,
  hasher: Hasher,
  base: BaseLayout,
  overrides: UnitOverrides,
  verify: Promise<void>,
  metadata: Record<string, string>,
): Promise<ExportSummary> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const dtype = opts.dtype ?? 'base';
  const byUnit = new Map<string, string[]>();
  for (const [name, t] of base.tensors) {
    if (!overrides.units.has(t.unit)) continue;
    byUnit.set(t.unit, [...(byUnit.get(t.unit) ?? []), name]);
  }
  // One unit's weights in memory at a time: loaded at its first tensor, dropped after its last.
  let current: { unit: string; tensors: Map<string, Float32Array> } | null = null;
  const checks: Promise<void>[] = [];
  const entries: TensorEntry[] = [];
  for (const unit of unitNames(base.spec)) {
    for (const name of byUnit.get(unit) ?? []) {
      const info = base.tensors.get(name)!.info;
      entries.push({
        name,
        dtype: deltaDtype(info.dtype, dtype),
        shape: info.shape,
        data: async () => {
          if (current?.unit !== unit) {
            const loaded = await overrides.load(unit);
            if (loaded.verified) checks.push(loaded.verified);
            current = { unit, tensors: loaded.tensors };
          }
          const data = current.tensors.get(name);
          if (!data || data.length !== info.shape.reduce((n, x) => n * x, 1)) {
            throw new InvalidDeltaError(name, `unit ${unit} has no weights of the base's shape for this tensor`);
          }
          current.tensors.delete(name);
          return data;
        },
      });
    }
  }
  const out = await singleFileOutput(opts.out, opts.openStore);
  let written;
  try {
    written = await writeSafetensors(out.sink, entries, metadata, { hash: hasher.stream() });
    await verify;
    await Promise.all(checks);
    await out.commit();
  } catch (err) {
    await out.abort().catch(() => undefined);
    throw await explained(err, verify);
  }
  return { out: out.url, files: [basename(out.url)], bytes: written.bytes, sha256s: { [basename(out.url)]: written.sha256 }, seconds: (now() - t0) / 1000 };
}

function deltaDtype(base: Dtype, dtype: ExportDtype): Dtype {
  if (dtype === 'f32') return 'F32';
  if (dtype === 'bf16') return 'BF16';
  if (dtype === 'f16') return 'F16';
  return isFloatDtype(base) ? base : 'F32';
}

export interface ApplyDeltaOptions extends OutputOptions {
  /** base model directory or s3:// prefix */
  base: string;
  /** delta package: a file path or s3://bucket/key */
  delta: string;
}

export interface DeltaInfo {
  baseSha256: string;
  runId: string;
  seq: number;
  globalStep: number;
  units: string[];
  header: SafetensorsHeader;
  source: ByteSource;
}

export async function readDeltaInfo(delta: string, openStore?: (url: string) => ObjectStore): Promise<DeltaInfo> {
  let source: ByteSource;
  if (delta.startsWith('s3://')) {
    const slash = delta.lastIndexOf('/');
    source = storeSource(requireOpener(openStore, delta)(delta.slice(0, slash)), delta.slice(slash + 1));
  } else {
    source = fileSource(resolve(delta));
  }
  const header = await readingDelta(delta, readHeader(source));
  const m = header.metadata;
  if (m.format !== DELTA_FORMAT) throw new InvalidDeltaError(delta, `metadata format is ${JSON.stringify(m.format ?? null)}, expected "${DELTA_FORMAT}"`);
  if (m.format_version !== DELTA_FORMAT_VERSION) {
    throw new InvalidDeltaError(delta, `format_version ${m.format_version} is not supported (this build reads ${DELTA_FORMAT_VERSION})`);
  }
  let units: unknown;
  try {
    units = JSON.parse(m.units ?? '');
  } catch {
    units = null;
  }
  if (!Array.isArray(units) || !units.every((u) => typeof u === 'string')) throw new InvalidDeltaError(delta, 'metadata units is not a JSON array of unit names');
  if (!/^[0-9a-f]{64}$/.test(m.base_sha256 ?? '')) throw new InvalidDeltaError(delta, 'metadata base_sha256 is not a sha256 hex digest');
  return { baseSha256: m.base_sha256, runId: m.run_id ?? '', seq: Number(m.seq), globalStep: Number(m.global_step), units: units as string[], header, source };
}

export function applyDelta(opts: ApplyDeltaOptions): Promise<ExportSummary> {
  return withWorkerHasher((hasher) => applyWith(opts, hasher));
}

async function applyWith(opts: ApplyDeltaOptions, hasher: Hasher): Promise<ExportSummary> {
  const delta = await readDeltaInfo(opts.delta, opts.openStore);
  const base = await openBaseLayout(opts.base, baseStore(opts.base, opts.openStore));
  try {
    return await applyOnBase(opts, hasher, delta, base);
  } finally {
    await base.close();
  }
}

async function applyOnBase(opts: ApplyDeltaOptions, hasher: Hasher, delta: DeltaInfo, base: BaseLayout): Promise<ExportSummary> {
  const verify = checkBase(base, delta.baseSha256, hasher, (actual) => new DeltaBaseMismatchError(opts.delta, opts.base, delta.baseSha256, actual.sha256));

  const declared = new Set(delta.units);
  const byUnit = new Map<string, string[]>();
  for (const name of delta.header.tensors.keys()) {
    const t = base.tensors.get(name);
    if (!t) throw new InvalidDeltaError(opts.delta, `tensor ${name} is not a tensor of the base's architecture`);
    if (!declared.has(t.unit)) throw new InvalidDeltaError(opts.delta, `tensor ${name} belongs to unit ${t.unit}, which metadata units does not list`);
    byUnit.set(t.unit, [...(byUnit.get(t.unit) ?? []), name]);
  }
  for (const u of declared) {
    if (!unitNames(base.spec).includes(u)) throw new InvalidDeltaError(opts.delta, `unit ${u} is not a unit of the base`);
  }
  const overrides: UnitOverrides = {
    units: declared,
    async load(unit) {
      const tensors = new Map<string, Float32Array>();
      for (const name of byUnit.get(unit) ?? []) tensors.set(name, await readingDelta(opts.delta, readTensorF32(delta.source, delta.header.tensors.get(name)!)));
      return { tensors };
    },
  };
  return writeModel({
    base,
    overrides,
    provenance: {
      format: 'lisa-export',
      version: 1,
      runId: delta.runId,
      seq: delta.seq,
      globalStep: delta.globalStep,
      baseSha256: delta.baseSha256,
      units: unitNames(base.spec).filter((u) => declared.has(u)),
      delta: basename(opts.delta),
    },
    verify,
    ...(await modelOutput(opts, hasher)),
  });
}

/** "2GB", "500MB", "1.5GiB", "4096": bytes, with decimal (k/M/G/T) or binary (Ki/Mi/Gi/Ti) units as in transformers. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(|b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$/i.exec(text);
  const scale: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
  const bytes = m ? Math.floor(Number(m[1]) * scale[m[2].toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new ExportArgumentError('EXPORT_SIZE_INVALID', `size '${text}': expected a positive number of bytes with an optional unit (KB, MB, GB, KiB, MiB, GiB), e.g. 2GB`, { size: text });
  }
  return bytes;
}
