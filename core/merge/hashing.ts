/**
 * sha256 off the main thread. An export checks every byte it reads (the base against run.json,
 * each unit object against its manifest) and hashes every byte it writes; done inline, hashing
 * alone would take longer than the disk needs to write the model. Worker threads hash the base
 * files (reading them themselves) and the unit-object streams while the main thread converts and
 * writes.
 *
 * The worker is plain JavaScript evaluated from a string, so it needs no TypeScript loader.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { open } = require('node:fs/promises');
const hashes = new Map();
const PIECE = 8 << 20;
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
  if (m.op === 'update') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('sha256')));
    h.update(m.chunk);
    parentPort.postMessage({ id: m.id, hashed: m.chunk.byteLength });
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
 * An incremental sha256. update() takes ownership of the chunk (callers must not touch it
 * afterwards) and resolves once the hashing thread is not too far behind, so queued chunks never
 * pile up in memory.
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

interface Pending {
  resolve(digest: string): void;
  reject(err: Error): void;
}

/** Bytes posted to a hashing thread and not yet hashed, before update() makes its caller wait. */
const MAX_QUEUED = 16 << 20;

class HashWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  jobs = 0;
  queued = 0;
  private drained: Array<() => void> = [];

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.on('message', (m: { id: number; hashed?: number; digest?: string; error?: string; code?: string }) => {
      if (m.hashed !== undefined) {
        this.queued -= m.hashed;
        if (this.queued <= MAX_QUEUED) for (const wake of this.drained.splice(0)) wake();
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
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const wake of this.drained.splice(0)) wake();
  }

  async post(id: number, chunk: Uint8Array): Promise<void> {
    const owned = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
    const c = owned ? chunk : chunk.slice();
    this.queued += c.byteLength;
    this.worker.postMessage({ op: 'update', id, chunk: c }, [c.buffer as ArrayBuffer]);
    if (this.queued > MAX_QUEUED) await new Promise<void>((wake) => this.drained.push(wake));
  }

  result(id: number): Promise<string> {
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
}

/** `threads` workers; each job goes to the least busy one. */
export function workerHasher(threads = 2): Hasher {
  const workers = Array.from({ length: threads }, () => new HashWorker());
  let nextId = 0;
  const pick = () => workers.reduce((a, b) => (b.jobs < a.jobs ? b : a));
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
      const w = pick();
      w.jobs++;
      const id = nextId++;
      const result = w.result(id);
      w.worker.postMessage({ op: 'file', id, path });
      return result;
    },
    async close() {
      await Promise.all(workers.map((w) => w.worker.terminate()));
    },
  };
}
