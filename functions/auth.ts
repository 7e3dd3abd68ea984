import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { LisaError } from '../core/index.ts';

/**
 * Bearer tokens. The server keeps only `tenant:salt:hash` lines, hash = sha256(salt || token)
 * in hex. Tokens are 256 random bits, so a fast salted hash is enough: there is nothing to brute
 * force, and per-request cost stays at microseconds (scrypt would cost ~50 ms of a busy core).
 */
export interface TokenEntry {
  tenant: string;
  salt: Buffer;
  hash: Buffer;
}

/** A tenant becomes a store prefix (`tenants/{tenant}/`), so it must be a safe path segment. */
const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const HEX = /^[0-9a-f]+$/;

export class InvalidTokenConfigError extends LisaError {
  constructor(where: string, problem: string) {
    super('TOKEN_CONFIG_INVALID', `${where}: ${problem}`, { where });
  }
}

export class InvalidTenantError extends LisaError {
  constructor(tenant: string) {
    super('TENANT_INVALID', `invalid tenant '${tenant}': expected 1-63 characters of a-z 0-9 _ -, starting with a letter or digit`);
  }
}

export function checkTenant(tenant: string): void {
  if (!TENANT.test(tenant)) throw new InvalidTenantError(tenant);
}

export function hashToken(token: string, salt: Buffer): Buffer {
  return createHash('sha256').update(salt).update(token, 'utf8').digest();
}

/** A fresh token for `tenant` and the config line that accepts it. The token is shown once. */
export function newToken(tenant: string, random: (n: number) => Buffer = randomBytes): { token: string; line: string } {
  checkTenant(tenant);
  const token = `lisa_${random(32).toString('base64url')}`;
  const salt = random(16);
  return { token, line: `${tenant}:${salt.toString('hex')}:${hashToken(token, salt).toString('hex')}` };
}

/**
 * Parses token config: `tenant:salt:hash` entries separated by newlines or commas (blank lines
 * and `#` comments ignored), or a JSON array of {tenant, salt, hash}. `where` names the source
 * (env var or file) in errors.
 */
export function parseTokenConfig(text: string, where: string): TokenEntry[] {
  const trimmed = text.trim();
  const raw: Array<{ tenant: unknown; salt: unknown; hash: unknown; at: string }> = [];
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new InvalidTokenConfigError(where, `not valid JSON (${(err as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new InvalidTokenConfigError(where, 'expected a JSON array of {tenant, salt, hash}');
    parsed.forEach((e: Record<string, unknown>, i) => raw.push({ tenant: e?.tenant, salt: e?.salt, hash: e?.hash, at: `entry ${i}` }));
  } else {
    trimmed.split(/[\n,]/).forEach((line, i) => {
      const l = line.trim();
      if (l === '' || l.startsWith('#')) return;
      const parts = l.split(':');
      if (parts.length !== 3) {
        throw new InvalidTokenConfigError(where, `entry ${i + 1}: expected tenant:salt:hash, found ${parts.length} field(s)`);
      }
      raw.push({ tenant: parts[0], salt: parts[1], hash: parts[2], at: `entry ${i + 1}` });
    });
  }
  const entries = raw.map(({ tenant, salt, hash, at }) => {
    if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
      throw new InvalidTokenConfigError(where, `${at}: tenant must be 1-63 characters of a-z 0-9 _ -`);
    }
    if (typeof salt !== 'string' || salt.length < 16 || salt.length % 2 !== 0 || !HEX.test(salt)) {
      throw new InvalidTokenConfigError(where, `${at}: salt must be at least 8 bytes of lowercase hex`);
    }
    if (typeof hash !== 'string' || hash.length !== 64 || !HEX.test(hash)) {
      throw new InvalidTokenConfigError(where, `${at}: hash must be a sha256 in 64 lowercase hex digits`);
    }
    return { tenant, salt: Buffer.from(salt, 'hex'), hash: Buffer.from(hash, 'hex') };
  });
  if (entries.length === 0) throw new InvalidTokenConfigError(where, 'no token entries (lisa token hash --tenant T prints one)');
  return entries;
}

/**
 * The entry a bearer token matches, or null. Every entry is compared (no early exit) with
 * timingSafeEqual, so timing says nothing about which entry or prefix matched.
 */
export function entryOfToken(entries: readonly TokenEntry[], token: string): TokenEntry | null {
  let match: TokenEntry | null = null;
  for (const e of entries) {
    if (timingSafeEqual(hashToken(token, e.salt), e.hash) && match === null) match = e;
  }
  return match;
}

/** The tenant a bearer token belongs to, or null. */
export function tenantOfToken(entries: readonly TokenEntry[], token: string): string | null {
  return entryOfToken(entries, token)?.tenant ?? null;
}

/** The token of an `Authorization: Bearer <token>` header, or null when absent or another scheme. */
export function bearerToken(header: string | undefined): string | null {
  const m = header === undefined ? null : /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
