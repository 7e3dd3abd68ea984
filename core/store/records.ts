/**
 * The JSON records lisa-fn writes into a store itself (run.json, chunk manifests, idempotency
 * records): written with a checksum, read back only after a full check.
 *
 * The checksum is the sha256 of the record's canonical JSON (keys sorted at every level, no
 * whitespace) without the `checksum` field itself. Any change to a value, a key or the structure
 * changes it; only whitespace does not, which changes nothing the record says. Read back, a record
 * must be UTF-8 (strictly: a damaged byte is never replaced by U+FFFD), JSON, match its checksum
 * (STORE_OBJECT_CORRUPT otherwise) and its schema (STORE_OBJECT_INVALID), both naming the key.
 *
 * Records written before checksums existed have none; each reader says which records must have
 * one (manifests and run.json from version 2 on), so a damaged `checksum` key cannot make a record
 * pass for an old one.
 */
import type { z } from 'zod';
import { sha256Hex } from '../tensors/hashing.ts';
import { CorruptObjectError, NotFoundError, StoreObjectInvalidError, type ObjectStore } from './object-store.ts';

/** The record's content as the checksum sees it: sorted keys, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const checksumOf = (content: unknown): string => sha256Hex(canonicalJson(content));

/** The bytes of a record: its JSON (as JSON.stringify renders it, `indent` spaces) with its checksum last. */
export function encodeRecord(value: object, indent = 0): Uint8Array {
  // round trip first, so the checksum covers exactly what a reader will parse (undefined fields dropped)
  const content = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  delete content.checksum;
  return new TextEncoder().encode(`${JSON.stringify({ ...content, checksum: checksumOf(content) }, null, indent || undefined)}\n`);
}

export interface RecordRules<S extends z.ZodType> {
  schema: S;
  /** whether a record with this content must carry a checksum (false: an older writer's record is accepted without) */
  needsChecksum: (content: Record<string, unknown>) => boolean;
  /** checks across fields and against where the record lives; returns what is wrong, or null */
  check?: (record: z.output<S>) => string | null;
}

/** Parses and checks a record read from `key` (see the module doc); the result has no `checksum`. */
export function decodeRecord<S extends z.ZodType>(storeUrl: string, key: string, bytes: Uint8Array, rules: RecordRules<S>): z.output<S> {
  const invalid = (why: string, cause?: unknown) => new StoreObjectInvalidError(storeUrl, key, why, cause === undefined ? undefined : { cause });
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw invalid(bytes.length === 0 ? 'empty' : `not UTF-8 JSON (${(err as Error).message})`, err);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('not a JSON object');
  const { checksum, ...content } = parsed as Record<string, unknown>;
  if (checksum === undefined) {
    if (rules.needsChecksum(content)) throw invalid('no checksum');
  } else {
    const actual = checksumOf(content);
    if (checksum !== actual) throw new CorruptObjectError(key, String(checksum), actual);
  }
  const result = rules.schema.safeParse(content);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(record)'}: ${i.message}`);
    throw invalid(`does not fit its schema: ${problems.join('; ')}`);
  }
  const wrong = rules.check?.(result.data);
  if (wrong) throw invalid(wrong);
  return result.data;
}

/** A record in one GET (no HEAD first); `missing` names what is absent in the caller's words (a run, a chunk). */
export async function getRecord<S extends z.ZodType>(store: ObjectStore, key: string, rules: RecordRules<S>, missing: () => Error): Promise<z.output<S>> {
  let bytes: Uint8Array;
  try {
    bytes = await store.get(key);
  } catch (err) {
    throw err instanceof NotFoundError ? missing() : err;
  }
  return decodeRecord(store.url, key, bytes, rules);
}
