import { createHash } from 'node:crypto';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBaseDir } from '../../core/models/load.ts';
import { readHeader } from '../../core/tensors/safetensors.ts';
import { fileSource } from '../../core/tensors/source.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { openStore } from '../../core/store/open.ts';
import { createSources } from '../../core/train/sources.ts';
import { s3TestUrl } from '../store/s3-env.ts';
import { addCommit, dirFiles, type FakeHub, startFakeHub } from './fake-hub.ts';
import { bytesOf, smallLlama, tempDir, writeBase } from './harness.ts';

let hub: FakeHub;
let dir1: string;
let dir2: string;
let sha1: string;
let sha2: string;
/** bytes a remote load of dir's model.safetensors moves: every byte once, and the lookup's byte */
let fullLoad: (dir: string) => Promise<number>;

const hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

function hubSources(cacheDir: string) {
  const logs: string[] = [];
  const sources = createSources((url) => openStore(url), { env: { HF_ENDPOINT: hub.url }, cacheDir, log: (m) => logs.push(m) });
  return { sources, logs };
}

beforeAll(async () => {
  hub = await startFakeHub();
  dir1 = await writeBase(smallLlama, 1);
  dir2 = await writeBase(smallLlama, 2);
  sha1 = (await loadBaseDir(dir1)).sha256;
  sha2 = (await loadBaseDir(dir2)).sha256;
  fullLoad = async (dir) => {
    const file = join(dir, 'model.safetensors');
    return (await fileSource(file).size()) + 1;
  };
});

afterAll(async () => {
  await hub?.close();
});

describe('the disk cache of remote bases', () => {
  it('keeps the files a remote load read; the next process loads them with one lookup', async () => {
    addCommit(hub, 'org/a', 'main', await dirFiles(dir2));
    const cacheDir = await tempDir('cache');
    const first = hubSources(cacheDir);
    hub.resetCounts();
    const a = await first.sources.loadBase('hf://org/a');
    expect(a.sha256).toBe(sha2);
    expect(hub.bytesServed('model.safetensors')).toBe(await fullLoad(dir2));
    expect(first.logs).toEqual([]);

    // what was read, byte for byte (generation_config.json is not read by a load)
    const entry = join(cacheDir, sha2);
    expect((await readdir(entry)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.bin']);
    for (const name of await readdir(entry)) expect(hex(await readFile(join(entry, name))), name).toBe(hex(await readFile(join(dir2, name))));
    const weights = await readFile(join(dir2, 'model.safetensors'));
    expect(JSON.parse(await readFile(join(cacheDir, 'refs', `${hex('hf://org/a')}.json`), 'utf8'))).toEqual({
      ref: 'hf://org/a',
      sha256: sha2,
      files: { 'model.safetensors': { size: weights.length, etag: `"${hex(weights)}"` } },
    });
    expect((await readdir(cacheDir)).sort()).toEqual([sha2, 'refs']);

    hub.resetCounts();
    const second = hubSources(cacheDir);
    const b = await second.sources.loadBase('hf://org/a');
    expect(b.sha256).toBe(sha2);
    expect(b.dir).toBe('hf://org/a');
    for (const [name, w] of a.weights) expect(bytesOf(b.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
    expect(b.tokenizer.encode('Once upon a time')).toEqual(a.tokenizer.encode('Once upon a time'));
    expect(hub.bytesServed('model.safetensors')).toBe(1);
    expect(hub.bytesServed('config.json') + hub.bytesServed('tokenizer.bin')).toBe(0);
    expect(hub.requests.map((r) => `${r.method} ${r.path} ${r.range}`)).toEqual([
      'GET /org/a/resolve/main/model.safetensors bytes=0-0',
      `GET /cdn/${hex(weights)} bytes=0-0`,
    ]);
    expect(second.logs).toEqual([]);
  });

  it('loads again when the remote weights changed', async () => {
    addCommit(hub, 'org/b', 'main', await dirFiles(dir2));
    const cacheDir = await tempDir('cache');
    expect((await hubSources(cacheDir).sources.loadBase('hf://org/b')).sha256).toBe(sha2);
    addCommit(hub, 'org/b', 'main', await dirFiles(dir1));
    hub.resetCounts();
    const changed = hubSources(cacheDir);
    expect((await changed.sources.loadBase('hf://org/b')).sha256).toBe(sha1);
    const [w1, w2] = [await readFile(join(dir1, 'model.safetensors')), await readFile(join(dir2, 'model.safetensors'))];
    expect(changed.logs).toEqual([`base cache: hf://org/b/model.safetensors changed ("${hex(w2)}", ${w2.length} bytes -> "${hex(w1)}", ${w1.length} bytes); loading it again`]);
    // the load reuses the lookup's answer
    expect(hub.bytesServed('model.safetensors')).toBe(await fullLoad(dir1));
    expect((await readdir(cacheDir)).sort()).toEqual([sha1, sha2, 'refs'].sort());
    hub.resetCounts();
    expect((await hubSources(cacheDir).sources.loadBase('hf://org/b')).sha256).toBe(sha1);
    expect(hub.bytesServed('model.safetensors')).toBe(1);
  });

  it('discards a damaged entry and fetches the base again', async () => {
    addCommit(hub, 'org/c', 'main', await dirFiles(dir2));
    const cacheDir = await tempDir('cache');
    await hubSources(cacheDir).sources.loadBase('hf://org/c');
    const file = join(cacheDir, sha2, 'model.safetensors');
    const good = await readFile(file);
    const bad = Buffer.from(good);
    bad[bad.length - 3] ^= 0x40; // inside the last tensor: the header stays valid, the sha256 does not
    await writeFile(file, bad);

    hub.resetCounts();
    const flipped = hubSources(cacheDir);
    const base = await flipped.sources.loadBase('hf://org/c');
    expect(base.sha256).toBe(sha2);
    expect(flipped.logs).toEqual([
      `base cache: ${join(cacheDir, sha2)} holds weights with sha256 ${hex(bad)}, not ${sha2}; discarding it and loading hf://org/c again`,
    ]);
    expect(hub.bytesServed('model.safetensors')).toBe(await fullLoad(dir2));
    expect(hex(await readFile(file))).toBe(sha2);

    await truncate(file, 100);
    const truncated = hubSources(cacheDir);
    expect((await truncated.sources.loadBase('hf://org/c')).sha256).toBe(sha2);
    expect(truncated.logs).toHaveLength(1);
    const { headerBytes } = await readHeader(fileSource(join(dir2, 'model.safetensors')));
    expect(truncated.logs[0]).toBe(
      `base cache: ${join(cacheDir, sha2)} is unreadable (${file}: header length ${headerBytes} runs past the end of the 100-byte file); discarding it and loading hf://org/c again`,
    );
    expect(hex(await readFile(file))).toBe(sha2);
    expect((await readdir(cacheDir)).sort()).toEqual([sha2, 'refs']);
  });

  it('still loads when the cache cannot be written', async () => {
    addCommit(hub, 'org/d', 'main', await dirFiles(dir1));
    const notADir = join(await tempDir('cache'), 'file');
    await writeFile(notADir, 'x');
    const s = hubSources(notADir);
    expect((await s.sources.loadBase('hf://org/d')).sha256).toBe(sha1);
    expect(s.logs).toHaveLength(2);
    expect(s.logs[0]).toMatch(new RegExp(`^base cache: ignoring the record of hf://org/d: ENOTDIR: not a directory, open '${notADir}/refs/[0-9a-f]{64}\\.json'$`));
    expect(s.logs[1]).toMatch(new RegExp(`^base cache: could not keep hf://org/d in ${notADir}: ENOTDIR: not a directory, mkdir '${notADir}/\\.tmp-[0-9a-f]{12}'$`));
  });

  it('does not cache a load that failed', async () => {
    addCommit(hub, 'org/e', 'main', new Map([...(await dirFiles(dir1))].filter(([n]) => n !== 'tokenizer.bin')));
    const cacheDir = await tempDir('cache');
    const err = await hubSources(cacheDir).sources.loadBase('hf://org/e').catch((e) => e);
    expect(err.code).toBe('TOKENIZER_NOT_FOUND');
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('two processes filling the same entry at once both load, one entry stays', async () => {
    addCommit(hub, 'org/f', 'main', await dirFiles(dir1));
    addCommit(hub, 'org/g', 'main', await dirFiles(dir1));
    const cacheDir = await tempDir('cache');
    const [x, y] = await Promise.all([hubSources(cacheDir).sources.loadBase('hf://org/f'), hubSources(cacheDir).sources.loadBase('hf://org/g')]);
    expect([x.sha256, y.sha256]).toEqual([sha1, sha1]);
    expect((await readdir(cacheDir)).sort()).toEqual([sha1, 'refs']);
    expect((await readdir(join(cacheDir, 'refs'))).sort()).toEqual([`${hex('hf://org/f')}.json`, `${hex('hf://org/g')}.json`].sort());
    hub.resetCounts();
    expect((await hubSources(cacheDir).sources.loadBase('hf://org/g')).sha256).toBe(sha1);
    expect(hub.bytesServed('model.safetensors')).toBe(1);
  });
});

const s3 = s3TestUrl('base-cache');
if (s3) {
  describe('the disk cache of s3:// bases', () => {
    it('a second load moves no bytes and makes one HEAD; a replaced object invalidates it', async () => {
      const root = openStore(s3, { env: process.env });
      for (const [name, bytes] of await dirFiles(dir2)) await root.put(`base/${name}`, bytes);
      const cacheDir = await tempDir('cache');
      const opened: ObjectStore[] = [];
      const sources = () =>
        createSources(
          (url) => {
            const store = openStore(url, { env: process.env });
            opened.push(store);
            return store;
          },
          { cacheDir },
        );
      const traffic = () => opened.reduce((t, s) => ({ bytesIn: t.bytesIn + s.stats.bytesIn, requests: t.requests + s.stats.requests }), { bytesIn: 0, requests: 0 });

      expect((await sources().loadBase(`${s3}/base`)).sha256).toBe(sha2);
      expect(traffic().bytesIn).toBeGreaterThan((await readFile(join(dir2, 'model.safetensors'))).length);
      opened.length = 0;
      expect((await sources().loadBase(`${s3}/base`)).sha256).toBe(sha2);
      expect(traffic()).toEqual({ bytesIn: 0, requests: 1 });

      await root.put('base/model.safetensors', new Uint8Array(await readFile(join(dir1, 'model.safetensors'))));
      opened.length = 0;
      expect((await sources().loadBase(`${s3}/base`)).sha256).toBe(sha1);
      expect(traffic().bytesIn).toBeGreaterThan((await readFile(join(dir1, 'model.safetensors'))).length);
    });
  });
}
