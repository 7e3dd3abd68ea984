import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { ObjectStore } from '../store/object-store.ts';
import { sha256Hex } from '../tensors/hashing.ts';
import type { RunConfig, RunSpec } from '../store/run-spec.ts';
import { contextLength } from '../models/config.ts';
import { loadBase, loadBaseDir, type LoadOptions } from '../models/load.ts';
import { loadTokenizerDir, loadTokenizerFiles } from '../tokenizers/index.ts';
import { storeSource } from '../store/object-store.ts';
import { prefixCached } from '../tensors/source.ts';
import { hubOptionsFromEnv, isHfRef, openHubRepo, type HubEnv, type HubOptions } from '../store/hub.ts';
import { prepareDataset, type PreparedDataset } from '../data/index.ts';
import { BaseDiskCache, type RemoteFile, type RemoteFolder } from './base-cache.ts';
import { LisaError } from '../errors.ts';
import type { LoadedBase, PreparedData, ResourceCache } from './resources.ts';

/**
 * A base that no longer is the one a run pinned: other weight bytes (naming the files whose sha256
 * differs; all of them for a run that recorded none), or files that no longer load at all.
 */
export class BaseChangedError extends LisaError {
  constructor(ref: string, pinned: RunSpec['base'], found: { sha256: string; files: Record<string, string> } | { cause: LisaError }) {
    const expected = pinned.sha256;
    if ('cause' in found) {
      const { cause } = found;
      super('BASE_CHANGED', `base ${ref} no longer loads (${cause.code}: ${cause.message}), but the run was created on it (sha256 ${expected})`, { ref, expected, code: cause.code }, { cause });
      return;
    }
    const recorded = pinned.files;
    const names = recorded ? [...new Set([...Object.keys(recorded), ...Object.keys(found.files)])].filter((f) => recorded[f] !== found.files[f]).sort() : Object.keys(found.files);
    super('BASE_CHANGED', `base ${ref} has sha256 ${found.sha256} (changed: ${names.join(', ')}) but the run was created on ${expected}; bases must never change`, {
      ref,
      expected,
      actual: found.sha256,
      files: names,
    });
  }
}

/**
 * For loads of a base a run pinned: files that are malformed (a bad header, a truncated or missing
 * shard) mean the base changed; the ref itself being gone or unreadable (REF_*, HUB_*) does not.
 */
export function baseLoadFailure(ref: string, pinned: RunSpec['base']): (err: unknown) => never {
  return (err) => {
    throw err instanceof LisaError && err.kind === 'unusable-ref' && !/^(REF|HUB)_/.test(err.code) ? new BaseChangedError(ref, pinned, { cause: err }) : err;
  };
}

export class DataChangedError extends LisaError {
  constructor(ref: string, expected: string, actual: string) {
    super('DATA_CHANGED', `data ${ref} has sha256 ${actual} but the run was created on ${expected}`, { ref, expected, actual });
  }
}

/** How a process opens the bases and datasets runs refer to: local paths, s3:// URLs, hf:// repos. */
export interface Sources {
  loadBase(ref: string): Promise<LoadedBase>;
  prepareData(config: RunConfig, base: LoadedBase): Promise<PreparedData>;
}

export interface SourcesOptions {
  /** HF_ENDPOINT and HF_TOKEN for hf:// bases (cli/functions pass process.env) */
  env?: HubEnv;
  /** hub settings over those from `env` */
  hub?: HubOptions;
  /** keeps a local copy of remote bases (s3://, hf://) here, see base-cache.ts (LISA_CACHE_DIR) */
  cacheDir?: string;
  /** how remote bases are read: reads in flight, bytes per read, the hasher (see loadBase) */
  load?: LoadOptions;
  /** told about cache misses, invalidations and failures */
  log?: (msg: string) => void;
}

const isS3 = (ref: string): boolean => ref.startsWith('s3://');

/** Splits s3://bucket/some/key into the store URL of its folder and the object's name. */
function splitS3(ref: string): { folder: string; name: string } {
  const slash = ref.lastIndexOf('/');
  return { folder: ref.slice(0, slash), name: ref.slice(slash + 1) };
}

/**
 * An S3 prefix laid out like a model directory. Versions are the object's ETag where the store
 * reports one, else its Last-Modified time.
 */
function s3Folder(ref: string, store: ObjectStore): RemoteFolder {
  const version = async (name: string) => {
    const info = await store.head(name);
    return info && { size: info.size, etag: info.etag ?? `last-modified ${info.lastModified.toISOString()}` };
  };
  return {
    ref,
    version,
    async open(name) {
      const v = await version(name);
      if (!v) return undefined;
      const src = storeSource(store, name);
      return { name: src.name, size: async () => v.size, read: (offset, length) => src.read(offset, length), version: v };
    },
  };
}

function hubFolder(ref: string, opts: HubOptions): RemoteFolder {
  const repo = openHubRepo(ref, opts);
  return {
    ref,
    version: (name) => repo.info(name),
    async open(name) {
      const src = await repo.source(name);
      return src && Object.assign(src, { version: src.info });
    },
  };
}

/**
 * A base from a remote folder: the tensors by ranged reads, several in flight, and the tokenizer
 * alongside. Each file is opened once (one HEAD) and its first 64 KiB come in one request, so
 * config.json, read by both, and a safetensors header cost one GET each.
 */
async function loadRemote(ref: string, openFile: RemoteFolder['open'], load: LoadOptions | undefined): Promise<LoadedBase> {
  const opened = new Map<string, Promise<RemoteFile | undefined>>();
  const open = (name: string): Promise<RemoteFile | undefined> => {
    let p = opened.get(name);
    if (!p) opened.set(name, (p = openFile(name).then((src) => src && { ...prefixCached(src), version: src.version })));
    return p;
  };
  const tokenizer = loadTokenizerFiles(
    async (name) => {
      const src = await open(name);
      return src && src.read(0, src.version.size);
    },
    (name) => `${ref.replace(/\/$/, '')}/${name}`,
  );
  tokenizer.catch(() => undefined); // awaited after the weights, whose errors come first
  let base;
  try {
    base = await loadBase(open, ref, load);
  } catch (err) {
    // nothing of a failed load goes on in the background
    await tokenizer.catch(() => undefined);
    throw err;
  }
  return { ...base, dir: ref, tokenizer: await tokenizer };
}

async function loadLocal(dir: string): Promise<Omit<LoadedBase, 'dir'>> {
  return { ...(await loadBaseDir(dir)), tokenizer: await loadTokenizerDir(dir) };
}

export function createSources(openStore: (url: string) => ObjectStore, opts: SourcesOptions = {}): Sources {
  const log = opts.log ?? (() => undefined);
  const cache = opts.cacheDir === undefined ? undefined : new BaseDiskCache(opts.cacheDir, log);
  const hubOptions = { ...hubOptionsFromEnv(opts.env ?? {}), ...opts.hub };
  const readRef = async (ref: string): Promise<Uint8Array> => {
    if (!isS3(ref)) return new Uint8Array(await readFile(ref));
    const { folder, name } = splitS3(ref);
    return openStore(folder).get(name);
  };
  return {
    async loadBase(ref) {
      if (!isS3(ref) && !isHfRef(ref)) return { ...(await loadLocal(ref)), dir: ref };
      const remote = isHfRef(ref) ? hubFolder(ref, hubOptions) : s3Folder(ref, openStore(ref));
      if (!cache) return loadRemote(ref, (name) => remote.open(name), opts.load);
      const hit = await cache.lookup(remote);
      if (hit) {
        try {
          const base = await loadLocal(hit.dir);
          if (base.sha256 === hit.sha256) return { ...base, dir: ref };
          log(`base cache: ${hit.dir} holds weights with sha256 ${base.sha256}, not ${hit.sha256}; discarding it and loading ${ref} again`);
        } catch (err) {
          log(`base cache: ${hit.dir} is unreadable (${(err as Error).message}); discarding it and loading ${ref} again`);
        }
        await cache.discard(hit.sha256);
      }
      return cache.fill(remote, (open) => loadRemote(ref, open, opts.load));
    },
    async prepareData(config, base) {
      const bytes = await readRef(config.data);
      const format = config.format ?? (['.txt', '.text', '.md'].includes(extname(config.data)) ? 'text' : 'jsonl');
      const dataset = prepareDataset(new TextDecoder().decode(bytes), {
        source: config.data,
        format,
        fields: config.fields,
        template: config.template,
        chatTemplate: config.chatTemplate === undefined ? undefined : { text: config.chatTemplate, where: 'the run\'s chatTemplate' },
        maxSeqLen: contextLength(base.spec),
        seqLen: config.seqLen,
        heldOut: config.heldOut,
        seed: config.seed,
        tokenizer: base.tokenizer,
      });
      return { sha256: sha256Hex(bytes), dataset };
    },
  };
}

/** The base and the tokenized data of a run, from the process cache, checked against run.json. */
export async function openRunInputs(
  run: RunSpec,
  sources: Sources,
  cache: ResourceCache,
): Promise<{ base: LoadedBase; dataset: PreparedDataset }> {
  const c = run.config;
  const base = await cache.base(c.base, () => sources.loadBase(c.base)).catch(baseLoadFailure(c.base, run.base));
  if (base.sha256 !== run.base.sha256) throw new BaseChangedError(c.base, run.base, base);
  const data = await cache.dataset(`${run.id}:${run.data.sha256}`, () => sources.prepareData(c, base));
  if (data.sha256 !== run.data.sha256) throw new DataChangedError(c.data, run.data.sha256, data.sha256);
  return { base, dataset: data.dataset };
}
