import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearerToken, hashToken, newToken, parseTokenConfig, tenantOfToken } from '../../functions/auth.ts';

const fixed = (n: number): Buffer => Buffer.alloc(n, 0xab);

describe('tokens', () => {
  it('newToken prints tenant:salt:sha256(salt||token) and the line accepts exactly that token', () => {
    const { token, line } = newToken('acme', fixed);
    expect(token).toBe(`lisa_${fixed(32).toString('base64url')}`);
    const salt = 'ab'.repeat(16);
    const hash = createHash('sha256').update(Buffer.from(salt, 'hex')).update(token).digest('hex');
    expect(line).toBe(`acme:${salt}:${hash}`);
    const entries = parseTokenConfig(line, 'test');
    expect(tenantOfToken(entries, token)).toBe('acme');
    expect(tenantOfToken(entries, `${token}x`)).toBeNull();
    expect(tenantOfToken(entries, '')).toBeNull();
  });

  it('random tokens differ and each maps to its own tenant', () => {
    const a = newToken('a');
    const b = newToken('b');
    expect(a.token).not.toBe(b.token);
    const entries = parseTokenConfig(`${a.line}\n${b.line}`, 'test');
    expect(tenantOfToken(entries, a.token)).toBe('a');
    expect(tenantOfToken(entries, b.token)).toBe('b');
  });

  it('parses lines with comments and commas, and a JSON array', () => {
    const a = newToken('t1');
    const b = newToken('t2');
    const [, saltB, hashB] = b.line.split(':');
    const lines = parseTokenConfig(`# team tokens\n\n${a.line},${b.line}\n`, 'LISA_TOKENS');
    expect(lines.map((e) => e.tenant)).toEqual(['t1', 't2']);
    const json = parseTokenConfig(JSON.stringify([{ tenant: 't2', salt: saltB, hash: hashB }]), 'file');
    expect(json).toEqual([{ tenant: 't2', salt: Buffer.from(saltB, 'hex'), hash: Buffer.from(hashB, 'hex') }]);
    expect(hashToken(b.token, json[0].salt).equals(json[0].hash)).toBe(true);
  });

  it('names the source and entry of a bad config', () => {
    const good = newToken('ok').line;
    expect(() => parseTokenConfig(`${good}\nbad:entry`, 'LISA_TOKENS')).toThrow('LISA_TOKENS: entry 2: expected tenant:salt:hash, found 2 field(s)');
    expect(() => parseTokenConfig(good.replace(/^ok/, 'Bad Tenant'), 'f')).toThrow('f: entry 1: tenant must be 1-63 characters of a-z 0-9 _ -');
    expect(() => parseTokenConfig('t:abcd:' + 'a'.repeat(64), 'f')).toThrow('f: entry 1: salt must be at least 8 bytes of lowercase hex');
    expect(() => parseTokenConfig(`t:${'a'.repeat(32)}:abc`, 'f')).toThrow('f: entry 1: hash must be a sha256 in 64 lowercase hex digits');
    expect(() => parseTokenConfig('[{"tenant": 1}]', 'f')).toThrow('f: entry 0: tenant must be');
    expect(() => parseTokenConfig('[nope', 'f')).toThrow(/^f: not valid JSON/);
    expect(() => parseTokenConfig('# nothing\n', 'f')).toThrow(expect.objectContaining({ code: 'TOKEN_CONFIG_INVALID' }));
    expect(() => newToken('../x')).toThrow(expect.objectContaining({ code: 'TENANT_INVALID' }));
  });

  it('reads the token of a Bearer header only', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer   abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
