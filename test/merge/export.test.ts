import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, exportRun } from '../../core/merge/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { configJson } from '../../core/models/config.ts';
import { randomWeights } from '../../core/models/model.ts';
import { tensorShapes, unitOf } from '../../core/models/units.ts';
import { headManifest, readManifest } from '../../core/store/manifest.ts';
import { materialize } from '../../core/train/run-state.ts';
import { readHeader, readTensorBytes, writeSafetensors } from '../../core/tensors/safetensors.ts';
import { encodeFloats, decodeFloats } from '../../core/tensors/dtypes.ts';
import { fileSink, fileSource } from '../../core/tensors/source.ts';
import { fsStore, makeBase, makeRun, tempDir, TINY, TOKENIZER_BYTES } from './helpers.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let root: string;
let cleanup: () => Promise<void>;
let baseDir: string;
let base: Awaited<ReturnType<typeof makeBase>>;
let history: Map<string, Float32Array>[];
const store = () => fsStore(join(root, 'store'));

beforeAll(async () => {
  ({ path: root, cleanup } = await tempDir());
  baseDir = join(root, 'base');
  base = await makeBase(baseDir);
  history = await makeRun(store(), 'r1', baseDir, base, [
    { units: ['embed', 'layers.0', 'head'] },
    { units: ['embed', 'layers.2', 'head'] },
    { units: ['layers.0'] },
  ]);
});
afterAll(() => cleanup());

function expectWeights(actual: Map<string, Float32Array>, expected: Map<string, Float32Array>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, w] of expected) expect(actual.get(name), name).toEqual(w);
}

describe('exportRun', () => {
  it('writes the run at its head: weights bitwise equal to materialize, tokenizer and configs copied', async () => {
    const out = join(root, 'out-head');
    const summary = await exportRun({ store: store(), runId: 'r1', out });
    expect(summary.seq).toBe(2);
    expect(summary.units).toEqual(['embed', 'layers.0', 'layers.2', 'head']);
    expect(summary.out).toBe(out);
    expect(summary.files.at(-1)).toBe('config.json');
    expect([...summary.files].sort()).toEqual(['config.json', 'generation_config.json', 'lisa-export.json', 'model.safetensors', 'tokenizer.json']);
    expect((await readdir(out)).sort()).toEqual([...summary.files].sort());
    let total = 0;
    for (const f of summary.files) {
      const bytes = await readFile(join(out, f));
      expect(summary.sha256s[f], f).toBe(sha(bytes));
      total += bytes.length;
    }
    expect(summary.bytes).toBe(total);
    expect(new Uint8Array(await readFile(join(out, 'tokenizer.json')))).toEqual(TOKENIZER_BYTES);
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))).toEqual(JSON.parse(await readFile(join(baseDir, 'config.json'), 'utf8')));
    expect(JSON.parse(await readFile(join(out, 'lisa-export.json'), 'utf8'))).toMatchObject({ runId: 'r1', seq: 2, baseSha256: base.sha256, dtype: 'base' });

    const loaded = await loadBaseDir(out);
    expectWeights(loaded.weights, history[2]);
    const head = await headManifest(store(), 'r1');
    expectWeights(loaded.weights, (await materialize(store(), TINY, base.weights, head, new Set())).weights);
    // no temp directory is left next to the output
    expect((await readdir(root)).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('exports an earlier seq, which differs from the head', async () => {
    const out = join(root, 'out-at0');
    const summary = await exportRun({ store: store(), runId: 'r1', out, at: 0 });
    expect(summary.seq).toBe(0);
    const loaded = await loadBaseDir(out);
    expectWeights(loaded.weights, history[0]);
    expectWeights(loaded.weights, (await materialize(store(), TINY, base.weights, await readManifest(store(), 'r1', 0), new Set())).weights);
    expect(loaded.weights.get('model.layers.2.mlp.up_proj.weight')).toEqual(base.weights.get('model.layers.2.mlp.up_proj.weight'));
    expect(loaded.weights.get('model.layers.2.mlp.up_proj.weight')).not.toEqual(history[2].get('model.layers.2.mlp.up_proj.weight'));
  });

  it('at -1 writes the base byte for byte', async () => {
    const out = join(root, 'out-base');
    const summary = await exportRun({ store: store(), runId: 'r1', out, at: -1 });
    expect(summary.units).toEqual([]);
    expect(summary.sha256s['model.safetensors']).toBe(base.sha256);
  });

  it('shards by --shard-size with a valid index and loads back identically', async () => {
    const out = join(root, 'out-sharded');
    const summary = await exportRun({ store: store(), runId: 'r1', out, shardSize: 3000 });
    const shards = summary.files.filter((f) => f.endsWith('.safetensors'));
    const n = shards.length;
    expect(n).toBeGreaterThan(3);
    expect(shards).toEqual(Array.from({ length: n }, (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`));
    expect(summary.files).not.toContain('model.safetensors');
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    const shapes = tensorShapes(TINY);
    expect(index.metadata.total_size).toBe([...shapes.values()].reduce((s, sh) => s + 4 * sh.reduce((a, b) => a * b, 1), 0));
    expect(Object.keys(index.weight_map).sort()).toEqual([...shapes.keys()].sort());
    for (const file of shards) {
      const header = await readHeader(fileSource(join(out, file)));
      const mapped = Object.entries(index.weight_map).filter(([, f]) => f === file).map(([t]) => t);
      expect([...header.tensors.keys()].sort()).toEqual(mapped.sort());
      const dataBytes = [...header.tensors.values()].reduce((s, t) => s + t.end - t.begin, 0);
      // a shard overflows the size only when it holds a single tensor larger than it
      if (header.tensors.size > 1) expect(dataBytes).toBeLessThanOrEqual(3000);
    }
    expectWeights((await loadBaseDir(out)).weights, history[2]);
  });

  it.each([
    ['bf16', 'BF16', 'bfloat16'],
    ['f16', 'F16', 'float16'],
  ] as const)('--dtype %s writes the round-to-nearest-even conversion of every F32 weight', async (dtype, D, torch) => {
    const out = join(root, `out-${dtype}`);
    await exportRun({ store: store(), runId: 'r1', out, dtype });
    const src = fileSource(join(out, 'model.safetensors'));
    const header = await readHeader(src);
    expect(header.tensors.size).toBe(history[2].size);
    for (const [name, w] of history[2]) {
      const info = header.tensors.get(name)!;
      expect(info.dtype).toBe(D);
      expect(await readTensorBytes(src, info), name).toEqual(encodeFloats(w, D));
    }
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).torch_dtype).toBe(torch);
  });

  it('--dtype base keeps a BF16 base bytes-exact where the run did not train, rounds where it did', async () => {
    const dir = join(root, 'base-bf16');
    await mkdir(dir);
    const f32 = randomWeights(TINY, 3);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...configJson(TINY), torch_dtype: 'bfloat16' }));
    await writeSafetensors(
      fileSink(join(dir, 'model.safetensors')),
      [...tensorShapes(TINY)].map(([name, shape]) => ({ name, dtype: 'BF16' as const, shape, data: f32.get(name)! })),
      { format: 'pt' },
    );
    const bf16Base = await loadBaseDir(dir);
    const s = fsStore(join(root, 'store-bf16'));
    const runW = await makeRun(s, 'rb', dir, bf16Base, [{ units: ['layers.1'] }]);

    const out = join(root, 'out-bf16-base');
    await exportRun({ store: s, runId: 'rb', out });
    const baseSrc = fileSource(join(dir, 'model.safetensors'));
    const baseHeader = await readHeader(baseSrc);
    const src = fileSource(join(out, 'model.safetensors'));
    const header = await readHeader(src);
    for (const [name, info] of header.tensors) {
      expect(info.dtype).toBe('BF16');
      const bytes = await readTensorBytes(src, info);
      if (unitOf(TINY, name) === 'layers.1') {
        expect(bytes, name).toEqual(encodeFloats(runW[0].get(name)!, 'BF16'));
        expect(bytes, name).not.toEqual(await readTensorBytes(baseSrc, baseHeader.tensors.get(name)!));
      } else {
        expect(bytes, name).toEqual(await readTensorBytes(baseSrc, baseHeader.tensors.get(name)!));
      }
    }
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');

    const outF32 = join(root, 'out-bf16-f32');
    await exportRun({ store: s, runId: 'rb', out: outF32, dtype: 'f32' });
    const loaded = await loadBaseDir(outF32);
    expectWeights(loaded.weights, runW[0]);
    const emb = await readTensorBytes(baseSrc, baseHeader.tensors.get('model.embed_tokens.weight')!);
    expect(loaded.weights.get('model.embed_tokens.weight')).toEqual(decodeFloats(emb, 'BF16'));
  });

  it('refuses a target that already holds files, and a base that changed', async () => {
    const out = join(root, 'occupied');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'mine');
    await expect(exportRun({ store: store(), runId: 'r1', out })).rejects.toMatchObject({ code: 'EXPORT_OUTPUT_EXISTS' });
    expect(await readdir(out)).toEqual(['keep.txt']);

    const other = join(root, 'base-other');
    await makeBase(other, TINY, 99);
    await expect(exportRun({ store: store(), runId: 'r1', out: join(root, 'never'), base: other })).rejects.toMatchObject({
      code: 'BASE_CHANGED',
      message: expect.stringContaining(base.sha256),
    });
  });

  it('leaves nothing at the target when a unit object is corrupt', async () => {
    const s = fsStore(join(root, 'store-corrupt'));
    await makeRun(s, 'rc', baseDir, base, [{ units: ['layers.1'] }]);
    const ref = (await headManifest(s, 'rc'))!.units['layers.1'];
    const bytes = await s.get(ref.key);
    bytes[bytes.length - 1] ^= 1;
    await s.put(ref.key, bytes);
    const parent = join(root, 'corrupt-parent');
    await expect(exportRun({ store: s, runId: 'rc', out: join(parent, 'model') })).rejects.toMatchObject({ code: 'STORE_OBJECT_CORRUPT' });
    expect(await readdir(parent)).toEqual([]);
  });
});

describe('delta packages', () => {
  it('hold only the changed units, without optimizer state, and apply back to the exact export', async () => {
    const delta = join(root, 'r1.delta.safetensors');
    const summary = await exportRun({ store: store(), runId: 'r1', out: delta, delta: true });
    expect(summary.files).toEqual(['r1.delta.safetensors']);
    const header = await readHeader(fileSource(delta));
    const changed = ['embed', 'layers.0', 'layers.2', 'head'];
    expect([...header.tensors.keys()].sort()).toEqual([...history[2].keys()].filter((n) => changed.includes(unitOf(TINY, n))).sort());
    expect(header.metadata).toEqual({
      format: 'lisa-delta',
      format_version: '1',
      base_sha256: base.sha256,
      run_id: 'r1',
      seq: '2',
      global_step: '6',
      arch: 'llama',
      units: JSON.stringify(changed),
    });
    expect(summary.bytes).toBeLessThan((await readFile(join(root, 'out-head', 'model.safetensors'))).length);

    const out = join(root, 'out-applied');
    const applied = await applyDelta({ base: baseDir, delta, out });
    const full = await exportRun({ store: store(), runId: 'r1', out: join(root, 'out-head-again') });
    expect(applied.sha256s['model.safetensors']).toBe(full.sha256s['model.safetensors']);
    expectWeights((await loadBaseDir(out)).weights, history[2]);
  });

  it('refuses a base with another sha256, naming both', async () => {
    const delta = join(root, 'r1-at1.delta.safetensors');
    await exportRun({ store: store(), runId: 'r1', out: delta, delta: true, at: 1 });
    const other = join(root, 'base-wrong');
    const { sha256: otherSha } = await makeBase(other, TINY, 42);
    const out = join(root, 'out-wrong');
    const err = await applyDelta({ base: other, delta, out }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DELTA_BASE_MISMATCH' });
    expect((err as Error).message).toContain(base.sha256);
    expect((err as Error).message).toContain(otherSha);
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a safetensors file that is not a delta package', async () => {
    await expect(applyDelta({ base: baseDir, delta: join(baseDir, 'model.safetensors'), out: join(root, 'x') })).rejects.toMatchObject({
      code: 'DELTA_INVALID',
    });
  });
});
