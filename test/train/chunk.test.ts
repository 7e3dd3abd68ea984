import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { unitNames, unitOf } from '../../core/models/units.ts';
import { headManifest, listSeqs, readManifest } from '../../core/store/manifest.ts';
import { readRunSpec, type RunConfigInput, type RunSpec } from '../../core/store/run-spec.ts';
import { unitsPrefix } from '../../core/store/keys.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { createRun } from '../../core/train/create-run.ts';
import { l2Distance, runChunk } from '../../core/train/chunk.ts';
import { materialize } from '../../core/train/run-state.ts';
import { bytesOf, fsStore, newSources, qaLines, smallLlama, storeKinds, tinyRun, writeData, writeTinyRunInputs } from './harness.ts';
import { periodUnits, referenceLoop } from './reference.ts';

let baseDir: string;
let dataFile: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  ({ baseDir, dataFile } = await writeTinyRunInputs());
});

const config = (over: Partial<RunConfigInput> = {}): RunConfigInput => tinyRun(baseDir, dataFile, over);

for (const kind of storeKinds('chunks')) {
  describe(`chunks on the ${kind.name} store`, () => {
    async function newRun(over: Partial<RunConfigInput> = {}): Promise<{ store: ObjectStore; run: RunSpec; ctx: ReturnType<typeof newSources> }> {
      const store = await kind.open();
      const ctx = newSources();
      const run = await createRun({ store, input: config(over), ...ctx });
      return { store, run, ctx };
    }

    it('4 chunks of K steps, each from the store alone, equal one uninterrupted 4K-step loop bitwise (cpu)', async () => {
      const { store, run } = await newRun();
      for (let i = 0; i < 4; i++) {
        const m = await runChunk({ store, run, ...newSources() });
        expect(m.seq).toBe(i);
        expect(m.globalStep).toBe(3 * (i + 1));
      }
      const head = (await headManifest(store, run.id))!;
      const ref = await referenceLoop(run, 12);
      const stored = await materialize(store, ref.base.spec, ref.base.weights, head, new Set(unitNames(ref.base.spec)));
      for (const [name, w] of ref.weights) expect(bytesOf(stored.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
      expect([...stored.adamSteps.keys()].sort()).toEqual([...ref.states.keys()].sort());
      for (const [unit, state] of ref.states) {
        expect(stored.adamSteps.get(unit), unit).toBe(state.step);
        for (const [name, s] of state.slots) {
          expect(bytesOf(stored.adam.get(name)!.m).equals(bytesOf(s.m)), `${name}.m`).toBe(true);
          expect(bytesOf(stored.adam.get(name)!.v).equals(bytesOf(s.v)), `${name}.v`).toBe(true);
        }
      }
    });

    it('resume is bitwise on wasm too (its kernels are single-threaded and deterministic)', async () => {
      await initEngine({ backend: 'wasm' });
      try {
        const { store, run } = await newRun({ steps: 6 });
        for (let i = 0; i < 2; i++) await runChunk({ store, run, ...newSources() });
        const ref = await referenceLoop(run, 6);
        const stored = await materialize(store, ref.base.spec, ref.base.weights, await headManifest(store, run.id), new Set());
        for (const [name, w] of ref.weights) expect(bytesOf(stored.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
      } finally {
        await initEngine({ backend: 'cpu' });
      }
    });

    it('uploads exactly the active units; untouched units stay byte-identical to the base', async () => {
      const { store, run } = await newRun({ steps: 9 });
      const base = await loadBaseDir(baseDir);
      for (let i = 0; i < 3; i++) await runChunk({ store, run, ...newSources() });
      const keys = await store.list(unitsPrefix(run.id));
      const touched = new Set<string>();
      for (const seq of await listSeqs(store, run.id)) {
        const m = await readManifest(store, run.id, seq);
        expect(m.activeUnits).toEqual(periodUnits(run, seq));
        const written = keys.filter((k) => k.includes(`/${String(seq).padStart(8, '0')}-`)).map((k) => k.slice(unitsPrefix(run.id).length).split('/')[0]);
        expect(written.sort()).toEqual([...m.activeUnits].sort());
        for (const u of m.activeUnits) {
          expect(m.units[u].seq).toBe(seq);
          touched.add(u);
        }
      }
      const head = (await headManifest(store, run.id))!;
      expect(Object.keys(head.units).sort()).toEqual([...touched].sort());
      const untouched = unitNames(smallLlama).filter((u) => !touched.has(u));
      expect(untouched.length).toBeGreaterThan(0);
      const stored = await materialize(store, smallLlama, base.weights, head, new Set());
      for (const [name, w] of base.weights) {
        const same = bytesOf(stored.weights.get(name)!).equals(bytesOf(w));
        expect(same, name).toBe(!touched.has(unitOf(smallLlama, name)));
      }
    });

    it('a re-sampled unit resumes its stored m and v under restore, and starts from zero under reset', async () => {
      const restore = await newRun({ steps: 12 });
      const reset = await newRun({ steps: 12, optimizerState: 'reset' });
      for (let i = 0; i < 4; i++) {
        await runChunk({ store: restore.store, run: restore.run, ...newSources() });
        await runChunk({ store: reset.store, run: reset.run, ...newSources() });
      }
      const periods = [0, 1, 2, 3].map((p) => periodUnits(restore.run, p));
      const count = (u: string) => periods.filter((units) => units.includes(u)).length;
      const base = await loadBaseDir(baseDir);
      const a = await materialize(restore.store, smallLlama, base.weights, await headManifest(restore.store, restore.run.id), new Set());
      const b = await materialize(reset.store, smallLlama, base.weights, await headManifest(reset.store, reset.run.id), new Set());
      const resampled = [...a.adamSteps.keys()].filter((u) => count(u) > 1);
      expect(resampled).toContain('embed');
      for (const u of a.adamSteps.keys()) {
        expect(a.adamSteps.get(u), `restore ${u}`).toBe(3 * count(u));
        expect(b.adamSteps.get(u), `reset ${u}`).toBe(3);
      }
      // The reset run equals the reference that clears state at each period start.
      const ref = await referenceLoop(reset.run, 12);
      for (const [name, w] of ref.weights) expect(bytesOf(b.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
    });

    it('a chunk stopped by its deadline leaves the rest of its period to the next chunk; the result is unchanged', async () => {
      const { store, run } = await newRun({ steps: 6 });
      let clock = 0;
      const now = () => (clock += 1000); // every reading advances one second
      const first = await runChunk({ store, run, ...newSources(), now, deadline: 9_500, commitReserveSeconds: 2 });
      expect(first.stoppedBy).toBe('deadline');
      expect(first.globalStep).toBeGreaterThan(0);
      expect(first.globalStep).toBeLessThan(3);
      const rest = await runChunk({ store, run, ...newSources() });
      expect(rest.period).toBe(0);
      expect(rest.activeUnits).toEqual(first.activeUnits);
      expect(rest.globalStep).toBe(3);
      await runChunk({ store, run, ...newSources() });
      const head = (await headManifest(store, run.id))!;
      expect(head.stoppedBy).toBe('run-complete');
      const ref = await referenceLoop(run, 6);
      const stored = await materialize(store, smallLlama, ref.base.weights, head, new Set());
      for (const [name, w] of ref.weights) expect(bytesOf(stored.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
      await expect(runChunk({ store, run, ...newSources() })).rejects.toMatchObject({ code: 'RUN_COMPLETE' });
    });

    it('an aborted chunk stops after its current step and commits it', async () => {
      const { store, run } = await newRun();
      const m = await runChunk({ store, run, ...newSources(), signal: AbortSignal.abort() });
      expect([m.stoppedBy, m.startStep, m.globalStep, m.losses.length]).toEqual(['aborted', 0, 1, 1]);
      expect((await runChunk({ store, run, ...newSources() })).globalStep).toBe(3);
    });

    it('16 concurrent attempts at one seq: one commit, 15 CHUNK_CONFLICTs naming it, no orphaned objects', async () => {
      const { store, run } = await newRun({ period: 1 });
      const results = await Promise.allSettled(Array.from({ length: 16 }, () => runChunk({ store, run, ...newSources() })));
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(lost.map((r) => [r.reason.code, r.reason.details.winningSeq])).toEqual(Array(15).fill(['CHUNK_CONFLICT', 0]));
      const head = (await headManifest(store, run.id))!;
      expect(head.seq).toBe(0);
      expect(new Set(await store.list(unitsPrefix(run.id)))).toEqual(new Set(Object.values(head.units).map((u) => u.key)));
    });

    it('two attempts at one seq: exactly one commits, the loser reports CHUNK_CONFLICT and removes its objects', async () => {
      const { store, run } = await newRun();
      const results = await Promise.allSettled([0, 1].map(() => runChunk({ store, run, ...newSources() })));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0].reason).toMatchObject({ code: 'CHUNK_CONFLICT', details: { winningSeq: 0 } });
      const head = (await headManifest(store, run.id))!;
      const referenced = new Set(Object.values(head.units).map((u) => u.key));
      expect(new Set(await store.list(unitsPrefix(run.id)))).toEqual(referenced);
    });

    it('a unit object changed behind our back is refused by sha256, naming the key', async () => {
      const { store, run } = await newRun();
      const m = await runChunk({ store, run, ...newSources() });
      const key = m.units.embed.key;
      const bytes = await store.get(key);
      bytes[bytes.length - 1] ^= 1;
      await store.put(key, bytes);
      const err = await runChunk({ store, run, ...newSources() }).catch((e) => e);
      expect(err).toMatchObject({ code: 'STORE_OBJECT_CORRUPT', details: { key } });
      expect(err.message).toContain(key);
      expect(await listSeqs(store, run.id)).toEqual([0]);
    });

    it('an unknown run id is RUN_NOT_FOUND; an over-budget run gets BUDGET_EXCEEDED and trains nothing', async () => {
      const { store, run } = await newRun({ maxCostUsd: 1e-9 });
      await expect(readRunSpec(store, 'no-such-run')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
      await runChunk({ store, run, ...newSources(), usdPerHour: 10 });
      const err = await runChunk({ store, run, ...newSources(), usdPerHour: 10 }).catch((e) => e);
      expect(err.code).toBe('BUDGET_EXCEEDED');
      expect(err.details.spentUsd).toBeGreaterThan(1e-9);
      expect(await listSeqs(store, run.id)).toEqual([0]);
    });

    it('the tensor count is flat across steps and chunks', async () => {
      const { store, run } = await newRun({ steps: 12 });
      const ctx = newSources();
      await runChunk({ store, run, ...ctx });
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        await runChunk({ store, run, ...ctx, onStep: () => counts.push(tf.memory().numTensors) });
        counts.push(tf.memory().numTensors);
      }
      expect(new Set(counts.filter((_, i) => i % 4 === 3)).size).toBe(1);
      expect(new Set(counts.filter((_, i) => i % 4 !== 3)).size).toBe(1);
    });
  });
}

describe('update norms', () => {
  it("each manifest records every active unit's ‖after − before‖₂, read back from the unit objects", async () => {
    const store = await fsStore('update-norms');
    const run = await createRun({ store, input: config({ steps: 9 }), ...newSources() });
    for (let i = 0; i < 3; i++) await runChunk({ store, run, ...newSources() });
    const base = await loadBaseDir(baseDir);
    const all = new Set(unitNames(smallLlama));
    let parent = null;
    for (const seq of await listSeqs(store, run.id)) {
      const m = await readManifest(store, run.id, seq);
      const before = await materialize(store, smallLlama, base.weights, parent, all);
      const after = await materialize(store, smallLlama, base.weights, m, all);
      expect(Object.keys(m.unitUpdateNorms!)).toEqual(m.activeUnits);
      for (const unit of m.activeUnits) {
        // the unit object's tensor order, as the chunk summed them
        const names = [...base.weights.keys()].filter((n) => unitOf(smallLlama, n) === unit);
        let sum = 0;
        for (const n of names) {
          const [a, b] = [before.weights.get(n)!, after.weights.get(n)!];
          for (let i = 0; i < a.length; i++) sum += (b[i] - a[i]) ** 2;
        }
        expect(m.unitUpdateNorms![unit], `chunk ${seq} ${unit}`).toBeCloseTo(Math.sqrt(sum), 14);
        expect(m.unitUpdateNorms![unit]).toBeGreaterThan(0);
      }
      parent = m;
    }
  });

  it('l2Distance sums over every pair of tensors as one vector', () => {
    const a = new Float32Array([1, 2, 3]);
    const b = new Float32Array([1, 5, 7]);
    expect(l2Distance([[a, b]])).toBe(5);
    expect(l2Distance([[a, b], [new Float32Array([0]), new Float32Array([12])]])).toBe(13);
    expect(l2Distance([])).toBe(0);
  });
});

describe('run creation', () => {
  it('refuses a dataset line without the mapped field, naming file:line and the field', async () => {
    const store = await fsStore('create');
    const data = await writeData([...qaLines(2), JSON.stringify({ question: 'q?', solution: 'a' })]);
    const err = await createRun({ store, input: config({ data }), ...newSources() }).catch((e) => e);
    expect(err.code).toBe('DATA_MISSING_FIELD');
    expect(err.message).toBe(`${data}:3: missing field "answer" (the line has: question, solution; the field mapping is: question, answer)`);
    expect(await store.list('')).toEqual([]);
  });

  it('refuses an empty dataset and a γ larger than the model', async () => {
    const store = await fsStore('create');
    const empty = await writeData([]);
    await expect(createRun({ store, input: config({ data: empty }), ...newSources() })).rejects.toMatchObject({ code: 'DATA_EMPTY' });
    const err = await createRun({ store, input: config({ activeLayers: 9 }), ...newSources() }).catch((e) => e);
    expect(err.code).toBe('RUN_CONFIG_INVALID');
    expect(err.message).toBe("invalid run config: activeLayers: γ=9 exceeds the base's 4 layers");
    expect(await store.list('')).toEqual([]);
  });

  it('refuses unknown and ill-typed options with their paths', async () => {
    const store = await fsStore('create');
    const err = await createRun({ store, input: { ...config(), period: 0, lr: 'fast' } as unknown as RunConfigInput, ...newSources() }).catch((e) => e);
    expect(err.code).toBe('RUN_CONFIG_INVALID');
    expect(err.details.problems.map((p: { path: string }) => p.path).sort()).toEqual(['lr', 'period']);
  });

  it('a run id is claimed once', async () => {
    const store = await fsStore('create');
    const run = await createRun({ store, input: config(), runId: 'mine', ...newSources() });
    expect((await readRunSpec(store, 'mine')).config).toEqual(run.config);
    await expect(createRun({ store, input: config(), runId: 'mine', ...newSources() })).rejects.toMatchObject({ code: 'RUN_EXISTS' });
  });
});
