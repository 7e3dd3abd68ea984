/**
 * LoRA runs outside training: the merged export is base + (alpha/r)·B·A (transposed for GPT-2's
 * Conv1D), the adapter export has PEFT's file names, keys, shapes and config fields
 * (peft/utils/save_and_load.py, peft/tuners/lora/config.py), deltas and compositions take the
 * merged weights, and an adapter export of another method is refused.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, composeRuns, exportRun } from '../../core/merge/index.ts';
import type { ModelSpec } from '../../core/models/config.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { loraA, loraB, loraModules } from '../../core/models/lora.ts';
import { readHeader, readTensorF32 } from '../../core/tensors/safetensors.ts';
import { fileSource } from '../../core/tensors/source.ts';
import { tinyGpt2 } from '../models/tiny.ts';
import { fsStore, makeBase, makeLoraRun, makeRun, tempDir, TINY } from './helpers.ts';

const GPT2 = tinyGpt2;

let root: string;
let cleanup: () => Promise<void>;
const store = () => fsStore(join(root, 'store'));
let n = 0;
const out = () => join(root, `out-${n++}`);
const bases = new Map<string, { dir: string; sha256: string; weights: Map<string, Float32Array>; adapters: Map<string, Float32Array> }>();
const LORA = { rank: 3, alpha: 5 };

beforeAll(async () => {
  ({ path: root, cleanup } = await tempDir());
  for (const spec of [TINY, GPT2]) {
    const dir = join(root, `base-${spec.arch}`);
    const base = await makeBase(dir, spec);
    const adapters = await makeLoraRun(store(), `lora-${spec.arch}`, dir, base, spec, LORA);
    bases.set(spec.arch, { dir, ...base, adapters });
  }
  const llama = bases.get('llama')!;
  await makeRun(store(), 'lisa-run', llama.dir, llama, [{ units: ['layers.1'] }]);
});
afterAll(() => cleanup());

/** W + (alpha/r)·B·A by the definition: each entry's sum over the rank in float64, rounded once when added. */
function expectedMerge(spec: ModelSpec, weights: Map<string, Float32Array>, adapters: Map<string, Float32Array>): Map<string, Float32Array> {
  const merged = new Map(weights);
  for (const m of loraModules(spec, spec.arch === 'gpt2' ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])) {
    const [a, b, w] = [adapters.get(loraA(m.module))!, adapters.get(loraB(m.module))!, weights.get(`${m.module}.weight`)!];
    const out = new Float32Array(w.length);
    for (let o = 0; o < m.outFeatures; o++) {
      for (let i = 0; i < m.inFeatures; i++) {
        let s = 0;
        for (let k = 0; k < LORA.rank; k++) s += b[o * LORA.rank + k] * a[k * m.inFeatures + i];
        // nn.Linear W is [out, in]; Conv1D W is [in, out] (PEFT: transpose(B @ A, fan_in_fan_out))
        const at = spec.arch === 'gpt2' ? i * m.outFeatures + o : o * m.inFeatures + i;
        out[at] = w[at] + (LORA.alpha / LORA.rank) * s;
      }
    }
    merged.set(`${m.module}.weight`, out);
  }
  return merged;
}

describe.each([
  ['llama', TINY],
  ['gpt2', GPT2],
] as [string, ModelSpec][])('a LoRA run of %s', (arch, spec) => {
  it('exports merged: every adapted weight is base + (alpha/r)·B·A, every other tensor the base', async () => {
    const { weights, adapters } = bases.get(arch)!;
    const dir = out();
    const summary = await exportRun({ store: store(), runId: `lora-${arch}`, out: dir });
    expect(summary.units).toEqual(['layers.0', 'layers.1', ...(spec.nLayers > 2 ? ['layers.2'] : [])]);
    const loaded = (await loadBaseDir(dir)).weights;
    const expected = expectedMerge(spec, weights, adapters);
    let changed = 0;
    for (const [name, w] of expected) {
      expect(loaded.get(name), name).toEqual(w);
      if (w !== weights.get(name)) changed++;
    }
    expect(changed).toBe(loraModules(spec, spec.arch === 'gpt2' ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']).length);
  });

  it("exports the adapter with PEFT's files, keys, shapes and config", async () => {
    const { dir: baseDir, adapters } = bases.get(arch)!;
    const dir = out();
    const summary = await exportRun({ store: store(), runId: `lora-${arch}`, out: dir, adapter: true });
    expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'lisa-export.json']);
    expect(summary.files.at(-1)).toBe('adapter_config.json');
    const src = fileSource(join(dir, 'adapter_model.safetensors'));
    const header = await readHeader(src);
    expect(header.metadata).toEqual({ format: 'pt' });
    const prefix = arch === 'gpt2' ? 'base_model.model.transformer.h' : 'base_model.model.model.layers';
    const keys = [...header.tensors.keys()];
    expect(keys.length).toBe(adapters.size);
    for (const key of keys) expect(key.startsWith(`${prefix}.`) && /\.lora_[AB]\.weight$/.test(key), key).toBe(true);
    const first = arch === 'gpt2' ? 'transformer.h.0.attn.c_attn' : 'model.layers.0.self_attn.q_proj';
    // GPT-2 c_attn: Conv1D [12, 36] -> in 12, out 36; llama q_proj: Linear [16, 16]
    const [inF, outF] = arch === 'gpt2' ? [12, 36] : [16, 16];
    expect(header.tensors.get(`base_model.model.${first}.lora_A.weight`)).toMatchObject({ dtype: 'F32', shape: [3, inF] });
    expect(header.tensors.get(`base_model.model.${first}.lora_B.weight`)).toMatchObject({ dtype: 'F32', shape: [outF, 3] });
    for (const [name, data] of adapters) expect(await readTensorF32(src, header.tensors.get(`base_model.model.${name}`)!), name).toEqual(data);
    const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: baseDir,
      r: 3,
      lora_alpha: 5,
      lora_dropout: 0,
      target_modules: arch === 'gpt2' ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      fan_in_fan_out: arch === 'gpt2',
      bias: 'none',
      use_rslora: false,
      use_dora: false,
      modules_to_save: null,
    });
  });

  it('a delta package of it applies to the merged model; composing it alone at full strength gives the merged model too', async () => {
    const { dir: baseDir } = bases.get(arch)!;
    const merged = await exportRun({ store: store(), runId: `lora-${arch}`, out: out() });
    const delta = join(out(), 'delta.safetensors');
    await exportRun({ store: store(), runId: `lora-${arch}`, out: delta, delta: true });
    const applied = await applyDelta({ base: baseDir, delta, out: out() });
    expect(applied.sha256s['model.safetensors']).toBe(merged.sha256s['model.safetensors']);
    const composed = await composeRuns({ base: baseDir, store: store(), runs: [{ runId: `lora-${arch}` }], method: 'task-arithmetic', out: out() });
    expect(composed.sha256s['model.safetensors']).toBe(merged.sha256s['model.safetensors']);
  });
});

describe('adapter export refusals', () => {
  it('--adapter on a LISA run is EXPORT_RUN_NOT_LORA and writes nothing', async () => {
    const dir = out();
    const err = await exportRun({ store: store(), runId: 'lisa-run', out: dir, adapter: true }).catch((e) => e);
    expect([err.code, err.message]).toEqual([
      'EXPORT_RUN_NOT_LORA',
      "run 'lisa-run' was trained with method lisa; adapter exports need a method lora run (export its merged model or a delta instead)",
    ]);
    expect(await stat(dir).catch(() => null)).toBeNull();
  });

  it('adapter and delta together are EXPORT_OPTIONS_INVALID', async () => {
    const err = await exportRun({ store: store(), runId: 'lora-llama', out: out(), adapter: true, delta: true }).catch((e) => e);
    expect(err.code).toBe('EXPORT_OPTIONS_INVALID');
  });
});
