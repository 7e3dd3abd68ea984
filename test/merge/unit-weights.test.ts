import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readUnitWeights } from '../../core/merge/unit-weights.ts';
import { inlineHasher, workerHasher, type Hasher } from '../../core/tensors/hashing.ts';
import { FsStore } from '../../core/store/fs-store.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { sha256Hex } from '../../core/tensors/hashing.ts';
import { encodeUnitObject } from '../../core/store/unit-object.ts';
import { tempDir } from './helpers.ts';

/** The same store seen through another class, so readUnitWeights takes its streaming path. */
function opaque(inner: ObjectStore): ObjectStore {
  return {
    url: inner.url,
    stats: inner.stats,
    get: (k, r) => inner.get(k, r),
    put: (k, b) => inner.put(k, b),
    createExclusive: (k, b) => inner.createExclusive(k, b),
    head: (k) => inner.head(k),
    list: (p) => inner.list(p),
    delete: (k) => inner.delete(k),
    putStream: (k) => inner.putStream(k),
    sweep: (p, t) => inner.sweep(p, t),
  };
}

const a = Float32Array.from({ length: 300 }, (_, i) => i / 7);
const b = Float32Array.from({ length: 40 }, (_, i) => -i);
let root: string;
let cleanup: () => Promise<void>;
let fs: FsStore;
let ref: { key: string; sha256: string; bytes: number };
let hasher: Hasher;

beforeAll(async () => {
  ({ path: root, cleanup } = await tempDir());
  fs = new FsStore(join(root, 'store'));
  const body = await encodeUnitObject(
    {
      unit: 'layers.1',
      adamStep: 3,
      tensors: [
        { name: 'model.layers.1.mlp.up_proj.weight', shape: [30, 10], weight: a, m: a.map((x) => x + 1), v: a.map((x) => x + 2) },
        { name: 'model.layers.1.input_layernorm.weight', shape: [40], weight: b, m: b.map((x) => x * 2), v: b.map((x) => x * 3) },
      ],
    },
    { runId: 'r', seq: '0' },
  );
  ref = { key: 'runs/r/units/layers.1/00000000-x.safetensors', sha256: sha256Hex(body), bytes: body.length };
  await fs.put(ref.key, body);
  hasher = workerHasher({ threads: 1 });
});
afterAll(async () => {
  await hasher.close();
  await cleanup();
});

describe('readUnitWeights', () => {
  it.each([
    ['a directory store, hashed by a worker beside the reads', () => fs, () => hasher, undefined],
    ['any other store, streamed in pieces smaller than the header', () => opaque(fs), () => hasher, 100],
    ['any other store, hashed inline', () => opaque(fs), () => inlineHasher, 1000],
  ] as const)('reads only the weights from %s', async (_, store, h, pieceBytes) => {
    const w = await readUnitWeights(store(), ref, { unit: 'layers.1', hasher: h(), pieceBytes });
    expect(w.unit).toBe('layers.1');
    expect([...w.tensors.keys()]).toEqual(['model.layers.1.mlp.up_proj.weight', 'model.layers.1.input_layernorm.weight']);
    expect(w.tensors.get('model.layers.1.mlp.up_proj.weight')).toEqual(a);
    expect(w.tensors.get('model.layers.1.input_layernorm.weight')).toEqual(b);
    expect(w.shapes.get('model.layers.1.mlp.up_proj.weight')).toEqual([30, 10]);
    await w.verified;
  });

  it.each([
    ['directory', () => fs],
    ['streaming', () => opaque(fs)],
  ] as const)('refuses a corrupt object (%s), wherever the damage is', async (_, store) => {
    const bad = { ...ref, sha256: '0'.repeat(64) };
    const read = (r: typeof ref) => readUnitWeights(store(), r, { hasher, pieceBytes: 64 }).then((w) => w.verified);
    await expect(read(bad)).rejects.toMatchObject({ code: 'STORE_OBJECT_CORRUPT' });
    const body = await fs.get(ref.key);
    body[20] ^= 0x55; // inside the JSON header
    const key = 'runs/r/units/layers.1/00000000-bad.safetensors';
    await fs.put(key, body);
    await expect(read({ ...ref, key })).rejects.toMatchObject({ code: 'STORE_OBJECT_CORRUPT' });
  });

  it('refuses an object filed under another unit', async () => {
    await expect(readUnitWeights(fs, ref, { unit: 'layers.2', hasher })).rejects.toMatchObject({ code: 'UNIT_OBJECT_INVALID' });
  });
});
