/**
 * Safetensors dtypes and float conversions. Everything runs on typed arrays and bit operations,
 * one pass per tensor, no per-element allocation: tensors are many megabytes.
 * File bytes are little-endian; `toHostOrder`/`toFileOrder` make that explicit so the code also
 * holds on a big-endian host.
 */

export type Dtype = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'I16' | 'I32' | 'I64' | 'BOOL';
export type FloatDtype = 'F32' | 'F16' | 'BF16';

const SIZES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, I16: 2, I32: 4, I64: 8, BOOL: 1 };

export const DTYPES = Object.keys(SIZES) as readonly Dtype[];

export function isDtype(x: unknown): x is Dtype {
  return typeof x === 'string' && Object.hasOwn(SIZES, x);
}

export function isFloatDtype(d: Dtype): d is FloatDtype {
  return d === 'F32' || d === 'F16' || d === 'BF16';
}

export function dtypeSize(d: Dtype): number {
  return SIZES[d];
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of every `width`-byte element, in place. */
export function byteSwap(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/**
 * File-order bytes -> bytes a `width`-byte typed array can view in host order. Copies only when it
 * must: a typed-array view needs an offset aligned to its element size (a tensor inside a file
 * read can start at any byte), and a big-endian host needs swapped bytes.
 */
export function toHostOrder(bytes: Uint8Array, width: number): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  const copy = bytes.slice();
  byteSwap(copy, width);
  return copy;
}

/** Typed array -> its little-endian bytes (a view on little-endian hosts). */
export function toFileOrder(x: Float32Array | Int32Array | Uint16Array): Uint8Array {
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (HOST_LITTLE_ENDIAN) return bytes;
  const copy = bytes.slice();
  byteSwap(copy, x.BYTES_PER_ELEMENT);
  return copy;
}

function bitsOf(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** F32 bits -> BF16 bits, rounding to nearest even. */
function bf16Of(u: number): number {
  // Truncation could clear every mantissa bit and turn NaN into Inf; force the quiet bit.
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  // Add just under half an ulp, plus one when the kept lsb is odd. A carry into the exponent is
  // correct, including max-finite -> Inf (same exponent range).
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/** Where the even and odd element of a pair land in a 32-bit word of a Uint16Array. */
const EVEN_SHIFT = HOST_LITTLE_ENDIAN ? 0 : 16;
const ODD_SHIFT = 16 - EVEN_SHIFT;

/**
 * F32 -> BF16 bits. `out` (at least x.length elements) lets a caller reuse one buffer across
 * tensors; the result is a view of its first x.length elements.
 */
export function f32ToBf16(x: Float32Array, out: Uint16Array = new Uint16Array(x.length)): Uint16Array {
  const bits = bitsOf(x);
  const n = bits.length;
  let i = 0;
  if (out.byteOffset % 4 === 0) {
    // Two results per 32-bit store, about 1.6x the speed of 16-bit stores. bf16Of is written out
    // here because V8 does not inline it into this loop (measured: the call costs 30%).
    const pairs = new Uint32Array(out.buffer, out.byteOffset, n >>> 1);
    for (let p = 0; p < pairs.length; p++, i += 2) {
      const u = bits[i];
      const v = bits[i + 1];
      const a = (u & 0x7fffffff) > 0x7f800000 ? (u >>> 16) | 0x0040 : (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
      const b = (v & 0x7fffffff) > 0x7f800000 ? (v >>> 16) | 0x0040 : (v + 0x7fff + ((v >>> 16) & 1)) >>> 16;
      pairs[p] = (a << EVEN_SHIFT) | (b << ODD_SHIFT);
    }
  }
  for (; i < n; i++) out[i] = bf16Of(bits[i]);
  return out.length === n ? out : out.subarray(0, n);
}

export function bf16ToF32(u: Uint16Array): Float32Array {
  const out = new Float32Array(u.length);
  const bits = bitsOf(out);
  for (let i = 0; i < u.length; i++) bits[i] = u[i] << 16;
  return out;
}

/** F32 -> F16 bits; `out` as for f32ToBf16. */
export function f32ToF16(x: Float32Array, out: Uint16Array = new Uint16Array(x.length)): Uint16Array {
  const bits = bitsOf(x);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    const sign = (u >>> 16) & 0x8000;
    const abs = u & 0x7fffffff;
    if (abs > 0x7f800000) {
      out[i] = sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN, quiet bit set, top payload kept
    } else if (abs >= 0x477ff000) {
      out[i] = sign | 0x7c00; // >= 65520, halfway past max finite 65504: ties-to-even gives Inf
    } else if (abs >= 0x38800000) {
      // Normal in F16 (>= 2^-14): rebias the exponent (127 -> 15), then round off 13 bits.
      const m = abs - 0x38000000;
      out[i] = sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
    } else if (abs >= 0x33000000) {
      // Subnormal in F16 (>= 2^-25, half the smallest subnormal): count units of 2^-24.
      // The significand with its implicit bit is mant * 2^(e - 150); in units of 2^-24 that is
      // mant >> (126 - e). Rounding up from the largest subnormal carries into the exponent field.
      const shift = 126 - (abs >>> 23);
      const mant = (abs & 0x7fffff) | 0x800000;
      const half = 1 << (shift - 1);
      const rest = mant & ((1 << shift) - 1);
      let q = mant >>> shift;
      if (rest > half || (rest === half && (q & 1) === 1)) q++;
      out[i] = sign | q;
    } else {
      out[i] = sign; // underflows to signed zero
    }
  }
  return out.length === bits.length ? out : out.subarray(0, bits.length);
}

export function f16ToF32(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = bitsOf(out);
  for (let i = 0; i < h.length; i++) {
    const v = h[i];
    const sign = (v & 0x8000) << 16;
    const exp = (v >>> 10) & 0x1f;
    const mant = v & 0x3ff;
    if (exp === 0x1f) bits[i] = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits[i] = sign | ((exp + 112) << 23) | (mant << 13);
    else if (mant === 0) bits[i] = sign;
    else out[i] = (sign ? -mant : mant) * 2 ** -24; // subnormal: exact in F32
  }
  return out;
}

/** Little-endian F32/F16/BF16 bytes -> F32 values. */
export function decodeFloats(bytes: Uint8Array, dtype: FloatDtype): Float32Array {
  const width = dtypeSize(dtype);
  const host = toHostOrder(bytes, width);
  if (dtype === 'F32') return new Float32Array(host.buffer, host.byteOffset, host.byteLength / 4);
  const halves = new Uint16Array(host.buffer, host.byteOffset, host.byteLength / 2);
  return dtype === 'F16' ? f16ToF32(halves) : bf16ToF32(halves);
}

/**
 * F32 values -> little-endian bytes of `dtype` (round to nearest even for F16/BF16). F16/BF16 go
 * into `out` when given (at least x.length elements), so a writer can convert into one reused
 * buffer instead of allocating per tensor.
 */
export function encodeFloats(x: Float32Array, dtype: FloatDtype, out?: Uint16Array): Uint8Array {
  if (dtype === 'F32') return toFileOrder(x);
  return toFileOrder(dtype === 'F16' ? f32ToF16(x, out) : f32ToBf16(x, out));
}
