/**
 * Streams a model in Hugging Face layout: the base's tensors, with whole units replaced by other
 * weights (a run's units, a delta package, a composition), tensor by tensor.
 *
 * Tensors go out in the base's file order. Memory stays bounded by what is in flight, never the
 * model: a unit's replacement weights are loaded when its first tensor is due and each tensor is
 * dropped once handed to the writer (HF files keep a unit's tensors together, in architecture or
 * alphabetical order alike, so a unit is rarely held for long); every other tensor is a ranged
 * read of the base file. One tensor is read ahead so reading overlaps writing.
 */
import { LisaError } from '../errors.ts';
import { readTensorBytes, readTensorF32, writeSafetensors, type TensorEntry } from '../tensors/safetensors.ts';
import { dtypeSize, isFloatDtype, type Dtype } from '../tensors/dtypes.ts';
import { INDEX_FILE, SINGLE_FILE, type BaseLayout, type BaseTensor } from './base-files.ts';
import type { Destination } from './destination.ts';
import { inlineHasher, sha256Hex, type Hasher } from '../tensors/hashing.ts';

export const EXPORT_DTYPES = ['base', 'f32', 'bf16', 'f16'] as const;
export type ExportDtype = (typeof EXPORT_DTYPES)[number];

const DTYPE_OF: Record<Exclude<ExportDtype, 'base'>, Dtype> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };
const TORCH_DTYPE: Record<Exclude<ExportDtype, 'base'>, string> = { f32: 'float32', bf16: 'bfloat16', f16: 'float16' };

export interface UnitData {
  /** every tensor of the unit, F32 */
  tensors: Map<string, Float32Array>;
  /** resolves once the source of these weights is known to be intact; nothing is committed before */
  verified?: Promise<void>;
}

/** Weights that replace the base's, a whole unit at a time. */
export interface UnitOverrides {
  units: ReadonlySet<string>;
  /** called once per unit, when its first tensor is about to be written */
  load(unit: string): Promise<UnitData>;
}

export interface ExportSummary {
  /** the target: absolute directory or store URL */
  out: string;
  /** file names written, in writing order */
  files: string[];
  /** total bytes written */
  bytes: number;
  /** file name -> sha256 hex */
  sha256s: Record<string, string>;
  seconds: number;
}

export interface WriteProgress {
  tensors: number;
  totalTensors: number;
  bytes: number;
  totalBytes: number;
}

export interface WriteModelOptions {
  base: BaseLayout;
  overrides: UnitOverrides;
  dest: Destination;
  dtype: ExportDtype;
  /** bytes of tensor data per shard; a single model.safetensors when everything fits */
  shardSize: number;
  /** written as lisa-export.json: where the weights came from */
  provenance: Record<string, unknown>;
  /** a check running alongside (the base's sha256): the model is committed only if it resolves */
  verify?: Promise<unknown>;
  /** hashes the weight files as they are written (default: on this thread) */
  hasher?: Hasher;
  onProgress?: (p: WriteProgress) => void;
  now?: () => number;
}

export class OverrideMismatchError extends LisaError {
  constructor(unit: string, why: string) {
    super('MERGE_UNIT_MISMATCH', `replacement weights for unit ${unit} do not fit the base: ${why}`, { unit });
  }
}

interface Planned {
  name: string;
  base: BaseTensor;
  dtype: Dtype;
  bytes: number;
  override: boolean;
}

function outDtype(base: Dtype, dtype: ExportDtype): Dtype {
  if (dtype === 'base' || !isFloatDtype(base)) return base;
  return DTYPE_OF[dtype];
}

/** Tensors in the base's file order (files as listed, tensors by offset). */
function plan(base: BaseLayout, overrides: UnitOverrides, dtype: ExportDtype): Planned[] {
  const fileOrder = new Map(base.weightFiles.map((f, i) => [f, i]));
  const all = [...base.tensors.entries()].map(([name, t]) => ({ name, t }));
  all.sort((a, b) => fileOrder.get(a.t.file)! - fileOrder.get(b.t.file)! || a.t.info.begin - b.t.info.begin);
  return all.map(({ name, t }) => {
    const d = outDtype(t.info.dtype, dtype);
    return {
      name,
      base: t,
      dtype: d,
      bytes: t.info.shape.reduce((n, x) => n * x, dtypeSize(d)),
      override: overrides.units.has(t.unit),
    };
  });
}

/** Greedy, like transformers' save_pretrained: a new shard starts when the next tensor would overflow. */
function shardPlan<T extends { bytes: number }>(tensors: T[], shardSize: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    if (current.length > 0 && size + t.bytes > shardSize) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += t.bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

const shardName = (i: number, n: number): string =>
  n === 1 ? SINGLE_FILE : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;

type Data = Float32Array | Uint8Array;

/**
 * Loads planned tensors in order with one tensor of lookahead, fetching a unit's replacement
 * weights when its first tensor is needed and dropping them once its last tensor is taken.
 */
class TensorFeed {
  /** the overrides' integrity checks, awaited before the model is committed */
  readonly checks: Promise<void>[] = [];
  private readonly pending = new Map<number, Promise<Data>>();
  private readonly units = new Map<string, Promise<Map<string, Float32Array>>>();
  private readonly left = new Map<string, number>();

  constructor(
    private readonly items: Planned[],
    private readonly overrides: UnitOverrides,
  ) {
    for (const p of items) if (p.override) this.left.set(p.base.unit, (this.left.get(p.base.unit) ?? 0) + 1);
  }

  take(i: number): Promise<Data> {
    this.start(i);
    if (i + 1 < this.items.length) this.start(i + 1);
    const p = this.pending.get(i)!;
    this.pending.delete(i);
    return p;
  }

  private start(i: number): void {
    if (this.pending.has(i) || i >= this.items.length) return;
    const p = this.load(this.items[i]);
    // Surfaced by take(); without this a failed read-ahead nobody awaits yet is an unhandled rejection.
    p.catch(() => undefined);
    this.pending.set(i, p);
  }

  private async load(p: Planned): Promise<Data> {
    const { info, source } = p.base;
    if (!p.override) return p.dtype === info.dtype ? readTensorBytes(source, info) : readTensorF32(source, info);
    const unit = p.base.unit;
    let weights = this.units.get(unit);
    if (!weights) {
      weights = this.overrides.load(unit).then((d) => {
        if (d.verified) this.checks.push(d.verified);
        return d.tensors;
      });
      this.units.set(unit, weights);
    }
    const map = await weights;
    const data = map.get(p.name);
    const count = info.shape.reduce((n, x) => n * x, 1);
    if (!data) throw new OverrideMismatchError(unit, `tensor ${p.name} is missing`);
    if (data.length !== count) throw new OverrideMismatchError(unit, `tensor ${p.name} has ${data.length} elements, the base ${count}`);
    map.delete(p.name);
    const left = this.left.get(unit)! - 1;
    this.left.set(unit, left);
    if (left === 0) {
      if (map.size > 0) throw new OverrideMismatchError(unit, `tensor ${[...map.keys()][0]} is not in the base`);
      this.units.delete(unit);
    }
    return data;
  }
}

/** Writes the whole model to `dest` and commits it; on failure nothing is left at the target. */
export async function writeModel(opts: WriteModelOptions): Promise<ExportSummary> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const { base, dest } = opts;
  const items = plan(base, opts.overrides, opts.dtype);
  const shards = shardPlan(items, opts.shardSize);
  const totalBytes = items.reduce((n, p) => n + p.bytes, 0);
  const feed = new TensorFeed(items, opts.overrides);
  const index = new Map(items.map((p, i) => [p, i]));
  const files: string[] = [];
  const sha256s: Record<string, string> = {};
  let bytes = 0;
  let doneTensors = 0;
  let doneBytes = 0;

  const record = (name: string, size: number, sha: string) => {
    files.push(name);
    sha256s[name] = sha;
    bytes += size;
  };
  const putFile = async (name: string, body: Uint8Array) => {
    await dest.put(name, body);
    record(name, body.byteLength, sha256Hex(body));
  };

  try {
    const weightMap: Record<string, string> = {};
    for (const [s, shard] of shards.entries()) {
      const name = shardName(s, shards.length);
      const entries: TensorEntry[] = shard.map((p) => ({
        name: p.name,
        dtype: p.dtype,
        shape: p.base.info.shape,
        data: async () => {
          const data = await feed.take(index.get(p)!);
          doneTensors++;
          doneBytes += p.bytes;
          opts.onProgress?.({ tensors: doneTensors, totalTensors: items.length, bytes: doneBytes, totalBytes });
          return data;
        },
      }));
      for (const p of shard) weightMap[p.name] = name;
      const out = await writeSafetensors(dest.sink(name), entries, { format: 'pt' }, { hash: (opts.hasher ?? inlineHasher).stream() });
      record(name, out.bytes, out.sha256);
    }
    if (shards.length > 1) {
      const indexJson = { metadata: { total_size: totalBytes }, weight_map: weightMap };
      await putFile(INDEX_FILE, encodeJson(indexJson));
    }
    await opts.verify;
    await Promise.all(feed.checks);
    for (const name of base.otherFiles) await putFile(name, await base.store.get(name));
    await putFile('lisa-export.json', encodeJson({ ...opts.provenance, dtype: opts.dtype, files: { ...sha256s } }));
    const config = opts.dtype === 'base' ? base.config : { ...base.config, torch_dtype: TORCH_DTYPE[opts.dtype] };
    // Last: on an object store, config.json is what makes the prefix look like a model.
    await putFile('config.json', encodeJson(config));
    await dest.commit();
  } catch (err) {
    await dest.abort().catch(() => undefined);
    throw await explained(err, opts.verify);
  }
  return { out: dest.url, files, bytes, sha256s, seconds: (now() - t0) / 1000 };
}

/** A base that changed explains any failure to write from it (a tensor of another dtype): that error, not the symptom. */
export function explained(err: unknown, verify: Promise<unknown> | undefined): Promise<unknown> {
  return (verify ?? Promise.resolve()).then(
    () => err,
    (changed: unknown) => changed,
  );
}

const encodeJson = (x: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(x, null, 2)}\n`);
