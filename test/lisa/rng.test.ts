import { describe, expect, it } from 'vitest';
import { murmur3_32, mulberry32, permutation, rngFor, streamSeed, RngError } from '../../core/lisa/rng.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('murmur3_32', () => {
  // Published MurmurHash3 x86_32 test vectors (covering every tail length).
  it.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['aaa', 0x9747b28c, 0x283e0130],
    ['aa', 0x9747b28c, 0x5d211726],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['abcd', 0x9747b28c, 0xf0478627],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
  ])('hash(%j, %i)', (text, seed, want) => {
    expect(murmur3_32(utf8(text), seed)).toBe(want);
  });

  it('hashes four zero bytes', () => {
    expect(murmur3_32(new Uint8Array(4), 0)).toBe(0x2362f9de);
  });
});

describe('mulberry32', () => {
  it('matches the reference implementation for seed 1', () => {
    const r = mulberry32(1);
    expect(r.next()).toBe(0.6270739405881613);
    expect(r.next()).toBe(0.002735721180215478);
  });

  it('int(n) stays in range and covers it uniformly', () => {
    const r = mulberry32(7);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[r.int(6)]++;
    // Expected 10,000 each; binomial sd ≈ 91, allow 5 sd.
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(460);
  });

  it('rejects bad seeds and ranges', () => {
    expect(() => mulberry32(-1)).toThrow(RngError);
    expect(() => mulberry32(2 ** 32)).toThrow('seed must be an integer in [0, 2^32), got 4294967296');
    expect(() => mulberry32(1).int(0)).toThrow('int(n) needs an integer 1 <= n <= 2^32, got 0');
  });
});

describe('streamSeed / rngFor', () => {
  it('is murmur3 of utf8(stream) ++ uint32le(index) seeded with seed', () => {
    const bytes = new Uint8Array([...utf8('abc'), 5, 0, 0, 0]);
    expect(streamSeed(9, 'abc', 5)).toBe(murmur3_32(bytes, 9));
  });

  it('separates streams, indices and seeds', () => {
    const seeds = new Set([streamSeed(1, 'a', 0), streamSeed(1, 'b', 0), streamSeed(1, 'a', 1), streamSeed(2, 'a', 0)]);
    expect(seeds.size).toBe(4);
  });

  it('is reproducible', () => {
    const a = rngFor(3, 's', 4);
    const b = rngFor(3, 's', 4);
    for (let i = 0; i < 10; i++) expect(a.nextUint32()).toBe(b.nextUint32());
  });
});

describe('permutation', () => {
  it('returns each index exactly once', () => {
    const p = permutation(1000, mulberry32(11));
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('is uniform over the 6 permutations of 3 elements', () => {
    const r = mulberry32(5);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60_000; i++) {
      const k = permutation(3, r).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const c of counts.values()) expect(Math.abs(c - 10_000)).toBeLessThan(460);
  });

  it('handles 0 and 1 elements', () => {
    expect(permutation(0, mulberry32(1))).toEqual([]);
    expect(permutation(1, mulberry32(1))).toEqual([0]);
  });
});
