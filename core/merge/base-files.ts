/**
 * A base model's files opened for streaming: config, the safetensors headers (single file or
 * shards + index) and the other files an exported model must carry (tokenizer, generation config).
 * Tensor data is not read here; exports read it tensor by tensor with ranged reads.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LisaError } from '../errors.ts';
import { FsStore } from '../store/fs-store.ts';
import { storeSource, type ObjectStore } from '../store/object-store.ts';
import { readHeader, type TensorInfo } from '../tensors/safetensors.ts';
import { ByteSourceError, type ByteSource } from '../tensors/source.ts';
import { parseConfig, type ModelSpec } from '../models/config.ts';
import { baseIdentity } from '../models/load.ts';
import { canonicalName, tensorShapes, unitOf } from '../models/units.ts';
import { inlineHasher, type Hasher } from '../tensors/hashing.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export class BaseLayoutError extends LisaError {
  constructor(where: string, why: string) {
    super('BASE_LAYOUT_INVALID', `base ${where}: ${why}`, { where });
  }
}

export interface BaseTensor {
  info: TensorInfo;
  file: string;
  source: ByteSource;
  unit: string;
}

export interface BaseLayout {
  /** the base as named (directory or store URL) */
  ref: string;
  store: ObjectStore;
  spec: ModelSpec;
  config: Record<string, unknown>;
  weightFiles: string[];
  /** every parameter by its canonical HF name (see canonicalName in core/models/units.ts), in file order */
  tensors: Map<string, BaseTensor>;
  /** top-level files an export copies as they are (tokenizer files, generation_config.json, ...) */
  otherFiles: string[];
  /** releases the open weight files */
  close(): Promise<void>;
}

type HeldSource = ByteSource & { close(): Promise<void> };

/** A local file read through one descriptor kept open until close(): one syscall per tensor read, not four. */
function heldFileSource(path: string): HeldSource {
  let handle: Promise<FileHandle> | null = null;
  const fh = () => (handle ??= open(path, 'r'));
  return {
    name: path,
    size: async () => (await (await fh()).stat()).size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      const h = await fh();
      for (let done = 0; done < length; ) {
        const { bytesRead } = await h.read(out, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new ByteSourceError('SOURCE_OUT_OF_RANGE', `${path}: read of ${length} bytes at offset ${offset} hit end of file after ${done} bytes`, { source: path, offset, length });
        }
        done += bytesRead;
      }
      return out;
    },
    async close() {
      const h = handle;
      handle = null;
      if (h) await (await h).close();
    },
  };
}

/** Weight files and formats an export replaces or cannot carry; everything else at the top is copied. */
const NOT_COPIED = [/\.safetensors$/, /\.safetensors\.index\.json$/, /^pytorch_model.*\.bin$/, /\.(pt|pth|ckpt|gguf|h5|msgpack|onnx)$/, /^config\.json$/, /^\./, /^lisa-export\.json$/];

/** Every parameter of the weight files, checked against the architecture and the index. */
async function indexTensors(ref: string, spec: ModelSpec, sources: Map<string, ByteSource>, weightMap: Record<string, string> | null): Promise<Map<string, BaseTensor>> {
  const expected = tensorShapes(spec);
  const tensors = new Map<string, BaseTensor>();
  const rawNames = new Set<string>();
  for (const [file, source] of sources) {
    const header = await readHeader(source);
    for (const info of header.tensors.values()) {
      if (weightMap && weightMap[info.name] !== file) {
        throw new BaseLayoutError(ref, `tensor ${info.name} is in ${file} but ${INDEX_FILE} maps it to ${weightMap[info.name] ?? 'nothing'}`);
      }
      rawNames.add(info.name);
      const name = canonicalName(spec, info.name);
      if (name === null) continue;
      if (tensors.has(name)) throw new BaseLayoutError(ref, `tensor ${name} appears in ${tensors.get(name)!.file} and ${file}`);
      const shape = expected.get(name);
      if (!shape) throw new BaseLayoutError(ref, `tensor ${info.name} in ${file} is not part of the ${spec.arch} architecture config.json describes`);
      if (shape.join() !== info.shape.join()) {
        throw new BaseLayoutError(ref, `tensor ${name} has shape [${info.shape}], config.json implies [${shape}]`);
      }
      tensors.set(name, { info, file, source, unit: unitOf(spec, name) });
    }
  }
  const missing = [...expected.keys()].filter((n) => !tensors.has(n));
  if (missing.length > 0) throw new BaseLayoutError(ref, `lacks ${missing.length} tensor(s) of its architecture, e.g. ${missing.slice(0, 3).join(', ')}`);
  if (weightMap) {
    const unlisted = Object.keys(weightMap).filter((n) => !rawNames.has(n));
    if (unlisted.length > 0) throw new BaseLayoutError(ref, `${INDEX_FILE} maps ${unlisted[0]} to a file that does not hold it`);
  }
  return tensors;
}

/** A base reference as a store rooted at it: a local directory, or s3:// through `openStore`. */
export function baseStore(ref: string, openStore?: (url: string) => ObjectStore): ObjectStore {
  if (ref.startsWith('s3://')) {
    if (!openStore) throw new BaseLayoutError(ref, 'an s3:// base needs a store opener');
    return openStore(ref);
  }
  return new FsStore(resolve(ref.startsWith('file://') ? new URL(ref).pathname : ref));
}

const decodeJson = (bytes: Uint8Array, where: string): unknown => {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new BaseLayoutError(where, `is not JSON (${(err as Error).message})`);
  }
};

export async function openBaseLayout(ref: string, store: ObjectStore): Promise<BaseLayout> {
  const top = (await store.list('')).filter((k) => !k.includes('/'));
  if (!top.includes('config.json')) throw new BaseLayoutError(ref, 'has no config.json');
  const config = decodeJson(await store.get('config.json'), `${ref}/config.json`) as Record<string, unknown>;
  const spec = parseConfig(config, `${ref}/config.json`);

  let weightFiles: string[];
  let weightMap: Record<string, string> | null = null;
  // The same choice as loadBaseDir: model.safetensors wins over an index.
  if (top.includes(SINGLE_FILE)) {
    weightFiles = [SINGLE_FILE];
  } else if (top.includes(INDEX_FILE)) {
    const index = decodeJson(await store.get(INDEX_FILE), `${ref}/${INDEX_FILE}`) as { weight_map?: unknown };
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null || !Object.values(map).every((f) => typeof f === 'string' && !f.includes('/'))) {
      throw new BaseLayoutError(ref, `${INDEX_FILE} has no weight_map of tensor name -> file name`);
    }
    weightMap = map as Record<string, string>;
    weightFiles = [...new Set(Object.values(weightMap))].sort();
  } else {
    throw new BaseLayoutError(ref, `has neither ${SINGLE_FILE} nor ${INDEX_FILE}`);
  }

  const sources = new Map<string, ByteSource>();
  const held: HeldSource[] = [];
  const close = async () => void (await Promise.all(held.map((h) => h.close())));
  for (const file of weightFiles) {
    if (!top.includes(file)) throw new BaseLayoutError(ref, `${INDEX_FILE} names ${file}, which is missing`);
    if (store instanceof FsStore) {
      const h = heldFileSource(join(store.root, file));
      held.push(h);
      sources.set(file, h);
    } else {
      sources.set(file, storeSource(store, file));
    }
  }
  let tensors: Map<string, BaseTensor>;
  try {
    tensors = await indexTensors(ref, spec, sources, weightMap);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    ref,
    store,
    spec,
    config,
    weightFiles,
    tensors,
    otherFiles: top.filter((k) => !NOT_COPIED.some((re) => re.test(k))),
    close,
  };
}

const HASH_PIECE = 16 << 20;

async function fileSha256(store: ObjectStore, file: string, hasher: Hasher): Promise<string> {
  if (store instanceof FsStore) {
    const inWorker = hasher.file(join(store.root, file));
    if (inWorker) return inWorker;
  }
  const hash = hasher.stream();
  const size = (await store.head(file))?.size ?? 0;
  const read = (at: number) => store.get(file, { offset: at, length: Math.min(HASH_PIECE, size - at) });
  let next = size > 0 ? read(0) : null;
  for (let at = 0; next; ) {
    const piece = await next;
    at += piece.length;
    next = at < size ? read(at) : null;
    await hash.update(piece);
  }
  return hash.digest();
}

/**
 * The base's identity as run.json records it, by the definition of core/models/load.ts (the
 * sha256 of model.safetensors, or for shards the sha256 of their hex digests concatenated in file
 * name order), and the sha256 of each weight file. Streamed (a local file by the hashing thread
 * itself), never whole in memory.
 */
export async function baseDigests(base: BaseLayout, hasher: Hasher = inlineHasher): Promise<{ sha256: string; files: Record<string, string> }> {
  const digests = await Promise.all(base.weightFiles.map(async (file) => ({ file, sha256: await fileSha256(base.store, file, hasher) })));
  return { sha256: baseIdentity(digests), files: Object.fromEntries(digests.map((d) => [d.file, d.sha256])) };
}
