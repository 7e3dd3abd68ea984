import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeSafetensors,
  readHeader,
  readTensorBytes,
  readTensorF32,
  writeSafetensors,
  type TensorEntry,
} from '../../core/tensors/safetensors.ts';
import { encodeFloats } from '../../core/tensors/dtypes.ts';
import { bufferSource, fileSink, fileSource, type ByteSink } from '../../core/tensors/source.ts';
import { countingSource } from './helpers.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lisa-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('exact encoding', () => {
  it('writes the spec layout byte for byte', async () => {
    const file = await encodeSafetensors([{ name: 'x', dtype: 'F16', shape: [2], data: new Float32Array([1, -2]) }]);
    const json = '{"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}'; // 54 bytes -> padded to 56
    expect(json.length).toBe(54);
    expect([...file.subarray(0, 8)]).toEqual([56, 0, 0, 0, 0, 0, 0, 0]);
    expect(text(file.subarray(8, 64))).toBe(json + '  ');
    expect([...file.subarray(64)]).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect(file.length).toBe(68);
  });

  it('puts metadata first and keeps the given tensor order, integer-like names included', async () => {
    const file = await encodeSafetensors(
      [
        { name: 'b', dtype: 'U8', shape: [1], data: new Uint8Array([7]) },
        { name: '10', dtype: 'U8', shape: [], data: new Uint8Array([8]) },
        { name: '2', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
      ],
      { k: 'v' },
    );
    const header = await readHeader(bufferSource(file));
    expect(text(file.subarray(8, 8 + header.headerBytes)).trimEnd()).toBe(
      '{"__metadata__":{"k":"v"},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
        '"10":{"dtype":"U8","shape":[],"data_offsets":[1,2]},"2":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}',
    );
    expect([...header.tensors.keys()]).toEqual(['b', '10', '2']);
  });
});

describe('round trip', () => {
  it('keeps every dtype exactly, laid out contiguously in the given order', async () => {
    const f32 = new Float32Array([1.5, -0, Infinity, -3.25e-38, 1e-45]);
    const halves = new Float32Array([1, -2, 0.5, 65504, -0]); // exact in F16; BF16 rounds 65504
    const i32 = new Int32Array([-2147483648, -1, 0, 2147483647]);
    const entries: TensorEntry[] = [
      { name: 'f32', dtype: 'F32', shape: [5], data: f32 },
      { name: 'f16', dtype: 'F16', shape: [5, 1], data: halves },
      { name: 'bf16', dtype: 'BF16', shape: [1, 5], data: halves },
      { name: 'i8', dtype: 'I8', shape: [3], data: new Uint8Array([0x80, 0xff, 0x7f]) },
      { name: 'u8', dtype: 'U8', shape: [2, 2], data: bytesOf(4, 1) },
      { name: 'i16', dtype: 'I16', shape: [3], data: bytesOf(6, 2) },
      { name: 'i32', dtype: 'I32', shape: [2, 2], data: i32 },
      { name: 'i64', dtype: 'I64', shape: [2], data: bytesOf(16, 3) },
      { name: 'bool', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
      { name: 'raw32', dtype: 'F32', shape: [1], data: new Uint8Array([0x00, 0x00, 0x80, 0x3f]) },
      { name: 'scalar', dtype: 'I32', shape: [], data: new Int32Array([-5]) },
      { name: 'empty', dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    ];
    const src = bufferSource(await encodeSafetensors(entries), 'all.safetensors');
    const h = await readHeader(src);
    expect([...h.tensors.keys()]).toEqual(entries.map((e) => e.name));

    const spans = [...h.tensors.values()].map((t) => [t.name, t.dtype, t.shape, t.begin - h.dataStart, t.end - h.dataStart]);
    expect(spans).toEqual([
      ['f32', 'F32', [5], 0, 20],
      ['f16', 'F16', [5, 1], 20, 30],
      ['bf16', 'BF16', [1, 5], 30, 40],
      ['i8', 'I8', [3], 40, 43],
      ['u8', 'U8', [2, 2], 43, 47],
      ['i16', 'I16', [3], 47, 53],
      ['i32', 'I32', [2, 2], 53, 69],
      ['i64', 'I64', [2], 69, 85],
      ['bool', 'BOOL', [3], 85, 88],
      ['raw32', 'F32', [1], 88, 92],
      ['scalar', 'I32', [], 92, 96],
      ['empty', 'F32', [0, 3], 96, 96],
    ]);
    expect(await src.size()).toBe(h.dataStart + 96);

    const get = (n: string) => h.tensors.get(n)!;
    // f32 starts on an 8-aligned offset; f16/bf16/i32/raw32 sit at offsets the views cannot use directly.
    expect([...(await readTensorF32(src, get('f32')))]).toEqual([...f32]);
    expect(Object.is((await readTensorF32(src, get('f32')))[1], -0)).toBe(true);
    expect([...(await readTensorF32(src, get('f16')))]).toEqual([...halves]);
    expect([...(await readTensorF32(src, get('bf16')))]).toEqual([1, -2, 0.5, 65536, -0]); // 65504 rounds in BF16
    expect([...(await readTensorF32(src, get('raw32')))]).toEqual([1]);
    expect([...(await readTensorBytes(src, get('i8')))]).toEqual([0x80, 0xff, 0x7f]);
    expect([...(await readTensorBytes(src, get('u8')))]).toEqual([...bytesOf(4, 1)]);
    expect([...(await readTensorBytes(src, get('i16')))]).toEqual([...bytesOf(6, 2)]);
    expect([...(await readTensorBytes(src, get('i32')))]).toEqual([0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]);
    expect([...(await readTensorBytes(src, get('i64')))]).toEqual([...bytesOf(16, 3)]);
    expect([...(await readTensorBytes(src, get('bool')))]).toEqual([1, 0, 1]);
    expect([...(await readTensorBytes(src, get('scalar')))]).toEqual([0xfb, 0xff, 0xff, 0xff]);
    expect((await readTensorF32(src, get('empty'))).length).toBe(0);
    await expect(readTensorF32(src, get('i32'))).rejects.toMatchObject({
      code: 'SAFETENSORS_NOT_FLOAT',
      message: 'all.safetensors: tensor "i32": dtype I32 cannot be read as F32; read its bytes instead',
    });
  });

  it('keeps metadata, including awkward keys, and omits an empty map', async () => {
    const metadata = Object.fromEntries([
      ['format', 'pt'],
      ['__proto__', 'not a prototype'],
      ['ünï', 'çødé "quoted"\n'],
      ['empty', ''],
    ]);
    const h = await readHeader(bufferSource(await encodeSafetensors([], metadata)));
    expect(h.metadata).toEqual(metadata);
    expect(Object.getOwnPropertyNames(h.metadata)).toEqual(['format', '__proto__', 'ünï', 'empty']);
    expect(h.tensors.size).toBe(0);

    const bare = await encodeSafetensors([], {});
    expect(text(bare.subarray(8))).toBe('{}      ');
    expect((await readHeader(bufferSource(bare))).metadata).toEqual({});
  });

  it('pads the header with spaces to a multiple of 8 for every remainder', async () => {
    const pads = new Set<number>();
    for (let len = 1; len <= 8; len++) {
      const file = await encodeSafetensors([{ name: 'n'.repeat(len), dtype: 'U8', shape: [1], data: new Uint8Array([1]) }]);
      const h = await readHeader(bufferSource(file));
      const header = text(file.subarray(8, h.dataStart));
      const json = `{"${'n'.repeat(len)}":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`;
      expect(h.headerBytes % 8).toBe(0);
      expect(header).toBe(json + ' '.repeat(h.headerBytes - json.length));
      pads.add(h.headerBytes - json.length);
    }
    expect([...pads].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('ranged reading', () => {
  it('reads only the header and the requested tensor from a file', async () => {
    const path = join(dir, 'three.safetensors');
    const big = new Float32Array(1000).map((_, i) => i - 500);
    await writeSafetensors(fileSink(path), [
      { name: 'odd', dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      { name: 'middle', dtype: 'F32', shape: [10, 100], data: big },
      { name: 'last', dtype: 'BF16', shape: [4000], data: new Float32Array(4000) },
    ]);
    const src = countingSource(fileSource(path));
    const h = await readHeader(src);
    const middle = h.tensors.get('middle')!;
    expect(middle.begin % 4).toBe(3); // misaligned in the file: the read must still convert
    const got = await readTensorF32(src, middle);

    expect([...got]).toEqual([...big]);
    expect(src.reads).toEqual([
      [0, 8],
      [8, h.headerBytes],
      [middle.begin, 4000],
    ]);
    expect(src.bytesRead()).toBe(8 + h.headerBytes + 4000);
    expect(src.bytesRead()).toBeLessThan((await src.size()) / 2);
  });
});

describe('writer', () => {
  it('returns the byte count and the sha256 of exactly what it wrote, and closes the sink', async () => {
    const path = join(dir, 'hashed.safetensors');
    const res = await writeSafetensors(fileSink(path), [{ name: 'w', dtype: 'BF16', shape: [3], data: new Float32Array([1, 2, 3]) }], { a: 'b' });
    const onDisk = await readFile(path);
    expect(res.bytes).toBe(onDisk.length);
    expect(res.sha256).toBe(createHash('sha256').update(onDisk).digest('hex'));
    expect(res.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('streams lazy tensors one at a time: the next loads while the previous is written, never two writes at once', async () => {
    const log: string[] = [];
    const sink: ByteSink = {
      async write(c) {
        log.push(`write ${c.length}`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`wrote ${c.length}`);
      },
      close: async () => void log.push('close'),
    };
    const lazy = (name: string, n: number): TensorEntry => ({
      name,
      dtype: 'F32',
      shape: [n],
      data: async () => {
        log.push(`load ${name}`);
        return new Float32Array(n);
      },
    });
    const { bytes } = await writeSafetensors(sink, [lazy('a', 2), lazy('b', 3)]);
    const h = bytes - 20;
    expect(log).toEqual([`write ${h}`, 'load a', `wrote ${h}`, 'write 8', 'load b', 'wrote 8', 'write 12', 'wrote 12', 'close']);
  });

  it('converts F16/BF16 in 4 MiB pieces through two reused buffers, never touching a chunk the sink or the hash still holds', async () => {
    const n = 2 * (2 << 20) + 3; // two full pieces and a tail
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1000);
    const y = Float32Array.from({ length: 5 }, (_, i) => -i - 0.5);
    const chunks: Uint8Array[] = [];
    const slow = async (c: Uint8Array, into?: Uint8Array[]) => {
      const copy = c.slice();
      await new Promise((r) => setTimeout(r, 2));
      expect(Buffer.compare(Buffer.from(c), Buffer.from(copy))).toBe(0);
      into?.push(copy);
    };
    const hashed = createHash('sha256');
    const sink: ByteSink = { write: (c) => slow(c, chunks), close: async () => undefined };
    const hash = {
      update: async (c: Uint8Array) => {
        hashed.update(c);
        await slow(c);
      },
      digest: async () => 'digest from the given hash',
    };
    const entries: TensorEntry[] = [
      { name: 'x', dtype: 'BF16', shape: [n], data: async () => x },
      { name: 'y', dtype: 'F16', shape: [5], data: y },
    ];
    const res = await writeSafetensors(sink, entries, undefined, { hash });
    expect(res.sha256).toBe('digest from the given hash');
    const headBytes = chunks[0].length;
    expect(chunks.map((c) => c.length)).toEqual([headBytes, 4 << 20, 4 << 20, 6, 10]);
    const out = Buffer.concat(chunks);
    expect(res.bytes).toBe(out.length);
    expect(createHash('sha256').update(out).digest('hex')).toBe(hashed.digest('hex'));
    expect(Buffer.compare(out.subarray(headBytes, headBytes + 2 * n), Buffer.from(encodeFloats(x, 'BF16')))).toBe(0);
    expect(Buffer.compare(out.subarray(headBytes + 2 * n), Buffer.from(encodeFloats(y, 'F16')))).toBe(0);
  });

  it('rejects bad entries before writing anything', async () => {
    const cases: [TensorEntry[], Record<string, string> | undefined, string, string][] = [
      [[{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) }, { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) }], undefined,
        'SAFETENSORS_DUPLICATE_TENSOR', 'safetensors writer: tensor "a": is given twice'],
      [[{ name: '__metadata__', dtype: 'U8', shape: [0], data: new Uint8Array(0) }], undefined,
        'SAFETENSORS_RESERVED_NAME', 'safetensors writer: tensor "__metadata__": __metadata__ is reserved for metadata'],
      [[{ name: 'w', dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }], undefined,
        'SAFETENSORS_DATA_LENGTH', 'safetensors writer: tensor "w": data has 3 elements, shape [2,2] of F32 needs 4'],
      [[{ name: 'w', dtype: 'I64', shape: [2], data: new Uint8Array(8) }], undefined,
        'SAFETENSORS_DATA_LENGTH', 'safetensors writer: tensor "w": data has 8 bytes, shape [2] of I64 needs 16'],
      [[{ name: 'w', dtype: 'I8', shape: [2], data: new Float32Array(2) }], undefined,
        'SAFETENSORS_DATA_TYPE', 'safetensors writer: tensor "w": Float32Array data cannot be written as I8'],
      [[{ name: 'w', dtype: 'F32', shape: [2], data: new Int32Array(2) }], undefined,
        'SAFETENSORS_DATA_TYPE', 'safetensors writer: tensor "w": Int32Array data can only be written as I32, not F32'],
      [[{ name: 'w', dtype: 'F32', shape: [2, -1], data: new Float32Array(0) }], undefined,
        'SAFETENSORS_SHAPE_INVALID', 'safetensors writer: tensor "w": shape [2,-1] is not an array of non-negative integers'],
      [[{ name: 'w', dtype: 'F32', shape: [2 ** 30, 2 ** 30], data: new Float32Array(0) }], undefined,
        'SAFETENSORS_SHAPE_INVALID', 'safetensors writer: tensor "w": shape [1073741824,1073741824] is too large to address'],
      [[{ name: 'w', dtype: 'F64' as never, shape: [1], data: new Uint8Array(8) }], undefined,
        'SAFETENSORS_UNKNOWN_DTYPE', 'safetensors writer: tensor "w": dtype "F64" is not one of F32, F16, BF16, I8, U8, I16, I32, I64, BOOL'],
      [[], { n: 1 as unknown as string },
        'SAFETENSORS_METADATA_INVALID', 'safetensors writer: metadata must be an object of string values'],
    ];
    for (const [entries, metadata, code, message] of cases) {
      const log: string[] = [];
      const sink: ByteSink = { write: async () => void log.push('write'), close: async () => void log.push('close') };
      await expect(writeSafetensors(sink, entries, metadata)).rejects.toMatchObject({ code, message });
      expect(log).toEqual([]);
    }
  });

  it('on failure aborts a sink that can abort, instead of closing it (an upload then leaves no object)', async () => {
    const log: string[] = [];
    const sink = { write: async () => void log.push('write'), close: async () => void log.push('close'), abort: async () => void log.push('abort') };
    const fail = new Error('source gone');
    await expect(writeSafetensors(sink, [{ name: 'w', dtype: 'F32', shape: [1], data: async () => Promise.reject(fail) }])).rejects.toBe(fail);
    expect(log).toEqual(['write', 'abort']);
  });

  it('checks lazy data when it arrives and closes the sink', async () => {
    const log: string[] = [];
    const sink: ByteSink = { write: async () => void log.push('write'), close: async () => void log.push('close') };
    await expect(
      writeSafetensors(sink, [{ name: 'late', dtype: 'BF16', shape: [4], data: async () => new Float32Array(5) }]),
    ).rejects.toMatchObject({ code: 'SAFETENSORS_DATA_LENGTH', message: 'safetensors writer: tensor "late": data has 5 elements, shape [4] of BF16 needs 4' });
    expect(log).toEqual(['write', 'close']);
  });
});
