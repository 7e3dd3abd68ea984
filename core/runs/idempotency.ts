import { z } from 'zod';
import { LisaError } from '../errors.ts';
import { NotFoundError, type ObjectStore } from '../store/object-store.ts';
import { runPrefix } from '../store/keys.ts';
import { encodeRecord, getRecord } from '../store/records.ts';
import { sha256Hex } from '../tensors/hashing.ts';

/**
 * Idempotency-Key for chunk requests, kept in the run's own store so it holds across instances:
 *
 *   runs/{id}/idempotency/{sha256(key)}/claim-{gen}.json   who is working on the key, until when
 *   runs/{id}/idempotency/{sha256(key)}/result.json        the response of the request that finished
 *
 * Both are exclusive creates of checksummed records (core/store/records.ts). A claim whose holder
 * died (expiresAt passed without a result) is taken over by creating the next generation, so
 * exactly one retry takes it over. Only successful responses are recorded; after a failure the
 * claim is released and a retry runs the chunk again, which is safe because nothing was committed.
 */
export interface StoredResponse {
  status: number;
  body: unknown;
}

const Hash = z.string().regex(/^[0-9a-f]{64}$/);

// Strict, so that a damaged `checksum` key shows (records written before checksums have none).
const ClaimRecord = z.strictObject({ requestHash: Hash, claimedAt: z.iso.datetime(), expiresAt: z.iso.datetime() });
const ResultRecord = z.strictObject({ status: z.number().int().min(200).max(299), body: z.unknown(), requestHash: Hash, createdAt: z.iso.datetime() });
type ClaimRecord = z.output<typeof ClaimRecord>;
type ResultRecord = z.output<typeof ResultRecord>;

export type ClaimOutcome =
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'busy'; retryAfterSeconds: number }
  | {
      kind: 'claimed';
      /** records the response; returns the one on record (ours, or an earlier one on a lost race) */
      complete(response: StoredResponse): Promise<StoredResponse>;
      /** gives the key up after a failure so a retry can run */
      release(): Promise<void>;
    };

export class IdempotencyKeyReusedError extends LisaError {
  constructor(runId: string) {
    super('IDEMPOTENCY_KEY_REUSED', `this Idempotency-Key was already used on run '${runId}' with a different request body; use a new key for a new request`, {
      runId,
    });
  }
}

export class IdempotencyInProgressError extends LisaError {
  constructor(runId: string, readonly retryAfterSeconds: number) {
    super('IDEMPOTENCY_IN_PROGRESS', `a request with this Idempotency-Key is still running on run '${runId}' on another instance; retry after ${retryAfterSeconds} s to get its result`, {
      runId,
      retryAfterSeconds,
    });
  }
}

export class InvalidIdempotencyKeyError extends LisaError {
  constructor() {
    super('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key must be 1-255 visible ASCII characters');
  }
}

export function checkIdempotencyKey(key: string): void {
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) throw new InvalidIdempotencyKeyError();
}

export const keyHash = (key: string): string => sha256Hex(key);
export const requestHash = (body: unknown): string => sha256Hex(JSON.stringify(body));

const recordPrefix = (runId: string, hash: string): string => `${runPrefix(runId)}idempotency/${hash}/`;
const CLAIM = /claim-(\d{6})\.json$/;
/** Reads a record listed a moment ago; null when it was deleted since (a claim released after a failure). */
async function readListed<S extends z.ZodType>(store: ObjectStore, key: string, schema: S): Promise<z.output<S> | null> {
  const missing = new NotFoundError(store.url, key);
  return getRecord(store, key, { schema, needsChecksum: () => false }, () => missing).catch((err: unknown) => {
    if (err === missing) return null;
    throw err;
  });
}

export async function claimKey(
  store: ObjectStore,
  runId: string,
  key: string,
  reqHash: string,
  clock: () => number,
  ttlSeconds: number,
): Promise<ClaimOutcome> {
  const now = clock();
  const prefix = recordPrefix(runId, keyHash(key));
  const resultKey = `${prefix}result.json`;
  const keys = await store.list(prefix);
  const replay = async (): Promise<StoredResponse> => {
    const r = await readListed(store, resultKey, ResultRecord);
    // results are never deleted: one listed and then missing is damage to the store
    if (!r) throw new NotFoundError(store.url, resultKey);
    if (r.requestHash !== reqHash) throw new IdempotencyKeyReusedError(runId);
    return { status: r.status, body: r.body };
  };
  if (keys.includes(resultKey)) return { kind: 'replay', response: await replay() };

  const gens = keys.map((k) => CLAIM.exec(k)).filter((m) => m !== null).map((m) => Number(m[1]));
  const latest = gens.length ? Math.max(...gens) : null;
  const claim = latest === null ? null : await readListed(store, claimObjectKey(prefix, latest), ClaimRecord);
  if (claim) {
    if (claim.requestHash !== reqHash) throw new IdempotencyKeyReusedError(runId);
    const left = Date.parse(claim.expiresAt) - now;
    if (left > 0) return { kind: 'busy', retryAfterSeconds: Math.ceil(left / 1000) };
  }
  const gen = latest === null ? 0 : latest + 1;
  const mine = claimObjectKey(prefix, gen);
  const record: ClaimRecord = {
    requestHash: reqHash,
    claimedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
  };
  if ((await store.createExclusive(mine, encodeRecord(record))) === 'exists') return { kind: 'busy', retryAfterSeconds: Math.ceil(ttlSeconds) };
  return {
    kind: 'claimed',
    async complete(response) {
      const result: ResultRecord = { ...response, requestHash: reqHash, createdAt: new Date(clock()).toISOString() };
      if ((await store.createExclusive(resultKey, encodeRecord(result))) === 'exists') return replay();
      return response;
    },
    release: () => store.delete(mine),
  };
}

function claimObjectKey(prefix: string, gen: number): string {
  return `${prefix}claim-${String(gen).padStart(6, '0')}.json`;
}
