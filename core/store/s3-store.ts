import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { LisaError } from '../errors.ts';
import { sha256Hex } from '../tensors/hashing.ts';
import {
  AccessDeniedError,
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
  StoreError,
  type StoreStats,
  StreamClosedError,
} from './object-store.ts';

export const MiB = 1024 * 1024;
/** S3's smallest allowed part (every part but the last) and most parts per upload. */
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;

/** The environment variables the client is configured from (pass process.env from cli/functions). */
export type StoreEnv = Readonly<Record<string, string | undefined>>;

export interface RetryOptions {
  /** tries per request, the first included */
  attempts: number;
  /** the n-th retry waits a uniformly random time in [0, min(capMs, baseMs * 2^(n-1))] ("full jitter") */
  baseMs: number;
  capMs: number;
}

export interface S3StoreOptions {
  client: S3Client;
  bucket: string;
  /** key prefix inside the bucket: '' or ending in '/' */
  prefix?: string;
  /** bytes per ranged GET and per multipart part; default 8 MiB, at least 5 MiB (S3's minimum part) */
  partSize?: number;
  /** requests in flight at once, across all operations of this store; default 8 */
  concurrency?: number;
  /** parts of one putStream uploading at once (its memory: this plus one, times partSize); default 4 */
  streamParts?: number;
  retry?: Partial<RetryOptions>;
  /** told about retries and other recoverable trouble */
  log?: (msg: string) => void;
}

/**
 * Client settings from the environment: the SDK's standard credential and region chains, plus a
 * custom endpoint (Ceph RGW, MinIO, ...) from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, which
 * also switches to path-style addressing (bucket in the path: local servers have no wildcard DNS).
 * The SDK's own retries are off (maxAttempts 1): S3Store retries itself, because a blind retry of a
 * conditional create that did land would report a win as a loss.
 */
export function s3ClientConfig(env: StoreEnv): S3ClientConfig {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
  // A stalled server (a Ceph OSD that is full blocks writes without answering) must become a
  // retryable TimeoutError, not a hang: by default 10 s to connect, 60 s without a byte moving.
  const requestHandler = {
    connectionTimeout: timeoutMs(env, 'LISA_S3_CONNECT_TIMEOUT_SECONDS', 10),
    socketTimeout: timeoutMs(env, 'LISA_S3_SOCKET_TIMEOUT_SECONDS', 60),
  };
  const config: S3ClientConfig = { maxAttempts: 1, requestHandler };
  if (region) config.region = region;
  if (endpoint) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
  }
  // Static keys from `env` directly, so a caller's env wins over the process's; otherwise the SDK's
  // default chain (profiles, SSO, container and instance roles).
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  return config;
}

/** A timeout from the environment in ms: positive seconds, or the default. */
function timeoutMs(env: StoreEnv, name: string, defaultSeconds: number): number {
  const raw = env[name]?.trim();
  if (!raw) return defaultSeconds * 1000;
  const seconds = Number(raw);
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new StoreError('STORE_CONFIG_INVALID', `${name}='${raw}' is not a positive number of seconds`, { variable: name });
  }
  return Math.ceil(seconds * 1000);
}

interface AwsError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (err: unknown): number | undefined => (err as AwsError)?.$metadata?.httpStatusCode;
const nameOf = (err: unknown): string => (err as AwsError)?.name ?? '';

const THROTTLING = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'TooManyRequestsException', 'RequestTimeout']);
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTCONN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Worth retrying: the server or the network failed, or we were told to slow down. */
function isTransient(err: unknown): boolean {
  if (err instanceof LisaError) return false;
  const status = statusOf(err);
  if (status !== undefined && [500, 502, 503, 504, 429].includes(status)) return true;
  const name = nameOf(err);
  if (THROTTLING.has(name) || name === 'TimeoutError') return true;
  return NETWORK.has((err as AwsError)?.code ?? '') || (status === undefined && /socket hang up|aborted/i.test((err as AwsError)?.message ?? ''));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * ObjectStore over S3 (AWS or compatible). All requests of one store share a p-queue of
 * `concurrency` slots; large gets become parallel ranged GETs and large puts parallel multipart
 * uploads, `partSize` bytes each. Idempotent requests are retried on 5xx, throttling and network
 * errors with exponential backoff and full jitter; a retry waits outside the queue.
 */
export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly partSize: number;
  readonly streamParts: number;
  readonly stats: StoreStats = { bytesIn: 0, bytesOut: 0, requests: 0 };
  private readonly client: S3Client;
  private readonly queue: PQueue;
  private readonly retry: RetryOptions;
  private readonly log: (msg: string) => void;

  constructor(opts: S3StoreOptions) {
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix ?? '';
    if (this.prefix !== '' && !this.prefix.endsWith('/')) {
      throw new StoreError('STORE_CONFIG_INVALID', `S3 key prefix '${this.prefix}' must be empty or end with '/'`, { prefix: this.prefix });
    }
    this.url = `s3://${this.bucket}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}`;
    this.partSize = opts.partSize ?? 8 * MiB;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART) {
      throw new StoreError('STORE_CONFIG_INVALID', `S3 part size ${this.partSize} is below S3's minimum of ${MIN_PART} bytes (5 MiB)`, { partSize: this.partSize });
    }
    const concurrency = opts.concurrency ?? 8;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new StoreError('STORE_CONFIG_INVALID', `S3 concurrency ${concurrency} must be a positive integer`, { concurrency });
    }
    this.queue = new PQueue({ concurrency });
    this.streamParts = opts.streamParts ?? Math.min(4, concurrency);
    if (!Number.isSafeInteger(this.streamParts) || this.streamParts < 1) {
      throw new StoreError('STORE_CONFIG_INVALID', `S3 stream parts ${this.streamParts} must be a positive integer`, { streamParts: this.streamParts });
    }
    this.retry = { attempts: 6, baseMs: 100, capMs: 5000, ...opts.retry };
    this.log = opts.log ?? (() => undefined);
  }

  private fullKey(key: string): string {
    checkKey(this.url, key);
    return this.prefix + key;
  }

  // ---- requests -------------------------------------------------------------------------------

  /** One attempt of one request, in the queue. */
  private attempt<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.add(() => {
      this.stats.requests++;
      return fn();
    });
  }

  private backoffMs(retry: number): number {
    return Math.random() * Math.min(this.retry.capMs, this.retry.baseMs * 2 ** (retry - 1));
  }

  /** Runs an idempotent request, retrying transient failures. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await this.attempt(fn);
      } catch (err) {
        if (n >= this.retry.attempts || !isTransient(err)) throw err;
        const wait = this.backoffMs(n);
        this.log(`s3: ${what} failed (${nameOf(err) || (err as AwsError).code} ${statusOf(err) ?? ''}); retry ${n} in ${Math.round(wait)} ms`);
        await sleep(wait);
      }
    }
  }

  /** Translates an SDK error into the store's typed errors. */
  private fail(err: unknown, op: string, key?: string): Error {
    if (err instanceof LisaError) return err;
    const name = nameOf(err);
    const status = statusOf(err);
    if (key !== undefined && (name === 'NoSuchKey' || (op === 'head' && status === 404))) return new NotFoundError(this.url, key, { cause: err });
    if (name === 'NoSuchBucket') {
      return new StoreError('STORE_BUCKET_NOT_FOUND', `bucket '${this.bucket}' of store ${this.url} does not exist (or is not visible at this endpoint)`, { store: this.url, bucket: this.bucket }, { cause: err });
    }
    if (status === 403 || ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch'].includes(name)) {
      return new AccessDeniedError(this.url, `${op} ${key ?? ''}`.trim(), { cause: err });
    }
    if (name === 'CredentialsProviderError') {
      return new StoreError('STORE_CREDENTIALS_MISSING', `no AWS credentials for store ${this.url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with a role`, { store: this.url }, { cause: err });
    }
    const detail = `${name || (err as AwsError)?.code || 'error'}${status ? ` (HTTP ${status})` : ''}: ${(err as AwsError)?.message ?? String(err)}`;
    return new StoreError('STORE_REQUEST_FAILED', `S3 ${op} ${key ?? ''} in store ${this.url} failed: ${detail}`, { store: this.url, key, op, status }, { cause: err });
  }

  // ---- get ------------------------------------------------------------------------------------

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    const full = this.fullKey(key);
    if (range) checkRange(this.url, key, range);
    try {
      if (range?.length === 0) {
        if (!(await this.head(key))) throw new NotFoundError(this.url, key);
        return new Uint8Array(0);
      }
      // An object overwritten between our part requests would mix two versions: the parts' ETags
      // tell, and the read starts over.
      for (let n = 1; ; n++) {
        const out = range ? await this.getRange(key, full, range.offset, range.length) : await this.getWhole(key, full);
        if (out) return out;
        if (n >= 3) throw new StoreError('STORE_READ_UNSTABLE', `${this.url}/${key} changed during each of ${n} reads`, { store: this.url, key });
        this.log(`s3: ${key} changed while being read; reading again`);
      }
    } catch (err) {
      if (range && statusOf(err) === 416) throw new RangeNotSatisfiableError(this.url, key, range, null);
      throw this.fail(err, 'get', key);
    }
  }

  /** Whole object: the first part's Content-Range tells the size, the rest go in parallel. */
  private async getWhole(key: string, full: string): Promise<Uint8Array | null> {
    let first;
    try {
      first = await this.fetchRange(key, full, 0, this.partSize);
    } catch (err) {
      // a Range on an empty object is unsatisfiable (416): it has no bytes to fetch in parts
      if (statusOf(err) !== 416) throw err;
      return this.retrying(`get ${key}`, async () => {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: full }));
        return this.readBody(key, res.Body, new Uint8Array(Number(res.ContentLength ?? 0)));
      });
    }
    if (first.total <= this.partSize) return first.bytes;
    const out = new Uint8Array(first.total);
    out.set(first.bytes, 0);
    return (await this.fillParts(key, full, out, 0, this.partSize, first.etag)) ? out : null;
  }

  private async getRange(key: string, full: string, offset: number, length: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(length);
    return (await this.fillParts(key, full, out, offset, 0, undefined)) ? out : null;
  }

  /**
   * Fills out[from..] with the object's bytes at offset+from.., one ranged GET per part, all
   * queued at once. False when the parts came from different object versions.
   */
  private async fillParts(key: string, full: string, out: Uint8Array, offset: number, from: number, etag: string | undefined): Promise<boolean> {
    const parts: Promise<string | undefined>[] = [];
    for (let at = from; at < out.length; at += this.partSize) {
      const len = Math.min(this.partSize, out.length - at);
      parts.push(
        this.fetchRange(key, full, offset + at, len, out.subarray(at, at + len)).then((p) => {
          if (p.bytes.length !== len) throw new RangeNotSatisfiableError(this.url, key, { offset, length: out.length }, p.total);
          return p.etag;
        }),
      );
    }
    const etags = await Promise.all(parts);
    const first = etag ?? etags[0];
    return etags.every((e) => e === first);
  }

  /** One ranged GET, retried; the body lands in `into` (or a fresh array). */
  private fetchRange(key: string, full: string, offset: number, length: number, into?: Uint8Array): Promise<{ bytes: Uint8Array; total: number; etag: string | undefined }> {
    return this.retrying(`get ${key} bytes ${offset}+${length}`, async () => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: full, Range: `bytes=${offset}-${offset + length - 1}` }));
      // without a target, size the array by the answer: a whole-object get of a small object asks
      // for a full part and must not hold on to a part-sized buffer
      const target = into ?? new Uint8Array(Math.min(length, Number(res.ContentLength ?? length)));
      const total = Number(/\/(\d+)$/.exec(res.ContentRange ?? '')?.[1] ?? NaN);
      if (!Number.isSafeInteger(total)) throw new StoreError('STORE_REQUEST_FAILED', `S3 get ${key} in store ${this.url}: ranged GET answered without a usable Content-Range ('${res.ContentRange}')`, { store: this.url, key });
      const bytes = await this.readBody(key, res.Body, target);
      return { bytes, total, etag: res.ETag };
    });
  }

  /** Streams a response body into `out`; returns the filled prefix of `out`. */
  private async readBody(key: string, body: unknown, out: Uint8Array): Promise<Uint8Array> {
    let n = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      if (n + chunk.length > out.length) {
        throw new StoreError('STORE_REQUEST_FAILED', `S3 get ${key} in store ${this.url}: response body longer than the ${out.length} bytes asked for`, { store: this.url, key });
      }
      out.set(chunk, n);
      n += chunk.length;
      this.stats.bytesIn += chunk.length;
    }
    return out.subarray(0, n);
  }

  // ---- put ------------------------------------------------------------------------------------

  /** One object from memory, through the streaming upload: a single PUT up to one part, multipart beyond. */
  async put(key: string, body: Uint8Array): Promise<void> {
    const sink = this.putStream(key);
    try {
      await sink.write(body);
    } catch (err) {
      await sink.abort();
      throw err;
    }
    await sink.close();
  }

  // ---- putStream ------------------------------------------------------------------------------

  /**
   * Streams one object in `partSize` parts. Bytes are copied into a part buffer; when it is full
   * and more bytes come, it is uploaded (the first such part opens a multipart upload) through the
   * store's queue while writing goes on in another buffer, with at most `streamParts` parts
   * uploading: write() waits for one to finish. Memory is (streamParts + 1) part buffers, reused,
   * however large the object. An object that ends within one part is a single PUT. A part that
   * fails for good fails the stream; that, or abort(), aborts the multipart upload once no part is
   * in flight (a part finishing after the abort would be stored, and billed, with no upload to
   * clean it up). At most 10,000 parts: partSize x 10,000 bytes per object.
   */
  putStream(key: string): ObjectSink {
    const full = this.fullKey(key);
    type Part = { ETag: string | undefined; PartNumber: number };
    const parts: Promise<Part>[] = [];
    const spare: Uint8Array[] = [];
    const waiting: Array<() => void> = [];
    let buf: Uint8Array | null = null;
    let filled = 0;
    let size = 0;
    let uploading = 0;
    let uploadId: Promise<string> | null = null;
    let failure: unknown;
    let state: 'open' | 'closed' | 'aborted' = 'open';
    const abandoned = new StoreError('STORE_REQUEST_FAILED', `S3 put ${key}: upload abandoned`, {});

    const createUpload = async (): Promise<string> => {
      const res = await this.retrying(`create multipart ${key}`, () => this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: full })));
      if (!res.UploadId) throw new StoreError('STORE_REQUEST_FAILED', `S3 put ${key} in store ${this.url}: CreateMultipartUpload returned no UploadId`, { store: this.url, key });
      return res.UploadId;
    };
    const uploadPart = (body: Uint8Array, owner: Uint8Array) => {
      const n = parts.length + 1;
      if (n > MAX_PARTS) {
        throw (failure = new StoreError('STORE_OBJECT_TOO_LARGE', `S3 put ${key} in store ${this.url}: a stream of more than ${MAX_PARTS} parts of ${this.partSize} bytes; raise the store's part size`, { store: this.url, key, partSize: this.partSize }));
      }
      uploadId ??= createUpload();
      uploadId.catch(() => undefined); // surfaced through the parts
      uploading++;
      const part = uploadId
        .then((id) =>
          this.retrying(`put ${key} part ${n}`, async () => {
            if (failure !== undefined) throw abandoned;
            this.stats.bytesOut += body.length;
            const res = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: full, UploadId: id, PartNumber: n, Body: body }));
            return { ETag: res.ETag, PartNumber: n };
          }),
        )
        .catch((err: unknown) => {
          failure ??= err;
          throw err;
        })
        .finally(() => {
          uploading--;
          spare.push(owner);
          waiting.shift()?.();
        });
      part.catch(() => undefined); // collected at close or abort
      parts.push(part);
    };
    const abortUpload = async () => {
      await Promise.allSettled(parts);
      const id = await uploadId?.catch(() => null);
      if (!id) return;
      await this.retrying(`abort multipart ${key}`, () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: id }))).catch((err: unknown) =>
        this.log(`s3: could not abort multipart upload ${id} of ${key}: ${nameOf(err)}; a lifecycle rule for incomplete uploads will have to remove its parts`),
      );
    };
    const slot = async () => {
      while (uploading >= this.streamParts && failure === undefined) await new Promise<void>((wake) => waiting.push(wake));
    };
    const usable = () => {
      if (state !== 'open') throw new StreamClosedError(this.url, key, state);
      if (failure !== undefined) throw this.fail(failure, 'put', key);
    };

    return {
      write: async (chunk) => {
        usable();
        for (let at = 0; at < chunk.length; ) {
          if (buf && filled === buf.length) {
            await slot();
            usable();
            uploadPart(buf, buf);
            buf = null;
          }
          if (!buf) {
            buf = spare.pop() ?? new Uint8Array(this.partSize);
            filled = 0;
          }
          const n = Math.min(buf.length - filled, chunk.length - at);
          buf.set(chunk.subarray(at, at + n), filled);
          filled += n;
          at += n;
          size += n;
        }
      },
      close: async () => {
        if (state !== 'open') throw new StreamClosedError(this.url, key, state);
        state = 'closed';
        const last = buf ? buf.subarray(0, filled) : new Uint8Array(0);
        try {
          if (failure !== undefined) throw failure;
          if (!uploadId) {
            await this.retrying(`put ${key}`, () => {
              this.stats.bytesOut += last.length;
              return this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: last }));
            });
            return;
          }
          if (last.length > 0) {
            await slot();
            if (failure !== undefined) throw failure;
            uploadPart(last, buf!);
          }
          const settled = await Promise.allSettled(parts);
          if (failure !== undefined) throw failure;
          const done = settled.map((r) => (r as PromiseFulfilledResult<Part>).value);
          const id = await uploadId;
          let tries = 0;
          try {
            await this.retrying(`complete multipart ${key}`, () => {
              tries++;
              return this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: id, MultipartUpload: { Parts: done } }));
            });
          } catch (err) {
            // a retried Complete whose first try landed finds the upload gone: the object is there
            if (!(tries > 1 && nameOf(err) === 'NoSuchUpload' && (await this.head(key))?.size === size)) throw err;
          }
        } catch (err) {
          failure ??= err;
          await abortUpload();
          throw this.fail(err, 'put', key);
        } finally {
          buf = null;
          spare.length = 0;
        }
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        failure ??= abandoned;
        for (const wake of waiting.splice(0)) wake();
        buf = null;
        await abortUpload();
      },
    };
  }

  // ---- createExclusive -----------------------------------------------------------------------

  /**
   * PutObject with If-None-Match: * (single part: S3 and Ceph RGW do not honour the condition on
   * CompleteMultipartUpload). Never blindly retried: 412 means someone else holds the key. A 409
   * ConditionalRequestConflict (AWS: a racing conditional write), a 5xx (Ceph RGW answers 500 on
   * a race) or a network error leaves open whether our create landed, so the object is read back:
   * our bytes (same sha256) mean it was ours, other bytes mean it is someone else's, and no object
   * means the put is tried again. Two writers with byte-identical bodies would both see
   * 'created'; for manifests that is harmless, they describe the same commit.
   */
  async createExclusive(key: string, body: Uint8Array): Promise<'created' | 'exists'> {
    const full = this.fullKey(key);
    const mine = sha256Hex(body);
    for (let n = 1; ; n++) {
      let err: unknown;
      try {
        await this.attempt(() => {
          this.stats.bytesOut += body.length;
          return this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: body, IfNoneMatch: '*' }));
        });
        return 'created';
      } catch (e) {
        err = e;
      }
      if (statusOf(err) === 412 || nameOf(err) === 'PreconditionFailed') return 'exists';
      if (!(statusOf(err) === 409 || isTransient(err))) throw this.fail(err, 'create', key);
      const existing = await this.get(key).catch((e: unknown) => {
        if (e instanceof NotFoundError) return null;
        throw e;
      });
      if (existing) return sha256Hex(existing) === mine ? 'created' : 'exists';
      if (n >= this.retry.attempts) throw this.fail(err, 'create', key);
      const wait = this.backoffMs(n);
      this.log(`s3: create ${key} failed (${nameOf(err)} ${statusOf(err) ?? ''}) and did not land; retry ${n} in ${Math.round(wait)} ms`);
      await sleep(wait);
    }
  }

  // ---- head, list, delete ---------------------------------------------------------------------

  async head(key: string): Promise<ObjectInfo | null> {
    const full = this.fullKey(key);
    try {
      const res = await this.retrying(`head ${key}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full })));
      // a server that omits Last-Modified gets "now": gc then treats the object as fresh, never as stale
      return { size: Number(res.ContentLength ?? 0), lastModified: res.LastModified ?? new Date(), ...(res.ETag ? { etag: res.ETag } : {}) };
    } catch (err) {
      const e = this.fail(err, 'head', key);
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    checkPrefix(this.url, prefix);
    const keys: string[] = [];
    try {
      let token: string | undefined;
      do {
        const res = await this.retrying(`list ${prefix}`, () =>
          this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token })),
        );
        for (const o of res.Contents ?? []) if (o.Key) keys.push(o.Key.slice(this.prefix.length));
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw this.fail(err, 'list', prefix);
    }
    return keys.sort(compareKeys);
  }

  /** Aborts the incomplete multipart uploads under `prefix` that started before `before`. */
  async sweep(prefix: string, before: Date): Promise<string[]> {
    checkPrefix(this.url, prefix);
    const removed: string[] = [];
    try {
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const res = await this.retrying(`list uploads ${prefix}`, () =>
          this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.prefix + prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
        );
        for (const u of res.Uploads ?? []) {
          if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated >= before) continue;
          const { Key, UploadId } = u;
          await this.retrying(`abort multipart ${Key}`, () => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })));
          removed.push(`${Key.slice(this.prefix.length)} (incomplete multipart upload ${UploadId})`);
        }
        [keyMarker, uploadIdMarker] = res.IsTruncated ? [res.NextKeyMarker, res.NextUploadIdMarker] : [undefined, undefined];
      } while (keyMarker !== undefined);
    } catch (err) {
      throw this.fail(err, 'sweep', prefix);
    }
    return removed;
  }

  async delete(key: string): Promise<void> {
    const full = this.fullKey(key);
    try {
      await this.retrying(`delete ${key}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full })));
    } catch (err) {
      throw this.fail(err, 'delete', key);
    }
  }
}

/** An S3Store for s3://bucket/prefix with a client configured from `env` (see s3ClientConfig). */
export function createS3Store(bucket: string, prefix: string, env: StoreEnv, opts: Omit<S3StoreOptions, 'client' | 'bucket' | 'prefix'> = {}): S3Store {
  return new S3Store({ ...opts, bucket, prefix, client: new S3Client(s3ClientConfig(env)) });
}
