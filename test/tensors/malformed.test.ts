import { describe, expect, it } from 'vitest';
import { readHeader, SafetensorsError } from '../../core/tensors/safetensors.ts';
import { bufferSource } from '../../core/tensors/source.ts';
import { rawFile } from './helpers.ts';

const NAME = 'bad.safetensors';
const entry = (dtype: string, shape: unknown, offsets: unknown) =>
  `{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":${JSON.stringify(offsets)}}`;
const f32 = (begin: number, end: number) => entry('F32', [(end - begin) / 4], [begin, end]);

// [case, file bytes, code, exact message]; every file is built by hand.
const cases: [string, Uint8Array, string, string][] = [
  ['file shorter than the length prefix', new Uint8Array(5), 'SAFETENSORS_TOO_SMALL',
    'file is 5 bytes, shorter than the 8-byte header length'],
  ['header length over 100 MB', rawFile('{}', [], 100_000_001n), 'SAFETENSORS_HEADER_TOO_LARGE',
    'header length 100000001 exceeds the limit of 100000000 bytes'],
  ['huge u64 header length', rawFile('{}', [], 0xffffffffffffffffn), 'SAFETENSORS_HEADER_TOO_LARGE',
    'header length 18446744073709551615 exceeds the limit of 100000000 bytes'],
  ['header length beyond the file', rawFile('{}', [0, 0], 64n), 'SAFETENSORS_HEADER_BEYOND_FILE',
    'header length 64 runs past the end of the 12-byte file'],
  ['header not UTF-8', rawFile(new Uint8Array([0x7b, 0xff, 0x7d])), 'SAFETENSORS_HEADER_NOT_UTF8',
    'header is not valid UTF-8'],
  ['header is a JSON array', rawFile('[1,2]'), 'SAFETENSORS_HEADER_NOT_OBJECT',
    'header is JSON array, expected an object'],
  ['header is a JSON string', rawFile('"x"     '), 'SAFETENSORS_HEADER_NOT_OBJECT',
    'header is JSON string, expected an object'],
  ['duplicate tensor name', rawFile(`{"w":${f32(0, 4)},"w":${f32(0, 4)}}`, new Uint8Array(4)), 'SAFETENSORS_DUPLICATE_TENSOR',
    'tensor "w": appears twice in the header'],
  ['duplicate tensor name spelled with an escape', rawFile(`{"w":${f32(0, 4)},"\\u0077":${f32(0, 4)}}`, new Uint8Array(4)), 'SAFETENSORS_DUPLICATE_TENSOR',
    'tensor "w": appears twice in the header'],
  ['duplicate field inside an entry', rawFile(`{"w":{"dtype":"I32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, new Uint8Array(4)), 'SAFETENSORS_DUPLICATE_KEY',
    'tensor "w": key "dtype" appears twice in "w"'],
  ['__metadata__ given twice', rawFile('{"__metadata__":{},"__metadata__":{}}'), 'SAFETENSORS_DUPLICATE_KEY',
    'key "__metadata__" appears twice in the header'],
  ['duplicate metadata key', rawFile('{"__metadata__":{"k":"a","k":"b"}}'), 'SAFETENSORS_DUPLICATE_KEY',
    'key "k" appears twice in "__metadata__"'],
  ['__metadata__ with a number value', rawFile('{"__metadata__":{"epoch":1}}'), 'SAFETENSORS_METADATA_INVALID',
    '__metadata__ must be an object of string values'],
  ['__metadata__ is a string', rawFile('{"__metadata__":"x"}'), 'SAFETENSORS_METADATA_INVALID',
    '__metadata__ must be an object of string values'],
  ['entry is not an object', rawFile('{"w":[0,4]}'), 'SAFETENSORS_ENTRY_INVALID',
    'tensor "w": expected an object with exactly dtype, shape, data_offsets, got [0,4]'],
  ['entry lacks data_offsets', rawFile('{"w":{"dtype":"F32","shape":[1]}}'), 'SAFETENSORS_ENTRY_INVALID',
    'tensor "w": expected an object with exactly dtype, shape, data_offsets, got {"dtype":"F32","shape":[1]}'],
  ['entry with an extra field', rawFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":1}}`), 'SAFETENSORS_ENTRY_INVALID',
    'tensor "w": expected an object with exactly dtype, shape, data_offsets, got {"dtype":"F32","shape":[0],"data_offsets":[0,0],"x":1}'],
  ['unknown dtype', rawFile(`{"w":${entry('F64', [1], [0, 8])}}`, new Uint8Array(8)), 'SAFETENSORS_UNKNOWN_DTYPE',
    'tensor "w": dtype "F64" is not one of F32, F16, BF16, I8, U8, I16, I32, I64, BOOL'],
  ['negative dimension', rawFile(`{"w":${entry('F32', [2, -1], [0, 0])}}`), 'SAFETENSORS_SHAPE_INVALID',
    'tensor "w": shape [2,-1] is not an array of non-negative integers'],
  ['fractional dimension', rawFile(`{"w":${entry('F32', [1.5], [0, 6])}}`, new Uint8Array(6)), 'SAFETENSORS_SHAPE_INVALID',
    'tensor "w": shape [1.5] is not an array of non-negative integers'],
  ['shape is not an array', rawFile(`{"w":${entry('F32', '4', [0, 16])}}`, new Uint8Array(16)), 'SAFETENSORS_SHAPE_INVALID',
    'tensor "w": shape "4" is not an array of non-negative integers'],
  ['data_offsets reversed', rawFile(`{"w":${entry('U8', [4], [4, 0])}}`, new Uint8Array(4)), 'SAFETENSORS_OFFSETS_INVALID',
    'tensor "w": data_offsets [4,0] is not [begin, end] with 0 <= begin <= end integers'],
  ['data_offsets with one number', rawFile(`{"w":${entry('U8', [4], [4])}}`, new Uint8Array(4)), 'SAFETENSORS_OFFSETS_INVALID',
    'tensor "w": data_offsets [4] is not [begin, end] with 0 <= begin <= end integers'],
  ['data_offsets as strings', rawFile(`{"w":${entry('U8', [4], ['0', '4'])}}`, new Uint8Array(4)), 'SAFETENSORS_OFFSETS_INVALID',
    'tensor "w": data_offsets ["0","4"] is not [begin, end] with 0 <= begin <= end integers'],
  ['shape x dtype disagrees with the span', rawFile(`{"w":${entry('F32', [2, 3], [0, 16])}}`, new Uint8Array(16)), 'SAFETENSORS_SIZE_MISMATCH',
    'tensor "w": shape [2,3] of F32 needs 24 bytes but data_offsets [0, 16] span 16'],
  ['shape whose size overflows doubles', rawFile(`{"w":${entry('I64', [2 ** 52, 2 ** 52], [0, 8])}}`, new Uint8Array(8)), 'SAFETENSORS_SIZE_MISMATCH',
    'tensor "w": shape [4503599627370496,4503599627370496] of I64 needs 162259276829213363391578010288128 bytes but data_offsets [0, 8] span 8'],
  ['offsets beyond the data', rawFile(`{"w":${f32(0, 8)}}`, new Uint8Array(4)), 'SAFETENSORS_OFFSETS_BEYOND_FILE',
    'tensor "w": data_offsets [0, 8] run past the 4-byte data buffer'],
  ['overlapping tensors', rawFile(`{"a":${f32(0, 8)},"b":${f32(4, 12)}}`, new Uint8Array(12)), 'SAFETENSORS_OVERLAP',
    'tensor "b": data_offsets [4, 12] overlap tensor "a" ending at 8'],
  ['empty tensor inside another', rawFile(`{"a":${f32(0, 8)},"e":${f32(4, 4)}}`, new Uint8Array(8)), 'SAFETENSORS_OVERLAP',
    'tensor "e": data_offsets [4, 4] overlap tensor "a" ending at 8'],
  ['hole between tensors', rawFile(`{"a":${f32(0, 4)},"b":${f32(8, 12)}}`, new Uint8Array(12)), 'SAFETENSORS_HOLE',
    'tensor "b": starts at data offset 8 but tensor "a" ends at 4; the bytes between belong to no tensor'],
  ['data not starting at 0', rawFile(`{"a":${f32(4, 8)}}`, new Uint8Array(8)), 'SAFETENSORS_HOLE',
    'tensor "a": starts at data offset 4 but data starts at 0; the bytes between belong to no tensor'],
  ['trailing bytes after the last tensor', rawFile(`{"b":${f32(4, 8)},"a":${f32(0, 4)}}`, new Uint8Array(9)), 'SAFETENSORS_TRAILING_BYTES',
    'tensor "b": is the last tensor and ends at data offset 8, but the data buffer has 9 bytes'],
  ['bytes but no tensors', rawFile('{}', new Uint8Array(2)), 'SAFETENSORS_TRAILING_BYTES',
    'header declares no tensors but 2 data bytes follow it'],
];

describe('malformed files', () => {
  it.each(cases)('rejects %s', async (_, bytes, code, message) => {
    const err = await readHeader(bufferSource(bytes, NAME)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err).toMatchObject({ code, message: `${NAME}: ${message}` });
  });

  it('covers at least 12 distinct error codes', () => {
    expect(new Set(cases.map((c) => c[2])).size).toBeGreaterThanOrEqual(12);
  });

  it('rejects non-JSON and a byte-order mark, quoting the parser', async () => {
    for (const header of ['{"w": ', '\ufeff{}']) {
      const err = await readHeader(bufferSource(rawFile(header), NAME)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SAFETENSORS_HEADER_NOT_JSON' });
      expect((err as Error).message).toMatch(/^bad\.safetensors: header is not JSON \(.+\)$/);
    }
  });

  it('names the source and tensor in details too', async () => {
    const err = await readHeader(bufferSource(rawFile(`{"w":${entry('X9', [1], [0, 1])}}`, [0]), NAME)).catch((e: unknown) => e);
    expect(err).toMatchObject({ details: { source: NAME, tensor: 'w' } });
  });

  it('accepts the edge cases the spec allows', async () => {
    // empty file body, non-space whitespace, key order unlike data order, zero-size tensors at shared offsets
    const ok = rawFile(`\n{"b":${f32(4, 8)},"z":${f32(4, 4)},"a":${f32(0, 4)},"y":${entry('U8', [0, 5], [8, 8])}}\t`, new Uint8Array(8));
    const h = await readHeader(bufferSource(ok, NAME));
    expect([...h.tensors.keys()]).toEqual(['a', 'z', 'b', 'y']);
    expect((await readHeader(bufferSource(rawFile('{}'), NAME))).tensors.size).toBe(0);
  });
});
