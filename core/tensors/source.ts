import { open, stat } from 'node:fs/promises';
import { LisaError } from '../errors.ts';

/**
 * Random-access bytes: a local file, an in-memory buffer, or (core/store) a ranged object in S3.
 * `read` returns exactly `length` bytes in a fresh array the caller owns (so typed-array views
 * over it never alias the source), or throws.
 */
export interface ByteSource {
  readonly name: string;
  size(): Promise<number>;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * Sequential output. A sink must be done with a chunk when its write() promise resolves: writers
 * may hand over views of their callers' arrays rather than copies.
 */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export class ByteSourceError extends LisaError {}

function checkRange(name: string, offset: number, length: number, size?: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ByteSourceError('SOURCE_RANGE_INVALID', `${name}: cannot read ${length} bytes at offset ${offset}: expected non-negative integers`, { source: name, offset, length });
  }
  if (size !== undefined && offset + length > size) {
    throw new ByteSourceError('SOURCE_OUT_OF_RANGE', `${name}: read of ${length} bytes at offset ${offset} goes past the end (${size} bytes)`, { source: name, offset, length, size });
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function notFound(path: string, err: unknown): ByteSourceError {
  return new ByteSourceError('SOURCE_NOT_FOUND', `${path}: no such file`, { source: path }, { cause: err });
}

/** Opens the file per read: ByteSource has no close(), so holding a descriptor would leak it. */
export function fileSource(path: string): ByteSource {
  return {
    name: path,
    async size() {
      try {
        return (await stat(path)).size;
      } catch (err) {
        throw isNotFound(err) ? notFound(path, err) : err;
      }
    },
    async read(offset, length) {
      checkRange(path, offset, length);
      const out = new Uint8Array(length);
      let fh;
      try {
        fh = await open(path, 'r');
      } catch (err) {
        throw isNotFound(err) ? notFound(path, err) : err;
      }
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(out, done, length - done, offset + done);
          if (bytesRead === 0) {
            throw new ByteSourceError('SOURCE_OUT_OF_RANGE', `${path}: read of ${length} bytes at offset ${offset} hit end of file after ${done} bytes`, { source: path, offset, length });
          }
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
      return out;
    },
  };
}

export function bufferSource(bytes: Uint8Array, name = 'buffer'): ByteSource {
  return {
    name,
    size: async () => bytes.byteLength,
    async read(offset, length) {
      checkRange(name, offset, length, bytes.byteLength);
      return bytes.slice(offset, offset + length);
    },
  };
}

/** Writes straight to `path` (truncating it); close() fsyncs so a returned close means durable. */
export function fileSink(path: string): ByteSink {
  const handle = open(path, 'w');
  // The open starts eagerly; without this, an open failure nobody awaited yet would be reported
  // as an unhandled rejection. write()/close() still see the rejection.
  handle.catch(() => undefined);
  return {
    async write(chunk) {
      const fh = await handle;
      let done = 0;
      while (done < chunk.byteLength) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done);
        done += bytesWritten;
      }
    },
    async close() {
      const fh = await handle;
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    },
  };
}

/**
 * Reads `ranges` of a source with up to `window` reads in flight, yielding them in order: the
 * caller hashes and decodes sequentially while the next ranges are already on the wire, which
 * is what makes loading from S3 bandwidth-bound instead of latency-bound. A read starts as soon
 * as any other finishes, not only when the oldest does (one slow request must not idle the rest
 * of the window), with at most 2 x `window` ranges read ahead of the caller. A range with its
 * own `src` is read from that source (several files through one window). Once `signal` is
 * aborted (or the caller stops iterating) no further read starts.
 */
export async function* readAhead(
  src: ByteSource,
  ranges: ReadonlyArray<{ offset: number; length: number; src?: ByteSource }>,
  window = 8,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const reads: Array<Promise<Uint8Array> | undefined> = [];
  let next = 0;
  let inFlight = 0;
  let consumed = 0;
  let stopped = false;
  const fill = () => {
    while (!stopped && !signal?.aborted && next < ranges.length && inFlight < window && next - consumed < 2 * window) {
      const r = ranges[next];
      const p = (r.src ?? src).read(r.offset, r.length);
      inFlight++;
      // observed when its turn comes; never an unhandled rejection
      p.then(
        () => undefined,
        () => undefined,
      ).then(() => {
        inFlight--;
        fill();
      });
      reads[next++] = p;
    }
  };
  try {
    for (; consumed < ranges.length; consumed++) {
      fill();
      const bytes = await (reads[consumed] as Promise<Uint8Array>);
      reads[consumed] = undefined;
      yield bytes;
    }
  } finally {
    stopped = true;
  }
}

/**
 * `src` with its first `bytes` bytes fetched by the first read that falls inside them and kept:
 * a safetensors header (8-byte length, then the JSON) and small whole files (config.json) then
 * cost one request instead of one per read, which on an object store is a round trip each. A
 * later read that starts inside the kept bytes fetches only the rest.
 */
export function prefixCached(src: ByteSource, bytes = 64 * 1024): ByteSource {
  let prefix: Promise<Uint8Array> | undefined;
  return {
    name: src.name,
    size: () => src.size(),
    async read(offset, length) {
      if (offset + length > bytes) {
        const head = prefix && (await prefix.catch(() => undefined));
        if (!head || offset >= head.length) return src.read(offset, length);
        const out = new Uint8Array(length);
        out.set(head.subarray(offset));
        out.set(await src.read(head.length, offset + length - head.length), head.length - offset);
        return out;
      }
      if (!prefix) {
        prefix = src.size().then((size) => src.read(0, Math.min(size, bytes)));
        prefix.catch(() => (prefix = undefined)); // a failed fetch is tried again by the next read
      }
      const head = await prefix;
      // past the end of a short file: the source itself says so
      return offset + length <= head.length ? head.slice(offset, offset + length) : src.read(offset, length);
    },
  };
}
