/**
 * What LISA saves per chunk: bytes uploaded against a full checkpoint (all weights + AdamW m, v)
 * and against the expected (|embed| + |head| + γ·|block|) / |all|; and engine memory of one
 * training step (tf.profile peak bytes, plus the optimizer state held) under LISA against
 * training every unit, same model and batch.
 *
 *   npx tsx bench/chunk.ts            prints a table, writes bench/results/chunk.json
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { initEngine } from '../core/engine/index.ts';
import { parseConfig, type ModelSpec } from '../core/models/config.ts';
import { createModel, randomWeights } from '../core/models/model.ts';
import { saveModelDir } from '../core/models/load.ts';
import { tensorShapes, unitNames, unitOf } from '../core/models/units.ts';
import { adamwStep } from '../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup } from '../core/optim/state.ts';
import { openStore } from '../core/store/open.ts';
import { createRun } from '../core/train/create-run.ts';
import { adamwConfig, runChunk } from '../core/train/chunk.ts';
import { ResourceCache } from '../core/train/resources.ts';
import { createSources } from '../core/train/sources.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GAMMA = 2;
const configs: Array<{ name: string; spec: ModelSpec; seqLen: number; batch: number }> = [
  {
    name: 'stories260K',
    spec: await specOf('../models/stories260K'),
    seqLen: 128,
    batch: 8,
  },
  {
    name: 'llama-5M',
    spec: { arch: 'llama', vocabSize: 512, dim: 256, nLayers: 6, nHeads: 8, nKvHeads: 8, headDim: 32, hiddenDim: 688, maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true, bosId: 1, eosId: 2 },
    seqLen: 64,
    batch: 4,
  },
];

async function specOf(dir: string): Promise<ModelSpec> {
  return parseConfig(JSON.parse(await readFile(new URL(`${dir}/config.json`, import.meta.url), 'utf8')), dir);
}

const backend = await initEngine({ backend: (process.env.LISA_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm' });
const tokenizer = await readFile(new URL('../models/stories260K/tokenizer.bin', import.meta.url));
const data = new URL('../data/gsm8k/test.jsonl', import.meta.url).pathname;
const rows = [];

for (const { name, spec, seqLen, batch } of configs) {
  const dir = join(await mkdtemp(join(tmpdir(), 'lisa-bench-')), 'base');
  await saveModelDir(dir, spec, randomWeights(spec, 1), { files: { 'tokenizer.bin': tokenizer } });
  const unitParams = new Map<string, number>();
  for (const [n, shape] of tensorShapes(spec)) {
    const u = unitOf(spec, n);
    unitParams.set(u, (unitParams.get(u) ?? 0) + shape.reduce((a, b) => a * b, 1));
  }
  const all = [...unitParams.values()].reduce((a, b) => a + b, 0);
  const expected = (unitParams.get('embed')! + unitParams.get('head')! + GAMMA * unitParams.get('layers.0')!) / all;

  // One real chunk on a local store: what it uploads.
  const store = openStore(await mkdtemp(join(tmpdir(), 'lisa-bench-store-')));
  const ctx = { sources: createSources((u) => openStore(u)), cache: new ResourceCache() };
  const run = await createRun({
    store,
    ...ctx,
    input: { base: dir, data, fields: ['question', 'answer'], seqLen, activeLayers: GAMMA, period: 1, steps: 4, batchSize: batch, seed: 1 },
  });
  const m = await runChunk({ store, run, ...ctx });
  const full = all * 3 * 4;

  // Engine memory of one step: LISA's active units against every unit.
  const memory = async (units: string[]) => {
    const weights = randomWeights(spec, 2);
    const model = createModel(spec, weights);
    const before = tf.memory().numBytes;
    const groups = units.map((u) => createParamGroup(u, [...model.params].filter(([n]) => unitOf(spec, n) === u)));
    const stateBytes = tf.memory().numBytes - before;
    const vars = groups.flatMap((g) => g.slots.map((s) => s.param));
    const hf = new Map(groups.flatMap((g) => g.slots.map((s) => [s.param.name, s.name] as const)));
    const x = tf.randomUniform([batch, seqLen], 0, spec.vocabSize, 'int32') as tf.Tensor2D;
    const mask = tf.ones([batch, seqLen]) as tf.Tensor2D;
    const t0 = performance.now();
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => model.loss(x, x, mask), vars);
      adamwStep(adamwConfig(run), groups, new Map(Object.entries(grads).map(([k, g]) => [hf.get(k)!, g])), 0);
      tf.dispose([value, ...Object.values(grads)]);
    });
    const seconds = (performance.now() - t0) / 1000;
    groups.forEach(disposeParamGroup);
    tf.dispose([x, mask]);
    model.dispose();
    return { stateBytes, peakStepBytes: info.peakBytes, seconds };
  };
  const lisa = await memory(m.activeUnits);
  const everything = await memory(unitNames(spec));
  rows.push({
    model: name,
    params: all,
    activeUnits: m.activeUnits,
    bytesUploaded: m.bytes.out,
    fullCheckpointBytes: full,
    uploadedFraction: m.bytes.out / full,
    expectedFraction: expected,
    lisa,
    allUnits: everything,
    stepMemoryRatio: (lisa.stateBytes + lisa.peakStepBytes) / (everything.stateBytes + everything.peakStepBytes),
  });
}

const mb = (b: number) => (b / 2 ** 20).toFixed(2);
console.log(`backend ${backend}, γ=${GAMMA}, embed+head always\n`);
console.log('model        params   uploaded MiB  full ckpt MiB  fraction  expected | optimizer state MiB (LISA / all)  step peak MiB (LISA / all)  memory ratio');
for (const r of rows) {
  console.log(
    `${r.model.padEnd(12)} ${String(r.params).padStart(8)}  ${mb(r.bytesUploaded).padStart(12)}  ${mb(r.fullCheckpointBytes).padStart(13)}  ${r.uploadedFraction.toFixed(3).padStart(8)}  ${r.expectedFraction.toFixed(3).padStart(8)} | ` +
      `${mb(r.lisa.stateBytes).padStart(8)} / ${mb(r.allUnits.stateBytes).padEnd(22)}  ${mb(r.lisa.peakStepBytes).padStart(8)} / ${mb(r.allUnits.peakStepBytes).padEnd(16)}  ${r.stepMemoryRatio.toFixed(3)}`,
  );
}
await mkdir(new URL('results/', import.meta.url), { recursive: true });
await writeFile(new URL('results/chunk.json', import.meta.url), `${JSON.stringify({ backend, gamma: GAMMA, rows }, null, 2)}\n`);
