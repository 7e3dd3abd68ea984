import { createHash } from 'node:crypto';
import { open, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDigestCache, workerHasher, type Hasher } from '../../core/tensors/hashing.ts';
import { tempDir } from '../merge/helpers.ts';

const MiB = 1 << 20;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** position-dependent bytes, so a slot hashed twice or out of order changes the digest */
const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed + (i >>> 12)) & 255);

let dir: string;
let cleanup: () => Promise<void>;
let hasher: Hasher;
beforeAll(async () => {
  ({ path: dir, cleanup } = await tempDir());
  hasher = workerHasher({ threads: 2, cache: null });
});
afterAll(async () => {
  await hasher.close();
  await cleanup();
});

describe('workerHasher streams', () => {
  it('hashes 17 MiB + 3 bytes (more than a thread\'s ring of 4 x 2 MiB slots) exactly, and is done with each chunk when update resolves', async () => {
    const body = pattern(17 * MiB + 3, 1);
    const expected = sha(body);
    const s = hasher.stream();
    // one reused buffer: overwritten right after each update, as the export reuses its conversion buffers
    const buf = new Uint8Array(5 * MiB);
    for (let at = 0; at < body.length; at += buf.length) {
      const piece = body.subarray(at, at + buf.length);
      buf.set(piece);
      await s.update(buf.subarray(0, piece.length));
      buf.fill(0xee);
    }
    expect(await s.digest()).toBe(expected);
  });

  it('keeps six interleaved streams apart, with empty and one-byte chunks', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => pattern(3 * MiB + i * 1001, i + 7));
    const digests = await Promise.all(
      bodies.map(async (body, i) => {
        const s = hasher.stream();
        await s.update(new Uint8Array(0));
        await s.update(body.subarray(0, 1));
        const step = 500_000 + i * 300_007;
        for (let at = 1; at < body.length; at += step) await s.update(body.subarray(at, at + step));
        return s.digest();
      }),
    );
    expect(digests).toEqual(bodies.map(sha));
  });

  it('an empty stream digests to the sha256 of nothing', async () => {
    expect(await hasher.stream().digest()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('fails updates and digests once the hasher is closed', async () => {
    const h = workerHasher({ threads: 1, cache: null });
    const s = h.stream();
    await s.update(new Uint8Array(10));
    await h.close();
    await expect(s.digest()).rejects.toThrow('hashing thread exited');
    await expect(s.update(new Uint8Array(10))).rejects.toThrow('hashing thread exited');
  });
});

describe('FileDigestCache', () => {
  it('serves an unchanged file from memory and hashes it again after an in-place rewrite or a rename over it', async () => {
    const path = join(dir, 'f.bin');
    await writeFile(path, pattern(1000, 1));
    const cache = new FileDigestCache({ minAgeMs: 0, now: () => Date.now() + 10_000 });
    const h = workerHasher({ threads: 1, cache });
    try {
      expect(await h.file(path)).toBe(sha(pattern(1000, 1)));
      expect(await h.file(path)).toBe(sha(pattern(1000, 1)));
      expect(cache.stats).toEqual({ hits: 1, misses: 1 });

      const fh = await open(path, 'r+'); // same size, same inode: only mtime/ctime tell
      await fh.write(new Uint8Array([0xff]), 0, 1, 500);
      await fh.close();
      const rewritten = pattern(1000, 1);
      rewritten[500] = 0xff;
      expect(await h.file(path)).toBe(sha(rewritten));
      expect(cache.stats).toEqual({ hits: 1, misses: 2 });

      await writeFile(join(dir, 'g.bin'), pattern(1000, 2));
      await rename(join(dir, 'g.bin'), path);
      expect(await h.file(path)).toBe(sha(pattern(1000, 2)));
      expect(await h.file(path)).toBe(sha(pattern(1000, 2)));
      expect(cache.stats).toEqual({ hits: 2, misses: 3 });
    } finally {
      await h.close();
    }
  });

  it('does not remember a file changed less than minAgeMs before its hash started (its stamps may not move on the next change)', async () => {
    const path = join(dir, 'fresh.bin');
    await writeFile(path, pattern(100, 3));
    const cache = new FileDigestCache(); // 1 s
    let hashes = 0;
    const hash = async () => (hashes++, 'x'.repeat(64));
    await cache.digest(path, hash);
    await cache.digest(path, hash);
    expect(hashes).toBe(2);
    expect(cache.stats).toEqual({ hits: 0, misses: 2 });
  });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const cache = new FileDigestCache({ minAgeMs: 0, maxEntries: 2, now: () => Date.now() + 10_000 });
    const paths = ['a', 'b', 'c'].map((n) => join(dir, `lru-${n}`));
    for (const p of paths) await writeFile(p, p);
    let hashes = 0;
    const hash = async () => (hashes++, 'x'.repeat(64));
    await cache.digest(paths[0], hash);
    await cache.digest(paths[1], hash);
    await cache.digest(paths[0], hash); // a is now the most recent
    await cache.digest(paths[2], hash); // drops b
    expect(hashes).toBe(3);
    await cache.digest(paths[0], hash);
    await cache.digest(paths[2], hash);
    expect(hashes).toBe(3);
    await cache.digest(paths[1], hash);
    expect(hashes).toBe(4);
  });

  it('a missing file is hashed (and fails there) every time, never remembered', async () => {
    const cache = new FileDigestCache({ minAgeMs: 0 });
    const h = workerHasher({ threads: 1, cache });
    try {
      await expect(h.file(join(dir, 'missing.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(h.file(join(dir, 'missing.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(cache.stats).toEqual({ hits: 0, misses: 2 });
    } finally {
      await h.close();
    }
  });
});
