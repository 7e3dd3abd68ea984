/**
 * A local disk copy of remote bases (s3:// prefixes, hf:// repos), so the next process that loads
 * the same ref reads local files instead of the network.
 *
 *   <dir>/<sha256>/            the base's files as the remote holds them (config, weights, tokenizer)
 *   <dir>/refs/<sha256(ref)>.json   { ref, sha256, files: { name: { size, etag } } } for the weight files
 *
 * A remote load writes every file it reads into a temp directory as the bytes arrive (the reads
 * cover each file completely: loadBase hashes every byte) and renames it to <sha256>/ once the
 * load succeeded, so an entry is complete or absent. A later load of the ref asks the remote for
 * the weight files' current size and ETag (one HEAD for a single-file base) and uses the entry
 * only when they are unchanged. The entry's sha256 is recomputed by the local load; a mismatch
 * (a damaged disk, a hand-edited file) discards the entry and the base is fetched again.
 * Caching is best effort: a write that fails leaves no entry and does not fail the load.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../tensors/hashing.ts';
import type { ByteSource } from '../tensors/source.ts';

export interface FileVersion {
  size: number;
  etag: string;
}

/** A file of a remote folder, with the version it was opened at. */
export type RemoteFile = ByteSource & { version: FileVersion };

/** A remote model folder as the cache sees it. */
export interface RemoteFolder {
  readonly ref: string;
  /** undefined when the folder has no such file */
  open(name: string): Promise<RemoteFile | undefined>;
  /** the file's current version, null when it is gone: one HEAD-like request */
  version(name: string): Promise<FileVersion | null>;
}

interface RefRecord {
  ref: string;
  sha256: string;
  files: Record<string, FileVersion>;
}

/** The files whose versions stand for the base: its weights (what sha256 identifies). */
const isWeightFile = (name: string): boolean => name.endsWith('.safetensors') || name.endsWith('.safetensors.index.json');
const isErrno = (err: unknown, ...codes: string[]): boolean => codes.includes((err as NodeJS.ErrnoException)?.code ?? '');

export class BaseDiskCache {
  constructor(
    readonly dir: string,
    private readonly log: (msg: string) => void = () => undefined,
  ) {}

  private recordPath(ref: string): string {
    return join(this.dir, 'refs', `${sha256Hex(ref)}.json`);
  }

  entryDir(sha256: string): string {
    return join(this.dir, sha256);
  }

  /** The entry for `remote.ref` when there is one and the remote's weight files are unchanged. */
  async lookup(remote: RemoteFolder): Promise<{ sha256: string; dir: string } | null> {
    let record: RefRecord;
    try {
      record = JSON.parse(await readFile(this.recordPath(remote.ref), 'utf8')) as RefRecord;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) this.log(`base cache: ignoring the record of ${remote.ref}: ${(err as Error).message}`);
      return null;
    }
    if (record.ref !== remote.ref || !/^[0-9a-f]{64}$/.test(record.sha256) || typeof record.files !== 'object' || record.files === null) return null;
    const dir = this.entryDir(record.sha256);
    if (!(await stat(dir).then((s) => s.isDirectory(), () => false))) return null;
    for (const [name, was] of Object.entries(record.files)) {
      const now = await remote.version(name);
      if (!now || now.size !== was.size || now.etag !== was.etag) {
        this.log(`base cache: ${remote.ref}/${name} changed (${was.etag}, ${was.size} bytes -> ${now ? `${now.etag}, ${now.size} bytes` : 'gone'}); loading it again`);
        return null;
      }
    }
    return { sha256: record.sha256, dir };
  }

  /** Removes an entry found damaged; renamed away first so no reader sees it half-deleted. */
  async discard(sha256: string): Promise<void> {
    const trash = join(this.dir, `.trash-${randomBytes(6).toString('hex')}`);
    try {
      await rename(this.entryDir(sha256), trash);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
  }

  /**
   * Runs `load` over `remote`'s files while copying what it reads into a new entry; the entry is
   * committed under the sha256 the load returns.
   */
  async fill<T extends { sha256: string }>(remote: RemoteFolder, load: (open: RemoteFolder['open']) => Promise<T>): Promise<T> {
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await mkdir(tmp, { recursive: true });
    } catch (err) {
      this.log(`base cache: could not keep ${remote.ref} in ${this.dir}: ${(err as Error).message}`);
      return load((name) => remote.open(name));
    }
    const tee = new Tee(tmp);
    let result: T;
    try {
      result = await load(async (name) => {
        const src = await remote.open(name);
        return src && tee.wrap(name, src);
      });
    } catch (err) {
      await tee.abandon();
      throw err;
    }
    try {
      const versions = await tee.finish();
      const files = Object.fromEntries(Object.entries(versions).filter(([name]) => isWeightFile(name)));
      await this.commit(tmp, result.sha256);
      await this.writeRecord({ ref: remote.ref, sha256: result.sha256, files });
    } catch (err) {
      this.log(`base cache: could not keep ${remote.ref} in ${this.dir}: ${(err as Error).message}`);
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
    return result;
  }

  private async commit(tmp: string, sha256: string): Promise<void> {
    try {
      await rename(tmp, this.entryDir(sha256));
    } catch (err) {
      // another process (or another ref with the same weights) committed this entry first
      if (!isErrno(err, 'EEXIST', 'ENOTEMPTY')) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async writeRecord(record: RefRecord): Promise<void> {
    const path = this.recordPath(record.ref);
    await mkdir(join(this.dir, 'refs'), { recursive: true });
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`);
    await rename(tmp, path);
  }
}

interface TeeFile {
  handle: Promise<FileHandle>;
  version: FileVersion;
  /** [begin, end) byte ranges written so far */
  ranges: Array<[number, number]>;
  writes: Promise<void>[];
}

/** Copies the bytes a loader reads into same-named files at the same offsets. */
class Tee {
  private readonly files = new Map<string, TeeFile>();
  private failure: unknown;

  constructor(private readonly dir: string) {}

  wrap(name: string, src: RemoteFile): RemoteFile {
    if (name.includes('/') || name.includes('\\')) {
      this.failure ??= new Error(`file name ${name} is not a plain name`);
      return src;
    }
    let file = this.files.get(name);
    if (!file) {
      const handle = open(join(this.dir, name), 'w');
      handle.catch((err: unknown) => (this.failure ??= err));
      file = { handle, version: src.version, ranges: [], writes: [] };
      this.files.set(name, file);
    }
    const f = file;
    return {
      name: src.name,
      version: src.version,
      size: () => src.size(),
      read: async (offset, length) => {
        const bytes = await src.read(offset, length);
        f.ranges.push([offset, offset + length]);
        const write = f.handle.then(async (fh) => {
          for (let done = 0; done < bytes.length; ) done += (await fh.write(bytes, done, bytes.length - done, offset + done)).bytesWritten;
        });
        write.catch((err: unknown) => (this.failure ??= err));
        f.writes.push(write);
        return bytes;
      },
    };
  }

  /** Waits for the writes, checks that every file was written whole, fsyncs; the versions read. */
  async finish(): Promise<Record<string, FileVersion>> {
    try {
      for (const f of this.files.values()) await Promise.allSettled(f.writes);
      if (this.failure !== undefined) throw this.failure;
      for (const [name, f] of this.files) {
        const covered = coveredPrefix(f.ranges);
        if (covered !== f.version.size) throw new Error(`only the first ${covered} of ${f.version.size} bytes of ${name} were read`);
        const fh = await f.handle;
        await fh.sync();
      }
      return Object.fromEntries([...this.files].map(([name, f]) => [name, f.version]));
    } finally {
      await this.closeAll();
    }
  }

  async abandon(): Promise<void> {
    for (const f of this.files.values()) await Promise.allSettled(f.writes);
    await this.closeAll();
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private async closeAll(): Promise<void> {
    for (const f of this.files.values()) await f.handle.then((fh) => fh.close()).catch(() => undefined);
  }
}

/** How far from byte 0 the ranges cover the file without a gap. */
function coveredPrefix(ranges: Array<[number, number]>): number {
  let end = 0;
  for (const [b, e] of [...ranges].sort((x, y) => x[0] - y[0])) {
    if (b > end) break;
    end = Math.max(end, e);
  }
  return end;
}
