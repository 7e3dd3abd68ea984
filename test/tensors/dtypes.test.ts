import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  bf16ToF32,
  byteSwap,
  decodeFloats,
  encodeFloats,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  toHostOrder,
} from '../../core/tensors/dtypes.ts';

// Independent slow references: decode with Math, encode by searching the table of all
// representable values and comparing against exact (double) midpoints.
interface Format {
  name: string;
  mantBits: number;
  bias: number;
  expBits: number;
  toF32: (u: Uint16Array) => Float32Array;
  fromF32: (x: Float32Array) => Uint16Array;
}
const F16: Format = { name: 'F16', mantBits: 10, bias: 15, expBits: 5, toF32: f16ToF32, fromF32: f32ToF16 };
const BF16: Format = { name: 'BF16', mantBits: 7, bias: 127, expBits: 8, toF32: bf16ToF32, fromF32: f32ToBf16 };

function refDecode(f: Format, h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> f.mantBits) & ((1 << f.expBits) - 1);
  const mant = h & ((1 << f.mantBits) - 1);
  if (exp === (1 << f.expBits) - 1) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * Math.pow(2, 1 - f.bias - f.mantBits);
  return sign * (1 + mant / (1 << f.mantBits)) * Math.pow(2, exp - f.bias);
}

const infBits = (f: Format) => ((1 << f.expBits) - 1) << f.mantBits;
const tables = new Map<Format, number[]>();
function positives(f: Format): number[] {
  let t = tables.get(f);
  if (!t) {
    t = [];
    for (let h = 0; h < infBits(f); h++) t.push(refDecode(f, h));
    tables.set(f, t);
  }
  return t;
}

function refEncode(f: Format, x: number): number | 'NaN' {
  if (Number.isNaN(x)) return 'NaN';
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const t = positives(f);
  // The value one ulp past max finite stands for Inf: rounding there means overflow.
  const max = t[t.length - 1];
  const beyond = max + (max - t[t.length - 2]);
  if (a >= beyond) return sign | infBits(f);
  let lo = 0;
  let hi = t.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (t[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (t[lo] === a) return sign | lo;
  const next = lo + 1 < t.length ? t[lo + 1] : beyond;
  const m = (t[lo] + next) / 2;
  if (a < m) return sign | lo;
  if (a > m) return sign | (lo + 1);
  return sign | (lo % 2 === 0 ? lo : lo + 1);
}

function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0];
}
function bitsOfF32(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}
function isNaNBits(f: Format, h: number): boolean {
  return (h & 0x7fff) > infBits(f);
}

function checkEncode(f: Format, inputs: number[]): void {
  const got = f.fromF32(new Float32Array(inputs));
  const bad: string[] = [];
  inputs.forEach((x, i) => {
    const want = refEncode(f, x);
    const ok = want === 'NaN' ? isNaNBits(f, got[i]) : got[i] === want;
    if (!ok && bad.length < 5) bad.push(`${x} (0x${bitsOfF32(x).toString(16)}): got 0x${got[i].toString(16)} want ${want === 'NaN' ? want : '0x' + want.toString(16)}`);
  });
  expect(bad).toEqual([]);
}

describe.each([F16, BF16])('$name', (f) => {
  it('decodes every bit pattern like the Math reference (exhaustive)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const got = f.toF32(all);
    const bad: number[] = [];
    for (let h = 0; h < 65536; h++) {
      const want = refDecode(f, h);
      const ok = Number.isNaN(want) ? Number.isNaN(got[h]) : Object.is(got[h], want);
      if (!ok) bad.push(h);
    }
    expect(bad).toEqual([]);
  });

  it('round-trips every non-NaN value exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f.fromF32(f.toF32(all));
    const bad = [...all].filter((h) => !isNaNBits(f, h) && back[h] !== h);
    expect(bad).toEqual([]);
  });

  it('rounds each value, midpoint and midpoint neighbour like the reference (exhaustive)', () => {
    const t = positives(f);
    const inputs: number[] = [];
    for (let h = 0; h < t.length; h++) {
      const next = h + 1 < t.length ? t[h + 1] : refDecode(f, h) + (t[h] - t[h - 1]);
      const m = (t[h] + next) / 2;
      const mb = bitsOfF32(m);
      expect(f32(mb)).toBe(m); // midpoints are exact in F32
      for (const x of [t[h], m, f32(mb + 1), mb > 0 ? f32(mb - 1) : 0]) inputs.push(x, -x);
    }
    checkEncode(f, inputs);
  });

  it('rounds random F32 bit patterns like the reference (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 64 }), (bits) => {
        checkEncode(f, bits.map(f32));
      }),
      { numRuns: 300 },
    );
  });
});

describe('named rounding cases', () => {
  const enc16 = (...xs: number[]) => [...f32ToF16(new Float32Array(xs))];
  const encB = (...xs: number[]) => [...f32ToBf16(new Float32Array(xs))];

  it('F16 ties go to even, down and up', () => {
    expect(enc16(1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11))).toEqual([0x3c00, 0x3c02, 0xbc00]);
    expect(enc16(1 + 2 ** -11 + 2 ** -20)).toEqual([0x3c01]); // just past the tie rounds up
  });

  it('BF16 ties go to even, down and up', () => {
    expect(encB(1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8))).toEqual([0x3f80, 0x3f82, 0xbf80]);
    expect(encB(f32(0x3f808001))).toEqual([0x3f81]);
  });

  it('F16 overflows to Inf from 65520, max finite stays', () => {
    expect(enc16(65504, 65519, 65520, -65520, 1e6, 3.4e38)).toEqual([0x7bff, 0x7bff, 0x7c00, 0xfc00, 0x7c00, 0x7c00]);
  });

  it('BF16 overflows to Inf at the tie above max finite, max finite stays', () => {
    const maxBf16 = (2 - 2 ** -7) * 2 ** 127;
    const tie = (2 - 2 ** -8) * 2 ** 127;
    expect(encB(maxBf16, f32(bitsOfF32(tie) - 1), tie, f32(0x7f7fffff), -tie)).toEqual([0x7f7f, 0x7f7f, 0x7f80, 0x7f80, 0xff80]);
  });

  it('F16 subnormals both ways', () => {
    expect(enc16(2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 3 * 2 ** -25, 1023 * 2 ** -24, 2 ** -14 - 2 ** -25, 2 ** -26, -(2 ** -24))).toEqual([
      0x0001, 0x0000, 0x0001, 0x0002, 0x03ff, 0x0400, 0x0000, 0x8001,
    ]);
    expect([...f16ToF32(new Uint16Array([0x0001, 0x03ff, 0x8200]))]).toEqual([2 ** -24, 1023 * 2 ** -24, -(2 ** -15)]);
  });

  it('BF16 subnormals both ways', () => {
    expect(encB(2 ** -133, 2 ** -134, 3 * 2 ** -134, f32(0x00008001), f32(0x00000001))).toEqual([0x0001, 0x0000, 0x0002, 0x0001, 0x0000]);
    expect([...bf16ToF32(new Uint16Array([0x0001, 0x007f]))]).toEqual([2 ** -133, 127 * 2 ** -133]);
  });

  it('NaN stays NaN even when its payload sits only in bits that are dropped', () => {
    // Built from bits: a NaN passing through a JS number may lose its payload.
    const nans = new Float32Array(new Uint32Array([0x7fc00000, 0x7f800001, 0xff800001, 0x7f801000]).buffer);
    for (const h of f32ToF16(nans)) expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
    for (const h of f32ToBf16(nans)) expect((h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0).toBe(true);
    expect(f32ToBf16(nans)[2] & 0x8000).toBe(0x8000);
    expect([...f16ToF32(new Uint16Array([0x7e00, 0xfc01]))].every(Number.isNaN)).toBe(true);
    expect([...bf16ToF32(new Uint16Array([0x7fc0, 0xff81]))].every(Number.isNaN)).toBe(true);
  });

  it('keeps -0 and +-Inf', () => {
    expect(enc16(-0, 0, Infinity, -Infinity)).toEqual([0x8000, 0x0000, 0x7c00, 0xfc00]);
    expect(encB(-0, 0, Infinity, -Infinity)).toEqual([0x8000, 0x0000, 0x7f80, 0xff80]);
    expect(Object.is(f16ToF32(new Uint16Array([0x8000]))[0], -0)).toBe(true);
    expect(Object.is(bf16ToF32(new Uint16Array([0x8000]))[0], -0)).toBe(true);
    expect([...f16ToF32(new Uint16Array([0x7c00, 0xfc00]))]).toEqual([Infinity, -Infinity]);
    expect([...bf16ToF32(new Uint16Array([0x7f80, 0xff80]))]).toEqual([Infinity, -Infinity]);
  });
});

describe('byte order and alignment', () => {
  it('converts into a caller\'s buffer, aligned or not, and returns a view of exactly the converted elements', () => {
    // bits that hit every branch: normal ties, NaN with a low payload, Inf, subnormal, -0
    const bits = new Uint32Array([0x3f808000, 0x3f818000, 0x7f800001, 0xff800000, 0x00008001, 0x80000000, 0x477ff000, 0x33000001, 0xc0490fdb]);
    const x = new Float32Array(bits.buffer);
    for (const [fn, name] of [[f32ToBf16, 'bf16'], [f32ToF16, 'f16']] as const) {
      const fresh = [...fn(x)];
      const buf = new Uint16Array(16).fill(0xaaaa);
      const aligned = fn(x, buf);
      expect([...aligned], name).toEqual(fresh);
      expect(aligned.buffer).toBe(buf.buffer);
      expect(buf[9]).toBe(0xaaaa); // nothing written past x.length
      const odd = fn(x, new Uint16Array(16).subarray(1)); // 2-byte offset: no 32-bit pair stores
      expect([...odd], name).toEqual(fresh);
      expect(odd.byteOffset).toBe(2);
    }
    expect([...encodeFloats(new Float32Array([1, -2]), 'BF16', new Uint16Array(4))]).toEqual([0x80, 0x3f, 0x00, 0xc0]);
  });

  it('encodes little-endian bytes', () => {
    const x = new Float32Array([1, -2]);
    expect([...encodeFloats(x, 'F32')]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    expect([...encodeFloats(x, 'F16')]).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect([...encodeFloats(x, 'BF16')]).toEqual([0x80, 0x3f, 0x00, 0xc0]);
  });

  it('decodes from an odd offset by copying into an aligned buffer', () => {
    const file = new Uint8Array([0xee, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    expect([...decodeFloats(file.subarray(1), 'F32')]).toEqual([1, -2]);
    expect([...decodeFloats(file.subarray(1, 5), 'BF16')]).toEqual([0, 1]);
    expect([...decodeFloats(new Uint8Array([0x7f, 0x00, 0x3c]).subarray(1), 'F16')]).toEqual([1]);
  });

  it('only copies when alignment requires it (little-endian host)', () => {
    const buf = new Uint8Array(12);
    const aligned = buf.subarray(4);
    expect(toHostOrder(aligned, 4)).toBe(aligned);
    const odd = buf.subarray(1, 9);
    const copy = toHostOrder(odd, 4);
    expect(copy).not.toBe(odd);
    expect(copy.byteOffset % 4).toBe(0);
  });

  it('byteSwap reverses each element', () => {
    const b = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    byteSwap(b, 4);
    expect([...b]).toEqual([4, 3, 2, 1, 8, 7, 6, 5]);
    byteSwap(b, 2);
    expect([...b]).toEqual([3, 4, 1, 2, 7, 8, 5, 6]);
  });
});
