/**
 * LISA end to end on each family's fixture base (test/fixtures/families): chunks resume bitwise,
 * the merged export round-trips in the base's dtype (Qwen2's is BF16), a delta package applied to
 * the base gives the same files, and a one-run linear composition gives the same weights.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { unitNames } from '../../core/models/units.ts';
import { applyDelta, exportRun } from '../../core/merge/export.ts';
import { composeRuns } from '../../core/merge/compose.ts';
import { headManifest } from '../../core/store/manifest.ts';
import { readHeader } from '../../core/tensors/safetensors.ts';
import { fileSource } from '../../core/tensors/source.ts';
import { decodeFloats, encodeFloats, isFloatDtype } from '../../core/tensors/dtypes.ts';
import { createRun } from '../../core/train/create-run.ts';
import { runChunk } from '../../core/train/chunk.ts';
import { materialize } from '../../core/train/run-state.ts';
import { FAMILIES, familyDir } from '../models/families.ts';
import { bytesOf, fsStore, newSources, tempDir, writeData } from './harness.ts';
import { referenceLoop } from './reference.ts';

let data: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  data = await writeData(Array.from({ length: 12 }, (_, i) => JSON.stringify({ q: `${i}+${i + 1}`, a: String(2 * i + 1) })));
});

async function dtypes(dir: string): Promise<Map<string, string>> {
  const header = await readHeader(fileSource(join(dir, 'model.safetensors')));
  return new Map([...header.tensors.values()].map((t) => [t.name, t.dtype]));
}

describe.each(FAMILIES)('%s', (family) => {
  it('two chunks equal one uninterrupted loop bitwise; export, delta and compose round-trip in the base dtype', async () => {
    const base = familyDir(family);
    const store = await fsStore(`family-${family}`);
    const run = await createRun({
      store,
      input: { base, data, fields: ['q', 'a'], template: '{q}=', seqLen: 12, activeLayers: 1, period: 2, steps: 4, batchSize: 2, lr: 1e-2, seed: 3 },
      ...newSources(),
    });
    expect(run.base.arch).toBe(family === 'llama3' ? 'llama' : family);
    for (let i = 0; i < 2; i++) await runChunk({ store, run, ...newSources() });
    const head = (await headManifest(store, run.id))!;
    const ref = await referenceLoop(run, 4);
    const stored = await materialize(store, ref.base.spec, ref.base.weights, head, new Set(unitNames(ref.base.spec)));
    for (const [name, w] of ref.weights) expect(bytesOf(stored.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);

    const out = join(await tempDir('family-export'), 'merged');
    await exportRun({ store, runId: run.id, out });
    const baseTypes = await dtypes(base);
    expect(await dtypes(out)).toEqual(baseTypes);
    expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))).toEqual(JSON.parse(await readFile(join(base, 'config.json'), 'utf8')));
    expect(await readFile(join(out, 'tokenizer_config.json'), 'utf8')).toBe(await readFile(join(base, 'tokenizer_config.json'), 'utf8'));
    const exported = await loadBaseDir(out);
    for (const [name, w] of stored.weights) {
      const dtype = baseTypes.get(name)!;
      const want = dtype === 'F32' || !isFloatDtype(dtype as never) ? w : decodeFloats(encodeFloats(w, dtype as 'BF16'), dtype as 'BF16');
      expect(bytesOf(exported.weights.get(name)!).equals(bytesOf(want)), name).toBe(true);
    }

    const deltaFile = join(await tempDir('family-delta'), 'delta.safetensors');
    await exportRun({ store, runId: run.id, out: deltaFile, delta: true });
    const applied = join(await tempDir('family-apply'), 'model');
    await applyDelta({ base, delta: deltaFile, out: applied });
    expect(await readFile(join(applied, 'model.safetensors'))).toEqual(await readFile(join(out, 'model.safetensors')));

    const composed = join(await tempDir('family-compose'), 'model');
    await composeRuns({ base, store, runs: [{ runId: run.id, weight: 1 }], method: 'linear', out: composed });
    const merged = await loadBaseDir(composed);
    for (const [name, w] of exported.weights) expect(bytesOf(merged.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
  });
});
