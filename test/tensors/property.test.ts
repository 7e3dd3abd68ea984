import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DTYPES, dtypeSize } from '../../core/tensors/dtypes.ts';
import { findDuplicateKey } from '../../core/tensors/json-keys.ts';
import {
  encodeSafetensors,
  readHeader,
  readTensorBytes,
  readTensorF32,
  SafetensorsError,
  type TensorEntry,
} from '../../core/tensors/safetensors.ts';
import { bufferSource } from '../../core/tensors/source.ts';

// Data is drawn as raw bytes of exactly the right length for every dtype; F32 tensors also go
// through the Float32Array path with arbitrary floats.
const tensorArb = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    asFloats: fc.boolean(),
  })
  .chain(({ dtype, shape, asFloats }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data =
      dtype === 'F32' && asFloats
        ? fc.array(fc.float(), { minLength: n, maxLength: n }).map((xs) => new Float32Array(xs))
        : fc.uint8Array({ minLength: n * dtypeSize(dtype), maxLength: n * dtypeSize(dtype) });
    return data.map((d) => ({ dtype, shape, data: d }));
  });

const filesArb = fc.record({
  names: fc.uniqueArray(fc.string({ unit: 'binary', maxLength: 8 }).filter((s) => s !== '__metadata__'), { maxLength: 6 }),
  tensors: fc.array(tensorArb, { minLength: 6, maxLength: 6 }),
  metadata: fc.option(fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.string({ maxLength: 10 })), { nil: undefined }),
});

const toEntries = (f: { names: string[]; tensors: Omit<TensorEntry, 'name'>[] }): TensorEntry[] =>
  f.names.map((name, i) => ({ name, ...f.tensors[i] }));

describe('property: round trip', () => {
  it('random tensors and metadata come back exactly, in order', async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, async (f) => {
        const entries = toEntries(f);
        const src = bufferSource(await encodeSafetensors(entries, f.metadata));
        const h = await readHeader(src);
        expect(h.metadata).toEqual(f.metadata ?? {});
        expect([...h.tensors.keys()]).toEqual(entries.map((e) => e.name));
        for (const e of entries) {
          const info = h.tensors.get(e.name)!;
          expect([info.dtype, info.shape]).toEqual([e.dtype, e.shape]);
          const data = e.data as Float32Array | Uint8Array;
          if (data instanceof Float32Array) {
            const got = await readTensorF32(src, info);
            expect(got.length).toBe(data.length);
            data.forEach((x, i) => expect(Object.is(got[i], x)).toBe(true));
          } else {
            expect(await readTensorBytes(src, info)).toEqual(data);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('property: corrupted files', () => {
  // Mutations aim at the prefix and header, where they change meaning; data bytes are always valid.
  const mutationArb = fc.record({
    edits: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), inHeader: fc.boolean() }), { minLength: 1, maxLength: 4 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
  });

  it('either parse and read, or fail with a SafetensorsError', async () => {
    await fc.assert(
      fc.asyncProperty(filesArb, mutationArb, async (f, m) => {
        const file = await encodeSafetensors(toEntries(f), f.metadata);
        const headerEnd = 8 + Number(new DataView(file.buffer).getBigUint64(0, true));
        for (const e of m.edits) file[e.inHeader ? e.at % headerEnd : e.at % file.length] = e.value;
        const bytes = m.cut === undefined ? file : file.subarray(0, m.cut % (file.length + 1));
        try {
          const src = bufferSource(bytes, 'mutated');
          const h = await readHeader(src);
          for (const info of h.tensors.values()) {
            if (['F32', 'F16', 'BF16'].includes(info.dtype)) await readTensorF32(src, info);
            else expect((await readTensorBytes(src, info)).length).toBe(info.end - info.begin);
          }
        } catch (err) {
          if (!(err instanceof SafetensorsError)) throw err;
          expect(err.code).toMatch(/^SAFETENSORS_/);
          expect(err.message.startsWith('mutated: ')).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('property: duplicate key scan', () => {
  it('finds nothing in JSON.stringify output and finds an injected duplicate', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue(), { minKeys: 1 }), (obj) => {
        const json = JSON.stringify(obj);
        expect(findDuplicateKey(json)).toBeNull();
        const [key] = Object.keys(obj);
        const dup = `{${json.slice(1, -1)},${JSON.stringify(key)}:0}`;
        expect(findDuplicateKey(`{"outer":[1,${dup}]}`)).toEqual({ key, path: ['outer'] });
      }),
      { numRuns: 300 },
    );
  });
});
