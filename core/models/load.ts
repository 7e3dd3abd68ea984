/**
 * Hugging Face-layout model directories: config.json plus model.safetensors, or shards listed by
 * model.safetensors.index.json. Loading checks the tensors against the architecture's full list
 * (units.ts): every tensor present, none unexpected, every shape right.
 *
 * The base's identity (`sha256`, recorded in run specs) is the sha256 of model.safetensors' bytes;
 * for a sharded model it is the sha256 of the shards' lowercase hex digests concatenated in shard
 * file name order (HF names shards model-00001-of-0000N..., so that is their natural order).
 */
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LisaError, type ErrorCode } from '../errors.ts';
import { decodeFloats, isFloatDtype } from '../tensors/dtypes.ts';
import { readHeader, SafetensorsError, type SafetensorsHeader, type TensorEntry, type TensorInfo, writeSafetensors } from '../tensors/safetensors.ts';
import { inlineHasher, sha256Hex, type Hasher } from '../tensors/hashing.ts';
import { type ByteSource, fileSink, fileSource, readAhead } from '../tensors/source.ts';
import { configJson, type ModelSpec, parseConfig } from './config.ts';
import { canonicalName, tensorShapes } from './units.ts';

export interface BaseModel {
  spec: ModelSpec;
  weights: Map<string, Float32Array>;
  sha256: string;
  /** the sha256 of each weight file (model.safetensors, or each shard), of which `sha256` is made */
  files: Record<string, string>;
  dir: string;
}


export class ModelDirError extends LisaError {
  constructor(code: Extract<ErrorCode, 'MODEL_FILE_MISSING' | 'MODEL_FILE_INVALID' | 'MODEL_INDEX_INVALID' | 'MODEL_TENSORS_MISMATCH' | 'MODEL_OUT_DIR_NOT_EMPTY'>, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

export const SAFETENSORS_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Opens a file of the model by name; undefined when it does not exist. */
export type ModelFileOpener = (name: string) => Promise<ByteSource | undefined>;

export async function loadBaseDir(dir: string): Promise<BaseModel> {
  const open: ModelFileOpener = async (name) => ((await isFile(join(dir, name))) ? fileSource(join(dir, name)) : undefined);
  return { ...(await loadBase(open, dir)), dir };
}

export interface LoadOptions {
  /** reads in flight at once. Default 8 */
  readWindow?: number;
  /**
   * Consecutive tensors are read together up to this many bytes (a bigger tensor is one read of
   * its own), and the weights are views into that read: per-tensor reads leave an object store
   * serving many small requests (norms are a few KB) at a fraction of its large-read throughput.
   * Default 8 MiB, S3Store's part size.
   */
  readBytes?: number;
  /**
   * Computes the sha256s; default inline on this thread. core/tensors/hashing.ts's workerHasher
   * moves it to another thread: on 2 shared cores that gained an S3 load ~5% (noise-level),
   * against a worker's start-up cost per process (bench/s3-base-load.ts).
   */
  hasher?: Pick<Hasher, 'stream'>;
}

/** loadBaseDir over any file opener (a directory, an object store prefix); `where` names it in errors. */
export async function loadBase(open: ModelFileOpener, where: string, opts: LoadOptions = {}): Promise<Omit<BaseModel, 'dir'>> {
  const readWindow = opts.readWindow ?? 8;
  const readBytes = opts.readBytes ?? 8 * 1024 * 1024;
  // config.json and the safetensors headers are read concurrently: from an object store or the
  // Hub each is a round trip, and the tensor reads can only start once the headers are in
  const [configOpened, singleOpened] = await Promise.allSettled([open('config.json'), open(SAFETENSORS_FILE)]);
  // config.json's failures first, as when the files were opened one after the other
  if (configOpened.status === 'rejected') throw configOpened.reason;
  const configSrc = configOpened.value;
  if (!configSrc) throw new ModelDirError('MODEL_FILE_MISSING', `${where}: no config.json; expected a Hugging Face model directory`, { where });
  const specRead = readJson(configSrc).then((json) => parseConfig(json, configSrc.name));
  if (singleOpened.status === 'rejected') {
    await specRead;
    throw singleOpened.reason;
  }
  const single = singleOpened.value;
  const shardsRead = (async () => {
    const shards: Array<{ file: string; src: ByteSource; names?: Set<string>; index?: string }> = single ? [{ file: SAFETENSORS_FILE, src: single }] : await openShards(open, where);
    return shards.map((s) => ({ ...s, header: readHeader(s.src) }));
  })();
  // The tensor reads start as soon as the headers are in (config.json may still be on its way);
  // the reads are cut at tensor boundaries, so they cannot depend on the config.
  const stop = new AbortController();
  const readsStarted = shardsRead.then(async (shards) => {
    const headers = await Promise.all(shards.map((s) => s.header));
    const groups = headers.map((h, i) => readGroups(h, readBytes).map((g) => ({ ...g, src: shards[i].src })));
    const reads = readAhead(shards[0].src, groups.flat(), readWindow, stop.signal);
    const first = reads.next();
    first.catch(() => undefined);
    return { groups, reads, first };
  });
  for (const p of [specRead, shardsRead, readsStarted]) p.catch(() => undefined); // awaited below, in order
  try {
    return await decodeBase(where, specRead, shardsRead, readsStarted, opts.hasher);
  } finally {
    // a failed load starts no more reads
    stop.abort();
  }
}

async function decodeBase(
  where: string,
  specRead: Promise<ModelSpec>,
  shardsRead: Promise<Array<{ file: string; src: ByteSource; names?: Set<string>; index?: string; header: Promise<SafetensorsHeader> }>>,
  readsStarted: Promise<{ groups: Array<Array<{ offset: number; length: number; tensors: TensorInfo[] }>>; reads: AsyncGenerator<Uint8Array>; first: Promise<IteratorResult<Uint8Array>> }>,
  hasher: LoadOptions['hasher'],
): Promise<Omit<BaseModel, 'dir'>> {
  // the config's errors come first, then each shard's in shard order, as if read one by one
  const spec = await specRead;
  const shards = await shardsRead;
  for (const s of shards) s.header.catch(() => undefined);
  const expected = tensorShapes(spec);
  const found = new Map<string, { info: TensorInfo; src: ByteSource }>();
  const perShard: Array<{ file: string; src: ByteSource; header: SafetensorsHeader; infos: TensorInfo[] }> = [];
  for (const { file, src, names, index, header: headerRead } of shards) {
    const header = await headerRead;
    const infos: TensorInfo[] = [];
    for (const info of header.tensors.values()) {
      if (names && !names.has(info.name)) {
        throw new ModelDirError('MODEL_INDEX_INVALID', `${src.name}: holds tensor "${info.name}", which ${INDEX_FILE} does not list for this shard`, { where, tensor: info.name });
      }
      const name = canonicalName(spec, info.name);
      if (name === null) continue;
      const other = found.get(name);
      if (other) throw new ModelDirError('MODEL_TENSORS_MISMATCH', `${where}: tensor "${name}" is in both ${other.src.name} and ${src.name}`, { where, tensor: name });
      found.set(name, { info, src });
      infos.push(info);
    }
    for (const name of names ?? []) {
      if (!header.tensors.has(name)) throw new ModelDirError('MODEL_INDEX_INVALID', `${index}: puts tensor "${name}" in ${file}, which does not hold it`, { where, tensor: name });
    }
    perShard.push({ file, src, header, infos });
  }
  checkTensors(spec, expected, new Map([...found].map(([n, { info, src }]) => [n, { shape: info.shape, file: src.name }])), where);

  // One pass over all files, in reads of whole consecutive tensors with `readWindow` in flight
  // (across shard boundaries, so the window never drains between shards): the header region, then
  // the tensors in file order; the safetensors reader has already checked that they cover each file
  // without holes, so this hashes every byte.
  const weights = new Map<string, Float32Array>();
  const digests: Array<{ file: string; sha256: string }> = [];
  const { groups, reads, first } = await readsStarted;
  let next: Promise<IteratorResult<Uint8Array>> | undefined = first;
  for (const [i, { file, src, infos }] of perShard.entries()) {
    const hash = (hasher ?? inlineHasher).stream();
    const kept = new Set(infos.map((info) => info.name));
    for (const group of groups[i]) {
      const bytes = (await (next ?? reads.next())).value as Uint8Array;
      next = undefined;
      await hash.update(bytes);
      // F32 weights are views into the read, unless it also holds a tensor nobody keeps (GPT-2's
      // attn.bias masks, 4 MiB a layer), which the views would keep in memory
      const share = group.tensors.every((info) => kept.has(info.name));
      for (const info of group.tensors) {
        if (!kept.has(info.name)) continue;
        if (!isFloatDtype(info.dtype)) throw new SafetensorsError('SAFETENSORS_NOT_FLOAT', src.name, info.name, `dtype ${info.dtype} is not a float type; model weights must be F32, F16 or BF16`);
        const at = info.begin - group.offset;
        const tensorBytes = share ? bytes.subarray(at, at + info.end - info.begin) : bytes.slice(at, at + info.end - info.begin);
        weights.set(canonicalName(spec, info.name) as string, decodeFloats(tensorBytes, info.dtype));
      }
    }
    digests.push({ file, sha256: await hash.digest() });
  }
  return { spec, weights, sha256: baseIdentity(digests), files: Object.fromEntries(digests.map((d) => [d.file, d.sha256])) };
}

/**
 * A base's identity (see the module doc) from its weight files' sha256s: model.safetensors' own,
 * or for shards the sha256 of their hex digests concatenated in file name order.
 */
export function baseIdentity(digests: ReadonlyArray<{ file: string; sha256: string }>): string {
  if (digests.length === 1 && digests[0].file === SAFETENSORS_FILE) return digests[0].sha256;
  return sha256Hex([...digests].sort((a, b) => (a.file < b.file ? -1 : 1)).map((d) => d.sha256).join(''));
}

/**
 * The file cut into reads of whole consecutive tensors, up to `readBytes` each: the first read
 * starts at byte 0 with the header, a tensor longer than `readBytes` is a read of its own.
 */
export function readGroups(header: SafetensorsHeader, readBytes: number): Array<{ offset: number; length: number; tensors: TensorInfo[] }> {
  const groups = [{ offset: 0, length: header.dataStart, tensors: [] as TensorInfo[] }];
  for (const info of [...header.tensors.values()].sort((a, b) => a.begin - b.begin)) {
    const last = groups[groups.length - 1];
    const length = info.end - info.begin;
    if (last.length + length <= readBytes) {
      last.tensors.push(info);
      last.length += length;
    } else {
      groups.push({ offset: info.begin, length, tensors: [info] });
    }
  }
  return groups;
}

function checkTensors(
  spec: ModelSpec,
  expected: Map<string, number[]>,
  found: Map<string, { shape: number[]; file: string }>,
  where: string,
  against = 'config.json',
): void {
  const list = (names: string[]) => names.slice(0, 5).map((n) => `"${n}"`).join(', ') + (names.length > 5 ? `, and ${names.length - 5} more` : '');
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  if (missing.length > 0) {
    throw new ModelDirError('MODEL_TENSORS_MISMATCH', `${where}: missing ${missing.length} tensor(s) of the ${spec.arch} architecture in ${against}: ${list(missing)}`, { where, missing });
  }
  const unexpected = [...found.keys()].filter((n) => !expected.has(n));
  if (unexpected.length > 0) {
    const hint = spec.tiedEmbeddings && unexpected.includes('lm_head.weight') ? ` (${against} ties the word embeddings, so there is no lm_head.weight)` : '';
    throw new ModelDirError('MODEL_TENSORS_MISMATCH', `${where}: ${unexpected.length} tensor(s) not part of the architecture in ${against}: ${list(unexpected)}${hint}`, { where, unexpected });
  }
  for (const [name, shape] of expected) {
    const got = found.get(name) as { shape: number[]; file: string };
    if (got.shape.length !== shape.length || got.shape.some((d, i) => d !== shape[i])) {
      throw new ModelDirError('MODEL_TENSORS_MISMATCH', `${got.file}: tensor "${name}" has shape [${got.shape}]; ${against} implies [${shape}]`, { where, tensor: name });
    }
  }
}

async function openShards(open: ModelFileOpener, where: string): Promise<Array<{ file: string; src: ByteSource; names: Set<string>; index: string }>> {
  const indexSrc = await open(INDEX_FILE);
  if (!indexSrc) throw new ModelDirError('MODEL_FILE_MISSING', `${where}: no ${SAFETENSORS_FILE} and no ${INDEX_FILE}`, { where });
  const index = await readJson(indexSrc);
  const bad = (what: string): never => {
    throw new ModelDirError('MODEL_INDEX_INVALID', `${indexSrc.name}: ${what}`, { where });
  };
  const weightMap = (index as { weight_map?: unknown }).weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) bad('expected a "weight_map" object of tensor name -> shard file');
  const byShard = new Map<string, Set<string>>();
  for (const [tensor, file] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof file !== 'string' || !/^[^/\\]+\.safetensors$/.test(file) || file === '.safetensors') {
      bad(`tensor "${tensor}" maps to ${JSON.stringify(file)}; expected a .safetensors file name in the same directory`);
    }
    const names = byShard.get(file as string) ?? new Set<string>();
    names.add(tensor);
    byShard.set(file as string, names);
  }
  if (byShard.size === 0) bad('"weight_map" lists no tensors');
  const shards = [];
  for (const [file, names] of byShard) {
    const src = await open(file);
    if (!src) throw new ModelDirError('MODEL_FILE_MISSING', `${indexSrc.name}: shard ${file} does not exist`, { where, file });
    shards.push({ file, src, names, index: indexSrc.name });
  }
  return shards;
}

async function readJson(src: ByteSource): Promise<unknown> {
  const text = new TextDecoder().decode(await src.read(0, await src.size()));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelDirError('MODEL_FILE_INVALID', `${src.name}: is not valid JSON: ${(err as Error).message}`, { file: src.name });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export interface SaveModelOptions {
  /** More files for the directory (tokenizer files, LICENSE, ...), name -> contents. */
  files?: Record<string, Uint8Array | string>;
}

/**
 * Writes an HF-layout directory: config.json, generation_config.json and model.safetensors (F32,
 * tensors in the architecture's order, metadata format "pt" as transformers requires). The
 * directory must be new or empty, so nothing is ever half-overwritten. Returns the base identity
 * loadBaseDir will compute for it.
 */
export async function saveModelDir(dir: string, spec: ModelSpec, weights: Map<string, Float32Array>, opts: SaveModelOptions = {}): Promise<{ sha256: string; bytes: number }> {
  const expected = tensorShapes(spec);
  // Weights are flat arrays: a right element count stands for the right shape.
  const shapes = new Map([...weights].map(([n, w]) => {
    const want = expected.get(n);
    return [n, { shape: want && want.reduce((a, b) => a * b, 1) === w.length ? want : [w.length], file: `weights for ${dir}` }];
  }));
  checkTensors(spec, expected, shapes, dir, 'the spec');
  await mkdir(dir, { recursive: true });
  const existing = await readdir(dir);
  if (existing.length > 0) {
    throw new ModelDirError('MODEL_OUT_DIR_NOT_EMPTY', `${dir}: output directory is not empty (holds ${existing.slice(0, 3).join(', ')}${existing.length > 3 ? ', ...' : ''}); choose a new directory`, { dir });
  }
  const tensors: TensorEntry[] = [...expected].map(([name, shape]) => ({ name, dtype: 'F32', shape, data: weights.get(name) as Float32Array }));
  const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;
  await writeFile(join(dir, 'config.json'), json(configJson(spec)));
  await writeFile(join(dir, 'generation_config.json'), json({ bos_token_id: spec.bosId, eos_token_id: spec.eosId }));
  const result = await writeSafetensors(fileSink(join(dir, SAFETENSORS_FILE)), tensors, { format: 'pt' });
  for (const [name, contents] of Object.entries(opts.files ?? {})) await writeFile(join(dir, name), contents);
  return result;
}
