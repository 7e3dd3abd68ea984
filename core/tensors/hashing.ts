/**
 * sha256, once: the one-shot digest (sha256Hex), incremental streams on this thread
 * (inlineHasher), and hashing off the main thread (workerHasher). An export checks every byte it reads (the base against run.json,
 * each unit object against its manifest) and hashes every byte it writes; done inline, hashing
 * alone would take longer than the disk needs to write the model. Worker threads hash the base
 * files (reading them themselves), the unit-object streams and the output while the main thread
 * converts and writes.
 *
 * Streamed chunks travel through a ring of shared buffers per worker: update() copies the chunk
 * into a free slot (a memcpy, several times faster than hashing it) and returns, so the caller
 * keeps its chunk (the export still has to write it) and memory stays at the ring's size however
 * far the hashing thread falls behind.
 *
 * The worker is plain JavaScript evaluated from a string, so it needs no TypeScript loader.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { open } = require('node:fs/promises');
const hashes = new Map();
const PIECE = 8 << 20;
let slots = [];
async function hashFile(path) {
  const hash = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = new Uint8Array(PIECE);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, PIECE, pos);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
parentPort.on('message', (m) => {
  if (m.op === 'slots') {
    slots = m.buffers.map((b) => new Uint8Array(b));
  } else if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('sha256')));
    h.update(slots[m.slot].subarray(0, m.length));
    parentPort.postMessage({ freed: m.slot });
  } else if (m.op === 'digest') {
    const h = hashes.get(m.id) ?? createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, digest: h.digest('hex') });
  } else if (m.op === 'file') {
    hashFile(m.path).then(
      (digest) => parentPort.postMessage({ id: m.id, digest }),
      (err) => parentPort.postMessage({ id: m.id, error: String(err && err.message || err), code: err && err.code }),
    );
  }
});
`;

/**
 * An incremental sha256. update() is done with the chunk when it resolves (the caller may then
 * reuse or write it); it resolves once the bytes are queued for hashing, waiting while the
 * hashing thread is too far behind. One update at a time per stream: await each before the next.
 */
export interface StreamHash {
  update(chunk: Uint8Array): Promise<void>;
  digest(): Promise<string>;
}

export interface Hasher {
  stream(): StreamHash;
  /** sha256 of a local file, read by the hashing thread itself; null when this hasher cannot read files */
  file(path: string): Promise<string> | null;
  close(): Promise<void>;
}

/** sha256 of bytes or UTF-8 text, as lowercase hex. */
export const sha256Hex = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** Hashing on the calling thread: for small jobs and callers that want no threads. */
export const inlineHasher: Hasher = {
  stream() {
    const h = createHash('sha256');
    return {
      update: async (c) => void h.update(c),
      digest: async () => h.digest('hex'),
    };
  },
  file: () => null,
  close: async () => undefined,
};

/**
 * The sha256s of local files this process has already hashed, so that an export in a long-lived
 * process (the HTTP function, a compose of several runs on one base) does not hash a multi-GB
 * base or an unchanged unit object again. A remembered digest is only used while the file's
 * identity and change stamps are what they were when it was hashed: device, inode, size, mtime
 * and ctime (nanoseconds). Replacing the file by rename changes the inode; writing it in place
 * changes mtime and ctime, and ctime cannot be set back by utimes(2). Because file times have
 * coarse granularity (a kernel tick), a file changed within `minAgeMs` before its hash started is
 * not remembered: a second change in the same tick could leave every stamp as it was (git's
 * "racily clean" problem). What this cannot see is damage that bypasses the filesystem (bit rot,
 * a raw write to the block device): against that, the first hash in a process is the check.
 */
export class FileDigestCache {
  readonly stats = { hits: 0, misses: 0 };
  private readonly entries = new Map<string, { stamp: string; sha256: string }>();

  constructor(private readonly opts: { maxEntries?: number; minAgeMs?: number; now?: () => number } = {}) {}

  /** The file's digest, from memory when its stamp is unchanged, else from `hash` (then remembered). */
  async digest(path: string, hash: () => Promise<string>): Promise<string> {
    const started = (this.opts.now ?? Date.now)();
    const before = await fileStamp(path);
    const known = this.entries.get(path);
    if (before && known?.stamp === before.stamp) {
      this.stats.hits++;
      // re-inserted: the map's order is least recently used first
      this.entries.delete(path);
      this.entries.set(path, known);
      return known.sha256;
    }
    this.stats.misses++;
    const sha256 = await hash();
    const after = await fileStamp(path);
    if (before && after?.stamp === before.stamp && started - before.changedMs >= (this.opts.minAgeMs ?? 1000)) {
      this.entries.delete(path);
      this.entries.set(path, { stamp: before.stamp, sha256 });
      const max = this.opts.maxEntries ?? 4096;
      while (this.entries.size > max) this.entries.delete(this.entries.keys().next().value!);
    }
    return sha256;
  }

  clear(): void {
    this.entries.clear();
  }
}

/** null when the path cannot be stat'ed: the hash then reports why. */
async function fileStamp(path: string): Promise<{ stamp: string; changedMs: number } | null> {
  const st = await stat(path, { bigint: true }).catch(() => null);
  if (!st) return null;
  const changedNs = st.ctimeNs > st.mtimeNs ? st.ctimeNs : st.mtimeNs;
  return { stamp: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, changedMs: Number(changedNs / 1_000_000n) };
}

/** The process-wide cache workerHasher uses unless told otherwise. */
export const fileDigests = new FileDigestCache();

interface Pending {
  resolve(digest: string): void;
  reject(err: Error): void;
}

/** Ring slots per hashing thread, and bytes per slot: at most 8 MiB queued per thread (more did not hash faster). */
const SLOTS = 4;
const SLOT_BYTES = 2 << 20;

class HashWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  jobs = 0;
  private readonly slots: Uint8Array[];
  private readonly free: number[];
  private readonly waiting: Array<() => void> = [];
  private failure: Error | null = null;

  constructor() {
    const buffers = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(SLOT_BYTES));
    this.slots = buffers.map((b) => new Uint8Array(b));
    this.free = buffers.map((_, i) => i);
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.postMessage({ op: 'slots', buffers });
    this.worker.on('message', (m: { id: number; freed?: number; digest?: string; error?: string; code?: string }) => {
      if (m.freed !== undefined) {
        this.free.push(m.freed);
        this.waiting.shift()?.();
        return;
      }
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      this.jobs--;
      if (!p) return;
      if (m.digest !== undefined) p.resolve(m.digest);
      else p.reject(Object.assign(new Error(m.error), { code: m.code }));
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', () => this.failAll(new Error('hashing thread exited')));
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Copies `chunk` into ring slots as they come free and queues each for hashing. */
  async post(id: number, chunk: Uint8Array): Promise<void> {
    for (let at = 0; at < chunk.byteLength; ) {
      while (this.free.length === 0 && !this.failure) await new Promise<void>((wake) => this.waiting.push(wake));
      if (this.failure) throw this.failure;
      const slot = this.free.shift()!;
      const length = Math.min(SLOT_BYTES, chunk.byteLength - at);
      this.slots[slot].set(chunk.subarray(at, at + length));
      this.worker.postMessage({ op: 'update', id, slot, length });
      at += length;
    }
  }

  result(id: number): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
}

/** Runs `work` with a fresh workerHasher, closed however `work` ends. */
export async function withWorkerHasher<T>(work: (hasher: Hasher) => Promise<T>): Promise<T> {
  const hasher = workerHasher();
  try {
    return await work(hasher);
  } finally {
    await hasher.close();
  }
}

export interface WorkerHasherOptions {
  threads?: number;
  /** remembered file digests (see FileDigestCache); null hashes every file every time */
  cache?: FileDigestCache | null;
}

/** `threads` workers (default 2); each job goes to the least busy one. */
export function workerHasher({ threads = 2, cache = fileDigests }: WorkerHasherOptions = {}): Hasher {
  const workers = Array.from({ length: threads }, () => new HashWorker());
  let nextId = 0;
  const pick = () => workers.reduce((a, b) => (b.jobs < a.jobs ? b : a));
  const hashFile = (path: string): Promise<string> => {
    const w = pick();
    w.jobs++;
    const id = nextId++;
    const result = w.result(id);
    w.worker.postMessage({ op: 'file', id, path });
    return result;
  };
  return {
    stream() {
      const w = pick();
      w.jobs++;
      const id = nextId++;
      return {
        update: (chunk) => w.post(id, chunk),
        digest() {
          const result = w.result(id);
          w.worker.postMessage({ op: 'digest', id });
          return result;
        },
      };
    },
    file(path) {
      return cache ? cache.digest(path, () => hashFile(path)) : hashFile(path);
    },
    async close() {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
