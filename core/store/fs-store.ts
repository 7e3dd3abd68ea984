import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BadKeyError,
  BadStoreUrlError,
  type ByteRange,
  checkKey,
  checkPrefix,
  checkRange,
  compareKeys,
  NotFoundError,
  type ObjectInfo,
  type ObjectSink,
  type ObjectStore,
  RangeNotSatisfiableError,
  type StoreStats,
  StreamClosedError,
} from './object-store.ts';

/** Temp files live next to their target (same filesystem, so rename/link are atomic); list skips them. */
const TMP_MARK = '.lisa-tmp-';

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;
/** ENOTDIR: a path component is a file; EISDIR: the key names a directory. Neither is an object. */
const isMissing = (err: unknown): boolean => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes(errno(err) ?? '');

/**
 * Objects as files under a root directory, one file per key.
 *
 * put: write a temp file in the target's directory, fsync, rename over the target, fsync the
 * directory. Readers see the old or the new file, never a partial one.
 *
 * createExclusive: write and fsync a temp file, then link(2) it to the key. link is atomic and fails
 * with EEXIST when the name is taken, so exactly one of several racing creators wins, and the name
 * only ever points at complete, durable bytes. The alternative, open(key, 'wx') then write, makes
 * the name visible before its bytes: a crash (or a reader racing the writer) would see an empty or
 * half-written manifest, and that truncated file would also hold the seq forever. A crash here can
 * leave only a temp file, which list() does not show and sweep() removes.
 */
export class FsStore implements ObjectStore {
  readonly url: string;
  readonly stats: StoreStats = { bytesIn: 0, bytesOut: 0, requests: 0 };

  /** `root` must be absolute; it is created on the first write. */
  constructor(readonly root: string) {
    if (!isAbsolute(root)) throw new BadStoreUrlError(root, 'a directory store needs an absolute path');
    this.url = pathToFileURL(root).href.replace(/\/$/, '');
  }

  private path(key: string): string {
    checkKey(this.url, key);
    if (key.split('/').some((seg) => seg.startsWith(TMP_MARK))) {
      throw new BadKeyError(this.url, key, `'${TMP_MARK}' names are reserved for temp files`);
    }
    return join(this.root, ...key.split('/'));
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const path = this.path(key);
    if (range) checkRange(this.url, key, range);
    this.stats.requests++;
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw isMissing(err) ? new NotFoundError(this.url, key, { cause: err }) : err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new NotFoundError(this.url, key);
      const size = st.size;
      const offset = range?.offset ?? 0;
      const length = range?.length ?? size;
      if (offset + length > size) throw new RangeNotSatisfiableError(this.url, key, { offset, length }, size);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        // only an in-place truncation by someone else gets here: our writers replace files by rename
        if (bytesRead === 0) throw new RangeNotSatisfiableError(this.url, key, { offset, length }, offset + done);
        done += bytesRead;
      }
      this.stats.bytesIn += length;
      return out;
    } catch (err) {
      throw isMissing(err) ? new NotFoundError(this.url, key, { cause: err }) : err;
    } finally {
      await fh.close();
    }
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const path = this.path(key);
    const tmp = await this.writeTemp(path, body);
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await syncDir(dirname(path));
  }

  async createExclusive(key: string, body: Uint8Array): Promise<'created' | 'exists'> {
    const path = this.path(key);
    const tmp = await this.writeTemp(path, body);
    try {
      await link(tmp, path);
    } catch (err) {
      if (errno(err) === 'EEXIST') return 'exists';
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    await syncDir(dirname(path));
    return 'created';
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const path = this.path(key);
    this.stats.requests++;
    try {
      const st = await stat(path);
      return st.isFile() ? { size: st.size, lastModified: st.mtime } : null;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    return (await this.walk(prefix)).filter((e) => !e.temp).map((e) => e.key);
  }

  async sweep(prefix: string, before: Date): Promise<string[]> {
    const removed: string[] = [];
    for (const { key } of (await this.walk(prefix)).filter((e) => e.temp)) {
      const path = join(this.root, ...key.split('/'));
      const st = await stat(path).catch(() => null);
      if (!st || st.mtime >= before) continue;
      await unlink(path).catch((err: unknown) => {
        if (!isMissing(err)) throw err;
      });
      removed.push(`${key} (temp file)`);
    }
    return removed;
  }

  /** Every file whose key starts with `prefix`, sorted; temp files (never objects) marked. */
  private async walk(prefix: string): Promise<Array<{ key: string; temp: boolean }>> {
    checkPrefix(this.url, prefix);
    this.stats.requests++;
    // keys under `prefix` can only live below its directory part ('runs/a/chunks/000' -> runs/a/chunks)
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash + 1);
    const found: Array<{ key: string; temp: boolean }> = [];
    const walk = async (dirKey: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.root, ...dirKey.split('/').filter(Boolean)), { withFileTypes: true });
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      for (const e of entries) {
        const key = dirKey + e.name;
        if (e.isDirectory()) {
          const sub = `${key}/`;
          // descend only where keys could still start with the prefix
          if (sub.startsWith(prefix) || prefix.startsWith(sub)) await walk(sub);
        } else if (e.isFile() && key.startsWith(prefix)) {
          found.push({ key, temp: e.name.startsWith(TMP_MARK) });
        }
      }
    };
    await walk(base);
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    this.stats.requests++;
    try {
      await unlink(path);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }

  /**
   * Streams into a temp file next to the key: close() fsyncs it, renames it over the key and
   * fsyncs the directory, as put() does; abort(), or close() after a failed write, removes it.
   */
  putStream(key: string): ObjectSink {
    const path = this.path(key);
    const dir = dirname(path);
    const tmp = join(dir, `${TMP_MARK}${randomBytes(8).toString('hex')}`);
    this.stats.requests++;
    const handle = mkdir(dir, { recursive: true }).then(() => open(tmp, 'wx'));
    handle.catch(() => undefined); // surfaced by write or close
    let state: 'open' | 'closed' | 'aborted' = 'open';
    let failure: unknown;
    const discard = async () => {
      const fh = await handle.catch(() => null);
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    };
    return {
      write: async (chunk) => {
        if (state !== 'open') throw new StreamClosedError(this.url, key, state);
        if (failure !== undefined) throw failure;
        try {
          const fh = await handle;
          for (let done = 0; done < chunk.byteLength; ) done += (await fh.write(chunk, done, chunk.byteLength - done)).bytesWritten;
        } catch (err) {
          failure = err;
          throw err;
        }
        this.stats.bytesOut += chunk.byteLength;
      },
      close: async () => {
        if (state !== 'open') throw new StreamClosedError(this.url, key, state);
        state = 'closed';
        try {
          if (failure !== undefined) throw failure;
          const fh = await handle;
          await fh.sync();
          await fh.close();
          await rename(tmp, path);
        } catch (err) {
          await discard();
          throw err;
        }
        await syncDir(dir);
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        await discard();
      },
    };
  }

  /** Writes body to a fresh temp file next to `path` and fsyncs it; returns the temp path. */
  private async writeTemp(path: string, body: Uint8Array): Promise<string> {
    const dir = dirname(path);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `${TMP_MARK}${randomBytes(8).toString('hex')}`);
    this.stats.requests++;
    const fh = await open(tmp, 'wx');
    try {
      let done = 0;
      while (done < body.byteLength) {
        const { bytesWritten } = await fh.write(body, done, body.byteLength - done);
        done += bytesWritten;
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fh.close();
    this.stats.bytesOut += body.byteLength;
    return tmp;
  }
}

/** Makes a rename/link durable: the new directory entry is only on disk once the directory is synced. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
