import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeRuns, exportRun } from '../../core/merge/index.ts';
import { dare, taskArithmetic, ties } from '../../core/merge/kernels.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { unitOf } from '../../core/models/units.ts';
import { rngFor } from '../../core/lisa/rng.ts';
import { fsStore, makeBase, makeRun, tempDir, TINY } from './helpers.ts';

let root: string;
let cleanup: () => Promise<void>;
let baseDir: string;
let base: Awaited<ReturnType<typeof makeBase>>;
let a: Map<string, Float32Array>;
let b: Map<string, Float32Array>;
let headSha: string;
const store = () => fsStore(join(root, 'store'));
let n = 0;
const out = () => join(root, `out-${n++}`);

beforeAll(async () => {
  ({ path: root, cleanup } = await tempDir());
  baseDir = join(root, 'base');
  base = await makeBase(baseDir);
  a = (await makeRun(store(), 'ra', baseDir, base, [{ units: ['embed', 'layers.0'] }, { units: ['layers.0'] }], TINY, 11)).at(-1)!;
  b = (await makeRun(store(), 'rb', baseDir, base, [{ units: ['layers.0', 'layers.2'] }], TINY, 12)).at(-1)!;
  headSha = (await exportRun({ store: store(), runId: 'ra', out: out() })).sha256s['model.safetensors'];
});
afterAll(() => cleanup());

describe('composeRuns of one run', () => {
  it.each([
    ['task-arithmetic', {}],
    ['linear', { weight: 3 }],
    ['ties', { density: 1 }],
    ['dare', { density: 1 }],
  ] as const)('%s at full strength gives back the run export byte for byte', async (method, p) => {
    const density = 'density' in p ? p.density : undefined;
    const weight = 'weight' in p ? p.weight : 1;
    const summary = await composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra', weight }], method, density, out: out() });
    expect(summary.sha256s['model.safetensors']).toBe(headSha);
    expect(summary.units).toEqual(['embed', 'layers.0']);
  });
});

describe('composeRuns of two runs', () => {
  /** Each tensor of a unit some run trained is the kernel's output; every other tensor is the base's. */
  async function expectMerged(dir: string, merge: (name: string, b0: Float32Array, thetas: Float32Array[]) => Float32Array): Promise<void> {
    const loaded = await loadBaseDir(dir);
    for (const [name, b0] of base.weights) {
      const unit = unitOf(TINY, name);
      const expected = ['embed', 'layers.0', 'layers.2'].includes(unit) ? merge(name, b0, [a.get(name)!, b.get(name)!]) : b0;
      expect(loaded.weights.get(name), name).toEqual(expected);
    }
  }

  it('task arithmetic adds λ·Σ w_i·(θ_i − base), only in trained units', async () => {
    const dir = out();
    const s = await composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra', weight: 0.5 }, { runId: 'rb', weight: 2 }], method: 'task-arithmetic', lambda: 0.7, out: dir });
    expect(s.units).toEqual(['embed', 'layers.0', 'layers.2']);
    expect(s.runs).toEqual([
      { runId: 'ra', seq: 1, weight: 0.5 },
      { runId: 'rb', seq: 0, weight: 2 },
    ]);
    await expectMerged(dir, (_, b0, t) => taskArithmetic(b0, t, [0.5, 2], 0.7));
  });

  it('ties trims, elects and averages per tensor', async () => {
    const dir = out();
    await composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra' }, { runId: 'rb', weight: 0.5 }], method: 'ties', density: 0.3, out: dir });
    await expectMerged(dir, (_, b0, t) => ties(b0, t, [1, 0.5], { density: 0.3, lambda: 1 }));
  });

  it('dare is deterministic from the seed, with one stream per run and tensor', async () => {
    const run = (seed: number, dir: string) =>
      composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra' }, { runId: 'rb' }], method: 'dare', density: 0.5, seed, consensus: true, out: dir });
    const dir = out();
    const first = await run(5, dir);
    expect((await run(5, out())).sha256s['model.safetensors']).toBe(first.sha256s['model.safetensors']);
    expect((await run(6, out())).sha256s['model.safetensors']).not.toBe(first.sha256s['model.safetensors']);
    await expectMerged(dir, (name, b0, t) =>
      dare(b0, t, [1, 1], { density: 0.5, lambda: 1, consensus: true }, [rngFor(5, `lisa.merge.dare:ra@1:${name}`, 0), rngFor(5, `lisa.merge.dare:rb@0:${name}`, 0)]),
    );
  });

  it('uses the seq asked for', async () => {
    const dir = out();
    const s = await composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra', at: 0 }], method: 'task-arithmetic', out: dir });
    expect(s.runs[0].seq).toBe(0);
    expect(s.sha256s['model.safetensors']).toBe((await exportRun({ store: store(), runId: 'ra', at: 0, out: out() })).sha256s['model.safetensors']);
  });
});

describe('composeRuns refuses', () => {
  it('runs of another base, naming them', async () => {
    const otherDir = join(root, 'base-other');
    const other = await makeBase(otherDir, TINY, 5);
    await makeRun(store(), 'rx', otherDir, other, [{ units: ['layers.1'] }]);
    const err = await composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra' }, { runId: 'rx' }], method: 'linear', out: out() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'COMPOSE_BASE_MISMATCH' });
    expect((err as Error).message).toContain(`rx (${other.sha256})`);
    expect((err as Error).message).toContain(base.sha256);
  });

  it('ties and dare without a density, and bad parameters', async () => {
    const runs = [{ runId: 'ra' }];
    await expect(composeRuns({ base: baseDir, store: store(), runs, method: 'ties', out: out() })).rejects.toMatchObject({ code: 'MERGE_PARAMETERS_INVALID' });
    await expect(composeRuns({ base: baseDir, store: store(), runs, method: 'dare', density: 0, out: out() })).rejects.toMatchObject({ code: 'MERGE_PARAMETERS_INVALID' });
    await expect(composeRuns({ base: baseDir, store: store(), runs, method: 'ties', density: 0.5, consensus: true, out: out() })).rejects.toMatchObject({
      code: 'MERGE_PARAMETERS_INVALID',
    });
    await expect(
      composeRuns({ base: baseDir, store: store(), runs: [{ runId: 'ra', weight: 1 }, { runId: 'rb', weight: -1 }], method: 'linear', out: out() }),
    ).rejects.toMatchObject({ code: 'MERGE_PARAMETERS_INVALID' });
  });
});
