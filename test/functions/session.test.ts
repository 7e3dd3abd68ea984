import { describe, expect, it } from 'vitest';
import { newToken, parseTokenConfig } from '../../functions/auth.ts';
import { SESSION_SECONDS, Sessions } from '../../functions/dashboard/session.ts';

const alpha = newToken('alpha');
const beta = newToken('beta');
const entries = parseTokenConfig(`${alpha.line}\n${beta.line}`, 'test');
const key = Buffer.alloc(32, 7);

describe('dashboard sessions', () => {
  it('a valid token gets a signed cookie naming its tenant, holding no token', () => {
    let now = 1_700_000_000_000;
    const sessions = new Sessions(entries, key, () => now);
    const s = sessions.signIn(alpha.token)!;
    expect(s.tenant).toBe('alpha');
    const [tenant, expires, entry, mac] = s.cookie.split('.');
    expect([tenant, Number(expires), entry]).toEqual(['alpha', now / 1000 + SESSION_SECONDS, entries[0].hash.subarray(0, 8).toString('hex')]);
    expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.cookie).not.toContain(alpha.token.slice(5));
    expect(sessions.tenantOf(s.cookie)).toBe('alpha');
    expect(sessions.tenantOf(sessions.signIn(beta.token)!.cookie)).toBe('beta');
    // expiry, to the second
    now += SESSION_SECONDS * 1000 - 1;
    expect(sessions.tenantOf(s.cookie)).toBe('alpha');
    now += 1;
    expect(sessions.tenantOf(s.cookie)).toBeNull();
  });

  it('refuses a wrong token, and forged, malformed, foreign-key or revoked cookies', () => {
    const sessions = new Sessions(entries, key, () => 1_700_000_000_000);
    expect(sessions.signIn(`${alpha.token}x`)).toBeNull();
    expect(sessions.signIn('')).toBeNull();
    const { cookie } = sessions.signIn(alpha.token)!;
    const [, expires, entry, mac] = cookie.split('.');
    expect(sessions.tenantOf(`beta.${expires}.${entry}.${mac}`)).toBeNull();
    expect(sessions.tenantOf(`alpha.${Number(expires) + 3600}.${entry}.${mac}`)).toBeNull();
    expect(sessions.tenantOf(`${cookie}x`)).toBeNull();
    expect(sessions.tenantOf(cookie.split('.').slice(0, 3).join('.'))).toBeNull();
    expect(sessions.tenantOf(undefined)).toBeNull();
    expect(sessions.tenantOf('')).toBeNull();
    expect(new Sessions(entries, Buffer.alloc(32, 8), () => 1_700_000_000_000).tenantOf(cookie)).toBeNull();
    // alpha's token removed from the config: its sessions end with it
    expect(new Sessions(entries.slice(1), key, () => 1_700_000_000_000).tenantOf(cookie)).toBeNull();
  });
});
