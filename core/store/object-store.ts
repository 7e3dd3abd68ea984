import { LisaError } from '../errors.ts';
import type { ByteSink, ByteSource } from '../tensors/source.ts';

export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Traffic a store has moved since it was opened, for metering: payload bytes downloaded (bytesIn)
 * and uploaded (bytesOut), and requests sent (S3: HTTP requests including retries; directory:
 * file operations). Live counters; read them before and after an operation to meter it.
 */
export interface StoreStats {
  bytesIn: number;
  bytesOut: number;
  requests: number;
}

export interface ObjectInfo {
  size: number;
  lastModified: Date;
  /** the server's entity tag (S3), so a cache can tell a replaced object from the one it copied */
  etag?: string;
}

/**
 * Keys are '/'-separated paths relative to the store root, e.g. `runs/abc/run.json`: no leading
 * '/', no empty, '.' or '..' segments (so a directory store can never escape its root).
 */
export interface ObjectStore {
  /** 's3://bucket/prefix' or 'file:///abs/dir'; `${url}/${key}` names an object in messages */
  readonly url: string;
  readonly stats: StoreStats;
  /** NotFoundError if missing; RangeNotSatisfiableError if the range runs past the end */
  get(key: string, range?: ByteRange): Promise<Uint8Array>;
  /** overwrite allowed (unit objects have unique keys anyway); atomic: readers see old or new */
  put(key: string, body: Uint8Array): Promise<void>;
  /** atomic create-if-absent; 'exists' when the key is already taken (its bytes are left alone) */
  createExclusive(key: string, body: Uint8Array): Promise<'created' | 'exists'>;
  /** null if missing; lastModified lets gc spare objects of a chunk still uploading */
  head(key: string): Promise<ObjectInfo | null>;
  /** every key starting with `prefix` (a plain string prefix, as in S3), sorted by UTF-8 bytes */
  list(prefix: string): Promise<string[]>;
  /** idempotent: deleting a missing key succeeds */
  delete(key: string): Promise<void>;
  /**
   * Streams one object, so that an object larger than memory is never held whole (S3: a multipart
   * upload as parts fill; a directory: a temp file renamed at close). Readers see the object only
   * after close(); abort() leaves no object.
   */
  putStream(key: string): ObjectSink;
  /**
   * Removes what writes under `prefix` left behind when their process died, if they started before
   * `before`: a directory store's temp files, an S3 bucket's incomplete multipart uploads (whose
   * parts are stored and billed). Never touches an object. Returns what it removed, as
   * `{key} ({what})` lines for people to read.
   */
  sweep(prefix: string, before: Date): Promise<string[]>;
}

/**
 * A streaming upload of one object. write() copies what it keeps (the caller may reuse its chunk
 * once write resolves); close() makes the object appear whole, atomically replacing any object at
 * the key as put() does; abort() discards it: no new object, nothing left pending (no temp file,
 * no open multipart upload). After a failed write only abort() is useful.
 */
export interface ObjectSink extends ByteSink {
  abort(): Promise<void>;
}

export class StoreError extends LisaError {}

export class NotFoundError extends StoreError {
  constructor(storeUrl: string, key: string, options?: { cause?: unknown }) {
    super('STORE_NOT_FOUND', `no object ${key} in store ${storeUrl}`, { store: storeUrl, key }, options);
  }
}

export class AccessDeniedError extends StoreError {
  constructor(storeUrl: string, what: string, options?: { cause?: unknown }) {
    super(
      'STORE_ACCESS_DENIED',
      `access denied to ${what} in store ${storeUrl}: check the credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE/role) and their permissions on this bucket`,
      { store: storeUrl, what },
      options,
    );
  }
}

export class BadStoreUrlError extends StoreError {
  constructor(url: string, why: string) {
    super('STORE_URL_INVALID', `store url '${url}': ${why}; expected s3://bucket[/prefix], file:///abs/dir or a directory path`, { url });
  }
}

export class BadKeyError extends StoreError {
  constructor(storeUrl: string, key: string, why: string) {
    super('STORE_KEY_INVALID', `object key '${key}' for store ${storeUrl}: ${why}; expected a relative '/'-separated path without '.' or '..' segments`, { store: storeUrl, key });
  }
}

export class RangeNotSatisfiableError extends StoreError {
  constructor(storeUrl: string, key: string, range: ByteRange, size: number | null) {
    const past = size === null ? 'outside the object' : `past the end of the object (${size} bytes)`;
    super('STORE_RANGE_INVALID', `cannot read ${range.length} bytes at offset ${range.offset} of ${key} in store ${storeUrl}: ${past}`, { store: storeUrl, key, ...range, size });
  }
}

export class StreamClosedError extends StoreError {
  constructor(storeUrl: string, key: string, state: 'closed' | 'aborted') {
    super('STORE_STREAM_CLOSED', `cannot use the upload stream of ${key} in store ${storeUrl}: it was already ${state}`, { store: storeUrl, key, state });
  }
}

/** A record the system wrote itself (run.json, a manifest, an idempotency record) that does not parse or fit its schema: damaged in the store. */
export class StoreObjectInvalidError extends StoreError {
  constructor(storeUrl: string, key: string, why: string, options?: { cause?: unknown }) {
    super('STORE_OBJECT_INVALID', `object ${key} in store ${storeUrl} is damaged: ${why}`, { store: storeUrl, key }, options);
  }
}

/** An object whose bytes do not match the sha256 recorded for it (by its manifest, or its own checksum). */
export class CorruptObjectError extends StoreError {
  constructor(key: string, expected: string, actual: string) {
    super('STORE_OBJECT_CORRUPT', `object ${key} does not match its recorded sha256 (expected ${expected}, got ${actual})`, { key, expected, actual });
  }
}

export function checkKey(storeUrl: string, key: string): void {
  if (key === '') throw new BadKeyError(storeUrl, key, 'empty');
  if (key.startsWith('/')) throw new BadKeyError(storeUrl, key, 'starts with /');
  if (key.includes('\0')) throw new BadKeyError(storeUrl, key, 'contains a NUL byte');
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new BadKeyError(storeUrl, key, `has a '${seg}' segment`);
  }
}

/** A list prefix may end in '/' (or be empty), otherwise it follows the key rules. */
export function checkPrefix(storeUrl: string, prefix: string): void {
  if (prefix === '') return;
  checkKey(storeUrl, prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

export function checkRange(storeUrl: string, key: string, range: ByteRange): void {
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeNotSatisfiableError(storeUrl, key, range, null);
  }
}

/** S3 lists keys in UTF-8 byte order; JS string order differs above U+FFFF, so compare bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * An object as a ByteSource, so safetensors headers and tensors are read with ranged gets instead
 * of downloading the object. The size comes from one head(), remembered: readers ask repeatedly.
 */
export function storeSource(store: ObjectStore, key: string): ByteSource {
  let size: number | undefined;
  return {
    name: `${store.url}/${key}`,
    async size() {
      if (size === undefined) {
        const h = await store.head(key);
        if (!h) throw new NotFoundError(store.url, key);
        size = h.size;
      }
      return size;
    },
    read: (offset, length) => store.get(key, { offset, length }),
  };
}
