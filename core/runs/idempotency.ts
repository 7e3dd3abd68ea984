import { LisaError } from '../errors.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { runPrefix } from '../store/keys.ts';
import { sha256Hex } from '../tensors/hashing.ts';

/**
 * Idempotency-Key for chunk requests, kept in the run's own store so it holds across instances:
 *
 *   runs/{id}/idempotency/{sha256(key)}/claim-{gen}.json   who is working on the key, until when
 *   runs/{id}/idempotency/{sha256(key)}/result.json        the response of the request that finished
 *
 * Both are exclusive creates. A claim whose holder died (expiresAt passed without a result) is
 * taken over by creating the next generation, so exactly one retry takes it over. Only successful
 * responses are recorded; after a failure the claim is released and a retry runs the chunk again,
 * which is safe because nothing was committed.
 */
export interface StoredResponse {
  status: number;
  body: unknown;
}

interface ClaimRecord {
  requestHash: string;
  claimedAt: string;
  expiresAt: string;
}

interface ResultRecord extends StoredResponse {
  requestHash: string;
  createdAt: string;
}

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
const encode = (v: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(v)}\n`);
const decode = async <T>(store: ObjectStore, key: string): Promise<T> => JSON.parse(new TextDecoder().decode(await store.get(key))) as T;

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
    const r = await decode<ResultRecord>(store, resultKey);
    if (r.requestHash !== reqHash) throw new IdempotencyKeyReusedError(runId);
    return { status: r.status, body: r.body };
  };
  if (keys.includes(resultKey)) return { kind: 'replay', response: await replay() };

  const gens = keys.map((k) => CLAIM.exec(k)).filter((m) => m !== null).map((m) => Number(m[1]));
  const latest = gens.length ? Math.max(...gens) : null;
  if (latest !== null) {
    const claim = await decode<ClaimRecord>(store, claimObjectKey(prefix, latest));
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
  if ((await store.createExclusive(mine, encode(record))) === 'exists') return { kind: 'busy', retryAfterSeconds: Math.ceil(ttlSeconds) };
  return {
    kind: 'claimed',
    async complete(response) {
      const result: ResultRecord = { ...response, requestHash: reqHash, createdAt: new Date(clock()).toISOString() };
      if ((await store.createExclusive(resultKey, encode(result))) === 'exists') return replay();
      return response;
    },
    release: () => store.delete(mine),
  };
}

function claimObjectKey(prefix: string, gen: number): string {
  return `${prefix}claim-${String(gen).padStart(6, '0')}.json`;
}
