/**
 * The one seeded PRNG of lisa-fn (layer sampling, data shuffling, held-out picks, DARE's drops,
 * random test weights).
 *
 * Every random stream is derived from (seed, stream name, index) by a pure function, so there is
 * no global state: a retried chunk re-derives the same layers, a resumed run the same epoch order.
 * Both pieces are small, published algorithms so the streams can be reproduced outside this code
 * (e.g. Python: `mmh3.hash(b'lisa.schedule' + struct.pack('<I', period), seed, signed=False)`):
 *   - seed derivation: MurmurHash3 x86_32 over utf8(stream) ++ uint32le(index), seeded with `seed`;
 *   - generator: mulberry32 (Tommy Ettinger), 32-bit state, period 2^32.
 */
import { LisaError } from '../errors.ts';

export class RngError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('RNG_INVALID', message, details);
  }
}

export interface Rng {
  /** Next 32-bit unsigned integer. */
  nextUint32(): number;
  /** Uniform float in [0, 1) with 32 random bits. */
  next(): number;
  /** Uniform integer in [0, n), unbiased (rejection sampling), for 1 <= n <= 2^32. */
  int(n: number): number;
}

const UINT32 = 2 ** 32;

/** Throws unless x is an integer in [0, 2^32): seeds and indices are hashed as uint32 words. */
export function checkUint32(x: number, what: string): number {
  if (!Number.isInteger(x) || x < 0 || x >= UINT32) {
    throw new RngError(`${what} must be an integer in [0, 2^32), got ${x}`, { [what]: x });
  }
  return x;
}

export function murmur3_32(bytes: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed >>> 0;
  const nBlocks = bytes.length >>> 2;
  for (let i = 0; i < nBlocks; i++) {
    const o = i * 4;
    let k = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = nBlocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    for (let i = rest - 1; i >= 0; i--) k = (k << 8) | bytes[tail + i];
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const utf8 = new TextEncoder();

/** The uint32 seed of stream `stream` at `index` under the user's `seed`. */
export function streamSeed(seed: number, stream: string, index: number): number {
  checkUint32(seed, 'seed');
  checkUint32(index, 'index');
  const name = utf8.encode(stream);
  const bytes = new Uint8Array(name.length + 4);
  bytes.set(name);
  new DataView(bytes.buffer).setUint32(name.length, index, true);
  return murmur3_32(bytes, seed);
}

export function mulberry32(seed: number): Rng {
  let a = checkUint32(seed, 'seed') | 0;
  const nextUint32 = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    nextUint32,
    next: () => nextUint32() / UINT32,
    int(n: number): number {
      if (!Number.isInteger(n) || n < 1 || n > UINT32) throw new RngError(`int(n) needs an integer 1 <= n <= 2^32, got ${n}`);
      // Values at or above the largest multiple of n below 2^32 would favour small results.
      const limit = UINT32 - (UINT32 % n);
      for (;;) {
        const x = nextUint32();
        if (x < limit) return x % n;
      }
    },
  };
}

/** Generator for stream `stream` at `index`: the only way modules should get randomness. */
export function rngFor(seed: number, stream: string, index: number): Rng {
  return mulberry32(streamSeed(seed, stream, index));
}

/** Fisher–Yates (Durstenfeld) permutation of 0..n-1; i runs downwards, j = rng.int(i + 1). */
export function permutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
