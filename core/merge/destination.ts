/**
 * Where an exported model goes: a local directory or a prefix in an object store. Either way the
 * model appears whole or not at all.
 *
 * Directory: files are written and fsynced in a hidden sibling directory, which is renamed onto
 * the target at commit (rename(2) is atomic and may replace an empty directory); a crash leaves
 * only the hidden `.{name}.partial-*` directory, never a half model under the target name.
 *
 * Object store: S3 has no multi-object transaction, so files are uploaded in the order the caller
 * writes them and the caller writes config.json last: a reader that finds config.json finds every
 * weight file it names. An aborted export deletes what it uploaded.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { LisaError } from '../errors.ts';
import { fileSink } from '../tensors/source.ts';
import type { AbortableSink } from '../tensors/safetensors.ts';
import type { ObjectStore } from '../store/object-store.ts';

export class OutputExistsError extends LisaError {
  constructor(out: string, what: string) {
    super('EXPORT_OUTPUT_EXISTS', `export target ${out} already holds ${what}; choose a new or empty location (an export never overwrites a model)`, { out });
  }
}

export interface Destination {
  /** the target as the user named it (absolute path or store URL) */
  readonly url: string;
  /** streams one file; its close() makes the bytes durable, its abort() (where there is one) discards them */
  sink(name: string): AbortableSink;
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** makes everything written visible under the target */
  commit(): Promise<void>;
  /** removes everything written; after a failure, before commit */
  abort(): Promise<void>;
}

/** Makes a new directory entry durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function dirDestination(path: string): Promise<Destination> {
  const out = resolve(path);
  const existing = await stat(out).catch(() => null);
  if (existing && !existing.isDirectory()) throw new OutputExistsError(out, 'a file');
  if (existing && (await readdir(out)).length > 0) throw new OutputExistsError(out, 'files');
  const parent = dirname(out);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(out)}.partial-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp);
  return {
    url: out,
    sink: (name) => fileSink(join(tmp, name)),
    async put(name, bytes) {
      const sink = fileSink(join(tmp, name));
      await sink.write(bytes);
      await sink.close();
    },
    async commit() {
      await syncDir(tmp);
      try {
        await rename(tmp, out);
      } catch (err) {
        // Someone filled the target meanwhile: leave their files alone.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') throw new OutputExistsError(out, 'files written during the export');
        throw err;
      }
      await syncDir(parent);
    },
    async abort() {
      await rm(tmp, { recursive: true, force: true });
    },
  };
}


/** `store` is rooted at the target prefix: file names are its keys. */
export async function storeDestination(store: ObjectStore): Promise<Destination> {
  if ((await store.head('config.json')) || (await store.list('')).some((k) => k.endsWith('.safetensors'))) {
    throw new OutputExistsError(store.url, 'a model');
  }
  const written: string[] = [];
  return {
    url: store.url,
    sink(name) {
      written.push(name);
      return store.putStream(name);
    },
    async put(name, bytes) {
      written.push(name);
      await store.put(name, bytes);
    },
    async commit() {},
    async abort() {
      await Promise.allSettled(written.map((k) => store.delete(k)));
    },
  };
}
