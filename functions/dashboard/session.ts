import { createHmac, timingSafeEqual } from 'node:crypto';
import { entryOfToken, type TokenEntry } from '../auth.ts';

export const SESSION_COOKIE = 'lisa_session';

/** How long a dashboard sign-in lasts. */
export const SESSION_SECONDS = 12 * 3600;

/**
 * Dashboard sessions: the browser gets a cookie in place of its bearer token, so the HTML pages
 * themselves are authenticated and the tables render without JavaScript.
 *
 * The cookie holds no token: `{tenant}.{expires}.{entry}.{mac}`, where `entry` is the first 16
 * hex digits of the matched token entry's stored hash and `mac` an HMAC-SHA256 of the rest under
 * the server's session key. A cookie is good while its MAC checks, it has not expired, and its
 * token entry is still configured: removing a token from LISA_TOKENS ends its sessions too.
 * The key is LISA_SESSION_KEY when several instances serve one dashboard, else random per process
 * (a restart signs everyone out).
 */
export class Sessions {
  constructor(
    private readonly tokens: readonly TokenEntry[],
    private readonly key: Buffer,
    private readonly clock: () => number,
  ) {}

  /** A session cookie value for a valid token, or null. */
  signIn(token: string): { tenant: string; cookie: string } | null {
    const entry = entryOfToken(this.tokens, token);
    if (entry === null) return null;
    const expires = Math.floor(this.clock() / 1000) + SESSION_SECONDS;
    const body = `${entry.tenant}.${expires}.${entryId(entry)}`;
    return { tenant: entry.tenant, cookie: `${body}.${this.mac(body)}` };
  }

  /** The tenant of a session cookie value, or null: malformed, forged, expired or revoked. */
  tenantOf(cookie: string | undefined): string | null {
    const parts = cookie?.split('.');
    if (parts?.length !== 4) return null;
    const [tenant, expires, entry, mac] = parts;
    const expected = Buffer.from(this.mac(`${tenant}.${expires}.${entry}`));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    if (!(Number(expires) * 1000 > this.clock())) return null;
    return this.tokens.some((e) => e.tenant === tenant && entryId(e) === entry) ? tenant : null;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

const entryId = (e: TokenEntry): string => e.hash.subarray(0, 8).toString('hex');
