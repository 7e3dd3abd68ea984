import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../core/store/fs-store.ts';
import { PrefixedStore } from '../../core/store/prefixed.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('PrefixedStore', () => {
  let dir: string;
  let inner: FsStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lisa-prefixed-'));
    inner = new FsStore(dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('maps every operation under its prefix and lists keys relative to it', async () => {
    const a = new PrefixedStore(inner, 'tenants/a/');
    await a.put('runs/r1/run.json', bytes('one'));
    expect(await a.createExclusive('runs/r1/chunks/00000000.json', bytes('m0'))).toBe('created');
    expect(await a.createExclusive('runs/r1/chunks/00000000.json', bytes('other'))).toBe('exists');
    expect(text(await inner.get('tenants/a/runs/r1/run.json'))).toBe('one');
    expect(text(await a.get('runs/r1/run.json', { offset: 1, length: 2 }))).toBe('ne');
    expect(await a.head('runs/r1/chunks/00000000.json')).toMatchObject({ size: 2 });
    expect(await a.list('runs/r1/')).toEqual(['runs/r1/chunks/00000000.json', 'runs/r1/run.json']);
    await a.delete('runs/r1/run.json');
    expect(await inner.head('tenants/a/runs/r1/run.json')).toBeNull();
    expect(a.url).toBe(`${inner.url}/tenants/a`);
  });

  it('hides other prefixes: the same key under another tenant is a different object', async () => {
    const a = new PrefixedStore(inner, 'tenants/a');
    const b = new PrefixedStore(inner, 'tenants/b');
    await a.put('runs/r1/run.json', bytes('a'));
    expect(await b.head('runs/r1/run.json')).toBeNull();
    expect(await b.list('')).toEqual([]);
    await expect(b.get('runs/r1/run.json')).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
    // a tenant named like another's prefix still stays inside its own
    const ab = new PrefixedStore(inner, 'tenants/a-b');
    await ab.put('x', bytes('ab'));
    expect(await a.list('')).toEqual(['runs/r1/run.json']);
  });

  it('streams under its prefix, metering its own bytes', async () => {
    const a = new PrefixedStore(inner, 'tenants/a/');
    const sink = a.putStream('exports/m/model.safetensors');
    await sink.write(bytes('abc'));
    await sink.write(bytes('de'));
    await sink.close();
    expect(text(await inner.get('tenants/a/exports/m/model.safetensors'))).toBe('abcde');
    expect(a.stats).toEqual({ bytesIn: 0, bytesOut: 5, requests: 1 });
    const dropped = a.putStream('exports/m/other');
    await dropped.write(bytes('x'));
    await dropped.abort();
    expect(await inner.list('tenants/a/exports/')).toEqual(['tenants/a/exports/m/model.safetensors']);
    await expect(async () => a.putStream('../b/x')).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
  });

  it("rejects keys that could climb out of the prefix", async () => {
    const a = new PrefixedStore(inner, 'tenants/a/');
    await expect(a.get('../b/runs/r1/run.json')).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
    await expect(a.put('/abs', bytes('x'))).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
    await expect(a.list('../')).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
    expect(() => new PrefixedStore(inner, '../escape')).toThrow(expect.objectContaining({ code: 'STORE_KEY_INVALID' }));
  });

  it('meters only its own traffic, independent of other views of the same store', async () => {
    const a = new PrefixedStore(inner, 'tenants/a/');
    const b = new PrefixedStore(inner, 'tenants/b/');
    await a.put('k', bytes('12345'));
    await b.put('k', bytes('1234567'));
    await a.get('k');
    await a.get('k', { offset: 0, length: 2 });
    expect(await a.createExclusive('k', bytes('xyz'))).toBe('exists');
    expect(a.stats).toEqual({ bytesIn: 7, bytesOut: 5, requests: 4 });
    expect(b.stats).toEqual({ bytesIn: 0, bytesOut: 7, requests: 1 });
  });
});
