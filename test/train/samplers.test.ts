import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { gradNormWeights } from '../../core/lisa/grad-norm.ts';
import { outlierRatio } from '../../core/lisa/outlier.ts';
import { candidateUnits, sampleUnits } from '../../core/lisa/schedule.ts';
import { epochOrder } from '../../core/data/index.ts';
import { manifestKey, runSpecKey } from '../../core/store/keys.ts';
import { headManifest, listSeqs, readManifest, type ChunkManifest } from '../../core/store/manifest.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { encodeRecord } from '../../core/store/records.ts';
import { readRunSpec, type RunConfigInput, type RunSpec } from '../../core/store/run-spec.ts';
import { projectionInputNorms } from '../../core/train/calibrate.ts';
import { runChunk } from '../../core/train/chunk.ts';
import { createRun } from '../../core/train/create-run.ts';
import { materialize } from '../../core/train/run-state.ts';
import { openRunInputs } from '../../core/train/sources.ts';
import { bytesOf, fsStore, newSources, smallLlama, tinyRun, writeTinyRunInputs } from './harness.ts';
import { periodUnits, referenceLoop } from './reference.ts';

let baseDir: string;
let dataFile: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  ({ baseDir, dataFile } = await writeTinyRunInputs());
});

const config = (over: Partial<RunConfigInput> = {}): RunConfigInput => tinyRun(baseDir, dataFile, { steps: 9, ...over });

async function newRun(over: Partial<RunConfigInput> = {}): Promise<{ store: ObjectStore; run: RunSpec }> {
  const store = await fsStore('samplers');
  return { store, run: await createRun({ store, input: config(over), ...newSources() }) };
}

async function chunks(store: ObjectStore, runId: string): Promise<ChunkManifest[]> {
  return Promise.all((await listSeqs(store, runId)).map((seq) => readManifest(store, runId, seq)));
}

/** What a chunk drew and saw, without times, costs and object keys. */
const drawn = (m: ChunkManifest) => ({ period: m.period, units: m.activeUnits, probabilities: m.probabilities, norms: m.unitGradNorms, losses: m.losses });

const SAMPLERS: Array<[string, Partial<RunConfigInput>]> = [
  ['uniform', {}],
  ['weighted', { layerProbabilities: [0, 1, 2, 3] }],
  ['outlier', { sampler: 'outlier', outlierThreshold: 2 }],
  ['grad-norm', { sampler: 'grad-norm', gradNormFloor: 0.3 }],
];

describe('samplers, run by run', () => {
  for (const [name, over] of SAMPLERS) {
    it(`${name}: two runs with the same seed and data draw the same units and train the same`, async () => {
      const a = await newRun({ ...over, steps: 6 });
      const b = await newRun({ ...over, steps: 6 });
      const ctx = newSources();
      for (let i = 0; i < 2; i++) {
        await runChunk({ store: a.store, run: a.run, ...ctx });
        await runChunk({ store: b.store, run: b.run, ...ctx });
      }
      const [ca, cb] = [await chunks(a.store, a.run.id), await chunks(b.store, b.run.id)];
      expect(ca.map(drawn)).toEqual(cb.map(drawn));
      for (const m of ca) {
        expect(m.probabilities!.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
        expect(Object.keys(m.unitGradNorms!).sort()).toEqual([...m.activeUnits].sort());
        expect(Object.values(m.unitGradNorms!).every((g) => g > 0)).toBe(true);
        if (name !== 'grad-norm') expect(m.activeUnits).toEqual(periodUnits(a.run, m.period));
        if (name === 'weighted') expect(m.activeUnits).not.toContain('layers.0');
      }
      expect(ca[0].gradNormEma !== undefined).toBe(name === 'grad-norm');
    });
  }

  it("outlier: run.json keeps each block's ratio over the run's first calibration batches, and chunks draw p ∝ ratio", async () => {
    const { store, run } = await newRun({ sampler: 'outlier', outlierThreshold: 2, calibrationBatches: 2 });
    const { sources, cache } = newSources();
    const { base, dataset } = await openRunInputs(run, sources, cache);
    const examples = epochOrder(dataset, 0).slice(0, 6).map((j) => dataset.train[j]);
    const norms = projectionInputNorms(base, examples, 3);
    const expected = Array.from({ length: smallLlama.nLayers }, (_, l) =>
      outlierRatio(
        [...norms].filter(([m]) => m.startsWith(`model.layers.${l}.`)).map(([m, { kind, norms: featureNorms }]) => {
          const weight = base.weights.get(`${m}.weight`)!;
          return { weight, shape: [weight.length / featureNorms.length, featureNorms.length] as const, layout: kind, featureNorms };
        }),
        2,
      ),
    );
    expect(run.outlier!.ratios).toEqual(expected);
    expect(run.outlier!.tokens).toBe(examples.reduce((n, e) => n + e.ids.length - 1, 0));
    const m = await runChunk({ store, run, ...newSources() });
    const total = expected.reduce((a, b) => a + b, 0);
    expect(m.probabilities).toEqual(expected.map((r) => r / total));
  });

  it('grad-norm: a run cut into chunks at arbitrary points equals one uninterrupted run bitwise', async () => {
    const cut = await newRun({ sampler: 'grad-norm', steps: 12 });
    const whole = await newRun({ sampler: 'grad-norm', steps: 12 });
    const ctx = newSources();
    const stopAfterOneStep = () => ({ signal: AbortSignal.abort() });
    // Steps per chunk: 1 + 2 | 3 | 1 + 1 + 1 | 2 (deadline) + 1
    for (const opts of [stopAfterOneStep(), {}, {}, stopAfterOneStep(), stopAfterOneStep(), {}]) {
      await runChunk({ store: cut.store, run: cut.run, ...ctx, ...opts });
    }
    let clock = 0;
    const deadlined = await runChunk({ store: cut.store, run: cut.run, ...ctx, now: () => (clock += 1000), deadline: 9_500, commitReserveSeconds: 2 });
    expect([deadlined.stoppedBy, deadlined.period]).toEqual(['deadline', 3]);
    await runChunk({ store: cut.store, run: cut.run, ...ctx });
    for (let i = 0; i < 4; i++) await runChunk({ store: whole.store, run: whole.run, ...ctx });

    const [cutChunks, wholeChunks] = [await chunks(cut.store, cut.run.id), await chunks(whole.store, whole.run.id)];
    expect(cutChunks.map((m) => m.globalStep - m.startStep)).toEqual([1, 2, 3, 1, 1, 1, 2, 1]);
    const ref = await referenceLoop(cut.run, 12);
    const byPeriod = (ms: ChunkManifest[]) => [0, 1, 2, 3].map((p) => ms.find((m) => m.period === p)!);
    expect(byPeriod(cutChunks).map((m) => m.activeUnits)).toEqual(ref.draws);
    expect(byPeriod(wholeChunks).map((m) => m.activeUnits)).toEqual(ref.draws);
    expect(byPeriod(cutChunks).map((m) => m.probabilities)).toEqual(wholeChunks.map((m) => m.probabilities));
    expect(cutChunks.at(-1)!.gradNormEma).toEqual(ref.ema);
    expect(wholeChunks.at(-1)!.gradNormEma).toEqual(ref.ema);
    for (const { store, run } of [cut, whole]) {
      const stored = await materialize(store, smallLlama, ref.base.weights, await headManifest(store, run.id), new Set());
      for (const [n, w] of ref.weights) expect(bytesOf(stored.weights.get(n)!).equals(bytesOf(w)), n).toBe(true);
    }
    // The draws adapted: after period 0 (uniform), each period drew from the rule applied to the state before it.
    expect(wholeChunks[0].probabilities).toEqual([0.25, 0.25, 0.25, 0.25]);
    const blocks = candidateUnits(smallLlama.nLayers, 'always');
    for (let p = 1; p < 4; p++) {
      const w = gradNormWeights(wholeChunks[p - 1].gradNormEma!, blocks, 0.2);
      expect(wholeChunks[p].probabilities).toEqual(w.map((x) => x / w.reduce((a, b) => a + b, 0)));
      expect(wholeChunks[p].probabilities).not.toEqual([0.25, 0.25, 0.25, 0.25]);
    }
  });

  it('grad-norm: a committed chunk without its gradient-norm state stops the run with SAMPLER_HISTORY_MISSING', async () => {
    const { store, run } = await newRun({ sampler: 'grad-norm' });
    const m = await runChunk({ store, run, ...newSources() });
    delete m.gradNormEma;
    await store.put(manifestKey(run.id, 0), encodeRecord(m, 1));
    const err = await runChunk({ store, run, ...newSources() }).catch((e) => e);
    expect(err).toMatchObject({ code: 'SAMPLER_HISTORY_MISSING', details: { runId: run.id, seq: 0 } });
    expect(err.message).toContain(`run '${run.id}' samples by gradient norm, but its chunk 0 records no gradNormEma`);
    expect(await listSeqs(store, run.id)).toEqual([0]);
  });

  it('a run.json from before samplers (no sampler named) draws as it did: uniform, or weighted by its layerProbabilities', async () => {
    for (const over of [{}, { layerProbabilities: [1, 0, 0, 1] }]) {
      const { store, run } = await newRun(over);
      const { sampler: _dropped, ...old } = run.config;
      // as written then: version 1, before checksums
      await store.put(runSpecKey(run.id), new TextEncoder().encode(JSON.stringify({ ...run, version: 1, config: old })));
      const m = await runChunk({ store, run: await readRunSpec(store, run.id), ...newSources() });
      const schedule = { nLayers: 4, activeLayers: 2, embedHead: 'always' as const, seed: 5, probabilities: old.layerProbabilities };
      expect(m.activeUnits).toEqual(sampleUnits(schedule, 0));
    }
  });
});

describe('sampler inputs refused at run creation, nothing written', () => {
  const refused = async (over: Partial<RunConfigInput>, code: string, message: string) => {
    const store = await fsStore('samplers-bad');
    const err = await createRun({ store, input: config(over), ...newSources() }).catch((e) => e);
    expect(err.code).toBe(code);
    expect(err.message).toContain(message);
    expect(await store.list('')).toEqual([]);
  };

  it('probabilities of the wrong length or all zero', async () => {
    await refused({ layerProbabilities: [1, 1, 1] }, 'SCHEDULE_CONFIG_INVALID', 'probabilities must have 4 entries (layers.0 …), got 3');
    await refused({ layerProbabilities: [0, 0, 0, 0] }, 'SCHEDULE_CONFIG_INVALID', 'probabilities has 0 positive entries but activeLayers is 2');
    await refused({ layerProbabilities: [1, -1, 1, 1] }, 'RUN_CONFIG_INVALID', 'layerProbabilities.1');
  });

  it('an outlier threshold no block reaches', async () => {
    await refused(
      { sampler: 'outlier', outlierThreshold: 1000 },
      'RUN_CONFIG_INVALID',
      'invalid run config: outlierThreshold: at M=1000 only 0 of 4 blocks have outlier entries (ratios 0, 0, 0, 0); γ=2 needs 2: lower M',
    );
  });

  it('an option on the wrong sampler', async () => {
    await refused({ sampler: 'outlier', gradNormDecay: 0.5 }, 'RUN_CONFIG_INVALID', "gradNormDecay: belongs to sampler 'grad-norm', but this run's sampler is 'outlier'");
  });
});
