// One suite over every ObjectStore: FsStore on a temp dir, S3Store on $LISA_TEST_S3 (set by
// `npm test` through infra/local-s3/with-s3.sh, which runs a throwaway Ceph RGW).
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../core/store/fs-store.ts';
import { type ObjectStore, NotFoundError, storeSource } from '../../core/store/object-store.ts';
import { openStore } from '../../core/store/open.ts';
import { s3TestUrl } from './s3-env.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
/** deterministic, position-dependent bytes: a misplaced part shows up as a mismatch */
function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;

interface Backend {
  name: string;
  s3: boolean;
  setup(): Promise<void>;
  /** a store on the backend's (shared) location: several opened in one test see the same objects */
  open(): ObjectStore;
  cleanup(): Promise<void>;
}

function fsBackend(): Backend {
  let dir = '';
  return {
    name: 'FsStore',
    s3: false,
    async setup() {
      dir = await mkdtemp(join(tmpdir(), 'lisa-store-'));
    },
    open: () => new FsStore(dir),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

function s3Backend(url: string): Backend {
  const open = () => openStore(url, { env: process.env, s3: { partSize: 5 * MiB, concurrency: 8 } });
  return {
    name: 'S3Store',
    s3: true,
    setup: async () => undefined,
    open,
    async cleanup() {
      const store = open();
      for (const key of await store.list('')) await store.delete(key);
    },
  };
}

const s3Url = s3TestUrl('object-store');
const backends: Backend[] = [fsBackend(), ...(s3Url ? [s3Backend(s3Url)] : [])];

describe.each(backends)('$name', (backend) => {
  let store: ObjectStore;
  beforeAll(async () => {
    await backend.setup();
    store = backend.open();
  });
  afterAll(() => backend.cleanup());

  it('put then get returns the exact bytes, including an empty and a one-byte object', async () => {
    const body = pattern(100_003);
    await store.put('a/exact.bin', body);
    await store.put('a/empty.bin', new Uint8Array(0));
    await store.put('a/one.bin', new Uint8Array([0xfe]));
    expect(sha(await store.get('a/exact.bin'))).toBe(sha(body));
    expect(await store.get('a/empty.bin')).toEqual(new Uint8Array(0));
    expect(await store.get('a/one.bin')).toEqual(new Uint8Array([0xfe]));
    expect(await store.head('a/exact.bin')).toMatchObject({ size: 100_003 });
    expect((await store.head('a/exact.bin'))!.lastModified).toBeInstanceOf(Date);
  });

  it('a ranged get returns exactly the range and downloads only its bytes', async () => {
    const body = pattern(3000, 7);
    await store.put('r/obj', body);
    const before = { ...store.stats };
    const got = await store.get('r/obj', { offset: 1234, length: 567 });
    expect(got).toEqual(body.slice(1234, 1801));
    expect(store.stats.bytesIn - before.bytesIn).toBe(567);
    expect(store.stats.requests - before.requests).toBe(1);
    expect(await store.get('r/obj', { offset: 2999, length: 1 })).toEqual(new Uint8Array([body[2999]]));
    expect(await store.get('r/obj', { offset: 3000, length: 0 })).toEqual(new Uint8Array(0));
  });

  it('a range past the end is STORE_RANGE_INVALID, whether it starts inside or outside the object', async () => {
    await store.put('r/short', pattern(100));
    await expect(store.get('r/short', { offset: 90, length: 11 })).rejects.toMatchObject({ code: 'STORE_RANGE_INVALID' });
    await expect(store.get('r/short', { offset: 100, length: 1 })).rejects.toMatchObject({ code: 'STORE_RANGE_INVALID' });
    await expect(store.get('r/short', { offset: -1, length: 1 })).rejects.toMatchObject({ code: 'STORE_RANGE_INVALID' });
  });

  it('a missing key is NotFoundError naming key and store; head gives null', async () => {
    const err = await store.get('no/such/key').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: 'STORE_NOT_FOUND', details: { key: 'no/such/key', store: store.url } });
    expect((err as Error).message).toBe(`no object no/such/key in store ${store.url}`);
    await expect(store.get('no/such/key', { offset: 0, length: 4 })).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
    await expect(store.get('no/such/key', { offset: 0, length: 0 })).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
    expect(await store.head('no/such/key')).toBeNull();
  });

  it('createExclusive: first "created", second "exists", original bytes intact', async () => {
    expect(await store.createExclusive('x/chunks/00000000.json', bytes('{"first":true}'))).toBe('created');
    expect(await store.createExclusive('x/chunks/00000000.json', bytes('{"second":true}'))).toBe('exists');
    expect(text(await store.get('x/chunks/00000000.json'))).toBe('{"first":true}');
  });

  it('16 concurrent createExclusive of one key: one "created", 15 "exists", the winner\'s bytes stored', async () => {
    const bodies = Array.from({ length: 16 }, (_, i) => bytes(`{"attempt":${i},"pad":"${'x'.repeat(200 * i)}"}`));
    // separate store objects, as separate processes would have
    const stores = bodies.map(() => backend.open());
    const outcomes = await Promise.all(bodies.map((b, i) => stores[i].createExclusive('race/chunks/00000001.json', b)));
    const winners = outcomes.flatMap((o, i) => (o === 'created' ? [i] : []));
    expect(winners).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'exists')).toHaveLength(15);
    expect(text(await store.get('race/chunks/00000001.json'))).toBe(text(bodies[winners[0]]));
  });

  it('list returns the keys under a string prefix, sorted by bytes', async () => {
    const keys = ['l/runs/b/z', 'l/runs/a/chunks/00000010.json', 'l/runs/ab/y', 'l/runs/a/units/head/00000000-x.safetensors', 'l/runs/a/chunks/00000002.json', 'l/runs/a/run.json', 'l/runs/a/Z', 'l/runs/a/é'];
    for (const k of keys) await store.put(k, bytes(k));
    expect(await store.list('l/runs/a/')).toEqual([
      'l/runs/a/Z',
      'l/runs/a/chunks/00000002.json',
      'l/runs/a/chunks/00000010.json',
      'l/runs/a/run.json',
      'l/runs/a/units/head/00000000-x.safetensors',
      'l/runs/a/é',
    ]);
    expect(await store.list('l/runs/a')).toEqual(expect.arrayContaining(['l/runs/ab/y']));
    expect(await store.list('l/runs/a')).toHaveLength(7);
    expect(await store.list('l/runs/a/chunks/0000001')).toEqual(['l/runs/a/chunks/00000010.json']);
    expect(await store.list('l/nothing/')).toEqual([]);
  });

  it('delete removes the object and is idempotent', async () => {
    await store.put('d/k', bytes('v'));
    await store.delete('d/k');
    expect(await store.head('d/k')).toBeNull();
    await expect(store.get('d/k')).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
    await store.delete('d/k');
    await store.delete('d/never-existed');
    expect(await store.list('d/')).toEqual([]);
  });

  it('an object of more than 3 parts round-trips, whole and by ranges across part boundaries', async () => {
    const body = pattern(17 * MiB + 123, 99);
    const before = { ...store.stats };
    await store.put('big/obj.bin', body);
    expect(store.stats.bytesOut - before.bytesOut).toBe(body.length);
    if (backend.s3) {
      // create + 4 parts of 5 MiB (the last 2 MiB + 123) + complete
      expect(store.stats.requests - before.requests).toBe(6);
    }
    expect(await store.head('big/obj.bin')).toMatchObject({ size: body.length });
    const mid = { ...store.stats };
    const got = await store.get('big/obj.bin');
    expect(sha(got)).toBe(sha(body));
    expect(store.stats.bytesIn - mid.bytesIn).toBe(body.length);
    if (backend.s3) expect(store.stats.requests - mid.requests).toBe(4);
    const range = { offset: 5 * MiB - 17, length: 11 * MiB + 40 };
    const r0 = { ...store.stats };
    expect(same(await store.get('big/obj.bin', range), body.subarray(range.offset, range.offset + range.length))).toBe(true);
    expect(store.stats.bytesIn - r0.bytesIn).toBe(range.length);
    if (backend.s3) expect(store.stats.requests - r0.requests).toBe(3);
  });

  it('putStream: 17 MiB in uneven chunks from one reused buffer round-trips exactly, invisible until close', async () => {
    const body = pattern(17 * MiB + 5, 41);
    const sink = store.putStream('stream/big.bin');
    const before = { ...store.stats };
    const buf = new Uint8Array(3 * MiB);
    let writes = 0;
    for (let at = 0; at < body.length; writes++) {
      const n = Math.min(body.length - at, (1 + (writes % 3)) * MiB - 7);
      buf.set(body.subarray(at, at + n));
      await sink.write(buf.subarray(0, n));
      buf.fill(0xcd); // the sink must have copied what it keeps
      at += n;
    }
    expect(await backend.open().head('stream/big.bin')).toBeNull();
    await sink.close();
    expect(store.stats.bytesOut - before.bytesOut).toBe(body.length);
    if (backend.s3) expect(store.stats.requests - before.requests).toBe(6); // create + 4 parts + complete
    expect(await store.head('stream/big.bin')).toMatchObject({ size: body.length });
    expect(sha(await store.get('stream/big.bin'))).toBe(sha(body));
  });

  it('putStream: an object within one part, exactly one part, and an empty one are stored whole', async () => {
    const part = backend.s3 ? 5 * MiB : 1000;
    for (const [key, body] of [['stream/small.bin', pattern(1000, 3)], ['stream/one-part.bin', pattern(part, 4)], ['stream/empty.bin', new Uint8Array(0)]] as const) {
      const sink = store.putStream(key);
      const before = { ...store.stats };
      for (let at = 0; at < body.length; at += 700_000) await sink.write(body.subarray(at, at + 700_000));
      await sink.close();
      if (backend.s3) expect(store.stats.requests - before.requests, key).toBe(1); // a single PUT
      expect(same(await store.get(key), body), key).toBe(true);
    }
  });

  it('putStream: abort leaves no new object (an older one at the key stays) and the stream refuses further use', async () => {
    await store.put('stream/kept.bin', pattern(100, 6));
    const sink = store.putStream('stream/kept.bin');
    await sink.write(pattern(12 * MiB, 7));
    await sink.abort();
    await sink.abort(); // idempotent
    expect(same(await store.get('stream/kept.bin'), pattern(100, 6))).toBe(true);
    const fresh = store.putStream('stream/never.bin');
    await fresh.write(pattern(6 * MiB, 8));
    await fresh.abort();
    expect(await store.head('stream/never.bin')).toBeNull();
    expect((await store.list('stream/')).filter((k) => k.startsWith('stream/kept') || k.startsWith('stream/never'))).toEqual(['stream/kept.bin']);
    await expect(fresh.write(bytes('x'))).rejects.toMatchObject({ code: 'STORE_STREAM_CLOSED' });
    await expect(fresh.close()).rejects.toMatchObject({ code: 'STORE_STREAM_CLOSED' });
  });

  it('sweep removes what an abandoned upload left (temp file, incomplete multipart upload) once it is older than the cutoff, and no object', async () => {
    await store.put('sweep/kept.bin', pattern(10, 1));
    // a process killed mid-upload: the stream is never closed or aborted
    const sink = store.putStream('sweep/crashed.bin');
    await sink.write(pattern(12 * MiB, 9));
    const what = backend.s3 ? 'incomplete multipart upload' : 'temp file';
    const past = new Date(Date.now() - 3_600_000);
    expect(await store.sweep('sweep/', past)).toEqual([]);
    // the upload is created in the background as the first part fills
    let swept: string[] = [];
    for (let i = 0; i < 50 && swept.length === 0; i++) {
      swept = await store.sweep('sweep/', new Date(Date.now() + 60_000));
      if (swept.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(swept).toHaveLength(1);
    expect(swept[0]).toMatch(new RegExp(`^sweep/${backend.s3 ? 'crashed\\.bin' : '\\.lisa-tmp-[0-9a-f]{16}'} \\(${what}`));
    expect(await store.sweep('sweep/', new Date(Date.now() + 60_000))).toEqual([]);
    expect(await store.list('sweep/')).toEqual(['sweep/kept.bin']);
    await sink.abort();
  });

  it('get returns fresh bytes after the object is overwritten behind our back', async () => {
    const reader = backend.open();
    const writer = backend.open();
    await writer.put('o/unit.safetensors', pattern(1000, 1));
    expect(await reader.get('o/unit.safetensors')).toEqual(pattern(1000, 1));
    await writer.put('o/unit.safetensors', pattern(777, 2));
    expect(await reader.get('o/unit.safetensors')).toEqual(pattern(777, 2));
    expect(await reader.head('o/unit.safetensors')).toMatchObject({ size: 777 });
  });

  it('storeSource reads ranges of an object with its size from head()', async () => {
    const body = pattern(4096, 5);
    await store.put('s/model.safetensors', body);
    const src = storeSource(store, 's/model.safetensors');
    expect(src.name).toBe(`${store.url}/s/model.safetensors`);
    expect(await src.size()).toBe(4096);
    expect(await src.read(8, 100)).toEqual(body.slice(8, 108));
    await expect(storeSource(store, 's/missing').size()).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
  });

  it('rejects keys that are empty, absolute or have empty/./.. segments', async () => {
    for (const key of ['', '/abs', 'a/../b', 'a//b', './a', 'a/']) {
      await expect(store.put(key, bytes('x')), key).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
      await expect(store.get(key), key).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
    }
    await expect(store.list('../')).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
  });
});

describe('FsStore specifics', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lisa-fsstore-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('leaves no temp files behind and keeps keys as plain files under the root', async () => {
    const store = new FsStore(dir);
    await store.put('runs/r/units/layers.0/00000000-a.safetensors', pattern(10));
    await store.createExclusive('runs/r/chunks/00000000.json', bytes('{}'));
    await store.createExclusive('runs/r/chunks/00000000.json', bytes('{"x":1}'));
    expect(await readdir(join(dir, 'runs/r/chunks'))).toEqual(['00000000.json']);
    expect(await readdir(join(dir, 'runs/r/units/layers.0'))).toEqual(['00000000-a.safetensors']);
    expect(store.url).toBe(`file://${dir}`);
  });

  it('does not list or serve half-written temp files (a crash mid-write leaves only those)', async () => {
    const store = new FsStore(dir);
    const { writeFile, mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'crash'), { recursive: true });
    await writeFile(join(dir, 'crash', '.lisa-tmp-0123456789abcdef'), '{"trunc');
    expect(await store.list('crash/')).toEqual([]);
    await expect(store.get('crash/.lisa-tmp-0123456789abcdef')).rejects.toMatchObject({ code: 'STORE_KEY_INVALID' });
    expect(await store.createExclusive('crash/00000000.json', bytes('{}'))).toBe('created');
  });

  it('putStream writes a temp file beside the key, renames it at close and removes it on abort', async () => {
    const store = new FsStore(dir);
    const sink = store.putStream('ps/a/obj.bin');
    await sink.write(pattern(100, 1));
    const during = await readdir(join(dir, 'ps/a'));
    expect(during).toHaveLength(1);
    expect(during[0]).toMatch(/^\.lisa-tmp-[0-9a-f]{16}$/);
    await sink.close();
    expect(await readdir(join(dir, 'ps/a'))).toEqual(['obj.bin']);
    const dropped = store.putStream('ps/a/other.bin');
    await dropped.write(pattern(100, 2));
    await dropped.abort();
    expect(await readdir(join(dir, 'ps/a'))).toEqual(['obj.bin']);
  });

  it('a key naming a directory is not an object', async () => {
    const store = new FsStore(dir);
    await store.put('dirs/a/b', bytes('b'));
    expect(await store.head('dirs/a')).toBeNull();
    await expect(store.get('dirs/a')).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
    await expect(store.get('dirs/a/b/c')).rejects.toMatchObject({ code: 'STORE_NOT_FOUND' });
  });
});
