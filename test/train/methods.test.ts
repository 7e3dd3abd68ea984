/**
 * Methods lora and full in the chunk pipeline: the same exact resume as LISA, what each chunk
 * uploads, a LoRA run's frozen base, and the options each method refuses.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { adapterShapes, LORA_TARGETS } from '../../core/models/lora.ts';
import { trainingBytes } from '../../core/models/memory.ts';
import { unitNames } from '../../core/models/units.ts';
import { headManifest, listSeqs, readManifest } from '../../core/store/manifest.ts';
import { readRunSpec, type RunConfigInput } from '../../core/store/run-spec.ts';
import { decodeUnitObject } from '../../core/store/unit-object.ts';
import { createRun } from '../../core/train/create-run.ts';
import { runChunk } from '../../core/train/chunk.ts';
import { createRunModel, loraConfig, trainingPlan, unitVariables } from '../../core/train/method.ts';
import { materialize } from '../../core/train/run-state.ts';
import { loadRunModel } from '../../core/train/run-model.ts';
import { bytesOf, fsStore, newSources, qaLines, smallLlama, writeBase, writeData } from './harness.ts';
import { referenceLoop } from './reference.ts';

let baseDir: string;
let dataFile: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  baseDir = await writeBase(smallLlama);
  dataFile = await writeData(qaLines(40));
});

const config = (over: Partial<RunConfigInput>): RunConfigInput => ({
  base: baseDir,
  data: dataFile,
  fields: ['question', 'answer'],
  seqLen: 48,
  period: 3,
  steps: 6,
  batchSize: 3,
  lr: 1e-2,
  warmupSteps: 2,
  seed: 5,
  ...over,
});

async function newRun(over: Partial<RunConfigInput>) {
  const store = await fsStore('methods');
  const run = await createRun({ store, input: config(over), ...newSources() });
  return { store, run };
}

describe('method lora', () => {
  it('stores its options with their defaults and every target written out; no LISA option', async () => {
    const { store, run } = await newRun({ method: 'lora' });
    const c = (await readRunSpec(store, run.id)).config;
    expect([c.method, c.loraRank, c.loraAlpha, c.loraDropout, c.loraTargets]).toEqual(['lora', 8, 16, 0, LORA_TARGETS.llama]);
    expect(Object.keys(c).filter((k) => ['activeLayers', 'embedHead', 'layerProbabilities'].includes(k))).toEqual([]);
    const lisa = await newRun({});
    expect([lisa.run.config.method, lisa.run.config.activeLayers, lisa.run.config.embedHead, lisa.run.config.loraRank]).toEqual(['lisa', 2, 'always', undefined]);
  });

  it('2 chunks equal one uninterrupted loop bitwise, dropout masks included; chunks upload adapters only and the base never changes', async () => {
    const { store, run } = await newRun({ method: 'lora', loraRank: 2, loraAlpha: 4, loraDropout: 0.1, loraTargets: ['v_proj', 'q_proj', 'down_proj'] });
    expect(run.config.loraTargets).toEqual(['q_proj', 'v_proj', 'down_proj']);
    const layers = unitNames(smallLlama).filter((u) => u.startsWith('layers.'));
    for (let i = 0; i < 2; i++) {
      const m = await runChunk({ store, run, ...newSources() });
      expect([m.method, m.activeUnits]).toEqual(['lora', layers]);
      // nothing is drawn: no probabilities or sampler state; each block's adapter gradient norm is recorded
      expect([m.probabilities, m.gradNormEma, Object.keys(m.unitGradNorms!)]).toEqual([undefined, undefined, layers]);
      expect(Object.keys(m.units).sort()).toEqual(layers);
      for (const u of layers) expect(m.units[u].seq).toBe(i);
    }
    const head = (await headManifest(store, run.id))!;
    const lora = loraConfig(run.config, smallLlama)!;
    const shapes = adapterShapes(smallLlama, lora);
    for (const [unit, ref] of Object.entries(head.units)) {
      const obj = await decodeUnitObject(ref.key, await store.get(ref.key));
      expect(obj.adamStep, unit).toBe(6);
      expect(obj.tensors.map((t) => [t.name, t.shape]), unit).toEqual([...shapes].filter(([n]) => n.startsWith(`model.${unit}.`)));
    }
    const base = await loadBaseDir(baseDir);
    const stored = await materialize(store, smallLlama, base.weights, head, new Set());
    for (const [name, w] of base.weights) expect(stored.weights.get(name), name).toBe(w);
    const ref = (await referenceLoop(run, 6)).weights;
    expect([...stored.adapters.keys()].sort()).toEqual([...shapes.keys()].sort());
    for (const [name, w] of ref) expect(bytesOf((stored.weights.get(name) ?? stored.adapters.get(name))!).equals(bytesOf(w)), name).toBe(true);
  });

  it('the tensor count is flat across LoRA chunks, dropout on', async () => {
    const { store, run } = await newRun({ method: 'lora', loraRank: 2, loraDropout: 0.2, period: 2, steps: 6 });
    const ctx = newSources();
    await runChunk({ store, run, ...ctx });
    const during: number[] = [];
    const after: number[] = [];
    for (let i = 0; i < 2; i++) {
      await runChunk({ store, run, ...ctx, onStep: () => during.push(tf.memory().numTensors) });
      after.push(tf.memory().numTensors);
    }
    expect([during.length, new Set(during).size, new Set(after).size]).toEqual([4, 1, 1]);
  });

  it("a LoRA run's model at a seq (generate, evaluation) carries the stored adapters; before any chunk, fresh ones", async () => {
    const { store, run } = await newRun({ method: 'lora', loraRank: 2, steps: 3 });
    const m = await runChunk({ store, run, ...newSources() });
    const stored = await materialize(store, smallLlama, (await loadBaseDir(baseDir)).weights, m, new Set());
    const at = async (seq?: number) => (await loadRunModel({ store, run, at: seq, ...newSources() })).model;
    const head = await at();
    for (const [name, v] of head.adapters) expect(bytesOf(v.dataSync() as Float32Array).equals(bytesOf(stored.adapters.get(name)!)), name).toBe(true);
    const fresh = await at(-1);
    expect([...fresh.adapters].filter(([n]) => n.endsWith('lora_B.weight')).every(([, v]) => (v.dataSync() as Float32Array).every((x) => x === 0))).toBe(true);
    head.dispose();
    fresh.dispose();
  });

  it('the size check counts the adapters as what trains and the whole base as frozen weights', async () => {
    const { run } = await newRun({ method: 'lora', loraRank: 2 });
    const blocks = unitNames(smallLlama).filter((u) => u.startsWith('layers.'));
    const adapters = [...adapterShapes(smallLlama, loraConfig(run.config, smallLlama)!).values()].reduce((n, [r, c]) => n + r * c, 0);
    const plan = trainingPlan(run, smallLlama, blocks, 48);
    expect(plan).toEqual({ units: [], adapterValues: adapters, batchSize: 3, seqLen: 48 });
    // each adapter value: its weight, gradient, m and v in float32
    expect(trainingBytes(smallLlama, plan) - trainingBytes(smallLlama, { units: [], batchSize: 3, seqLen: 48 })).toBe(16 * adapters);
  });

  it('trains only adapters: the varList holds no base tensor', async () => {
    const { run } = await newRun({ method: 'lora', loraRank: 1 });
    const model = createRunModel(run, smallLlama, { weights: (await loadBaseDir(baseDir)).weights, adapters: new Map() });
    const vars = unitVariables(run, model, unitNames(smallLlama));
    const names = [...vars.values()].flat().map(([n]) => n);
    expect(names.length).toBe(model.adapters.size);
    expect(names.every((n) => model.adapters.has(n) && !model.params.has(n))).toBe(true);
    expect(vars.get('embed')).toEqual([]);
    model.dispose();
  });
});

describe('method full', () => {
  it('every chunk trains and uploads every unit; 2 chunks equal one uninterrupted loop bitwise', async () => {
    const { store, run } = await newRun({ method: 'full' });
    for (let i = 0; i < 2; i++) {
      const m = await runChunk({ store, run, ...newSources() });
      expect(m.activeUnits).toEqual(unitNames(smallLlama));
      expect(Object.values(m.units).map((u) => u.seq)).toEqual(Array(unitNames(smallLlama).length).fill(i));
    }
    const head = (await headManifest(store, run.id))!;
    const base = await loadBaseDir(baseDir);
    const stored = await materialize(store, smallLlama, base.weights, head, new Set());
    const ref = await referenceLoop(run, 6);
    for (const [name, w] of ref.weights) {
      expect(bytesOf(stored.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
      expect(bytesOf(w).equals(bytesOf(base.weights.get(name)!)), `${name} trained`).toBe(false);
    }
    expect(await listSeqs(store, run.id)).toEqual([0, 1]);
    const stored1 = await readManifest(store, run.id, 1);
    expect([stored1.method, 'probabilities' in stored1, 'gradNormEma' in stored1]).toEqual(['full', false, false]);
  });
});

describe('bad input: each a coded error naming the option, nothing written', () => {
  const cases: Array<[string, Partial<RunConfigInput>, string]> = [
    ['a LoRA option on a LISA run', { loraRank: 4 }, "loraRank: applies to method lora only; this run's method is lisa"],
    ['a LoRA option on a full run', { method: 'full', loraTargets: ['q_proj'] }, "loraTargets: applies to method lora only; this run's method is full"],
    ['a LISA option on a LoRA run', { method: 'lora', activeLayers: 2 }, "activeLayers: applies to method lisa only; this run's method is lora"],
    ['a sampler option on a full run', { method: 'full', sampler: 'outlier' }, "sampler: applies to method lisa only; this run's method is full"],
    ['rank 0', { method: 'lora', loraRank: 0 }, 'loraRank: Too small: expected number to be >0'],
    ['a rank larger than the layer', { method: 'lora', loraRank: 9 }, 'loraRank: rank 9 exceeds model.layers.0.self_attn.k_proj (16 -> 8 features); expected 1 to 8'],
    ['an unknown target', { method: 'lora', loraTargets: ['q_proj', 'qkv'] }, 'loraTargets: "qkv" is not a linear layer of a llama block; expected some of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj'],
    ['dropout 1', { method: 'lora', loraDropout: 1 }, 'loraDropout: Too big: expected number to be <1'],
  ];
  it.each(cases)('%s', async (_what, over, message) => {
    const store = await fsStore('methods-bad');
    const err = await createRun({ store, input: config(over), ...newSources() }).catch((e) => e);
    expect(err.code).toBe('RUN_CONFIG_INVALID');
    expect(err.message).toBe(`invalid run config: ${message}`);
    expect(await store.list('')).toEqual([]);
  });
});
