import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { openStore } from '../../core/store/open.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { Runs } from '../../core/runs/runs.ts';
import { fsStore, newSources, storeKinds, tempDir, tinyRun, writeTinyRunInputs } from '../train/harness.ts';

let baseDir: string;
let dataFile: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  ({ baseDir, dataFile } = await writeTinyRunInputs());
});

const enc = (s: string) => new TextEncoder().encode(s);

function runsOn(store: ObjectStore, log?: (m: string) => void): Runs {
  return new Runs({ store, ...newSources(), openStore: (url) => openStore(url, { env: process.env }), clock: () => Date.parse('2025-03-04T05:06:07.089Z'), log });
}

for (const kind of storeKinds('history')) {
  describe(`a ${kind.name} store as the dashboard reads it`, () => {
    it('list and overview: every run, a damaged run.json or head manifest named with its code', async () => {
      const store = await kind.open();
      const runs = runsOn(store);
      expect(await runs.list()).toEqual([]);
      await runs.create(tinyRun(baseDir, dataFile, { steps: 6 }), { id: 'b-run' });
      await runs.create(tinyRun(baseDir, dataFile, { steps: 6 }), { id: 'a-run' });
      await runs.chunk('a-run');
      await store.put('runs/broken/run.json', enc('{"version": 1, "id": "bro'));
      await store.put('runs/c-run/chunks/00000000.json', enc('{}'));
      await store.put('runs/not a run/run.json', enc('{}'));
      expect(await runs.list()).toEqual(['a-run', 'b-run', 'broken']);

      const overview = await runs.overview();
      expect(overview.map((o) => [o.id, 'status' in o ? o.status.head?.seq ?? null : o.unreadable.code])).toEqual([
        ['a-run', 0],
        ['b-run', null],
        ['broken', 'STORE_OBJECT_INVALID'],
      ]);
      const broken = overview[2];
      expect('unreadable' in broken && broken.unreadable.key).toBe('runs/broken/run.json');

      await store.put('runs/a-run/chunks/00000000.json', enc('{"seq": '));
      const again = await runs.overview();
      expect('unreadable' in again[0] && again[0].unreadable).toMatchObject({ key: 'runs/a-run/chunks/00000000.json', code: 'STORE_OBJECT_INVALID' });
    });

    it('history: every chunk in seq order, the units, a damaged manifest named and the rest kept', async () => {
      const store = await kind.open();
      const runs = runsOn(store);
      const spec = await runs.create(tinyRun(baseDir, dataFile, { steps: 9 }), { id: 'h' });
      const empty = await runs.history('h');
      expect(empty).toEqual({
        status: await runs.status('h'),
        chunks: [],
        units: ['embed', 'layers.0', 'layers.1', 'layers.2', 'layers.3', 'head'],
        candidates: ['layers.0', 'layers.1', 'layers.2', 'layers.3'],
        outputs: [],
        unreadable: [],
      });
      for (let i = 0; i < 3; i++) await runs.chunk(spec);
      const whole = await runs.history('h');
      expect(whole.chunks.map((c) => [c.seq, c.startStep, c.globalStep])).toEqual([
        [0, 0, 3],
        [1, 3, 6],
        [2, 6, 9],
      ]);
      expect(whole.status).toEqual(await runs.status('h'));
      expect(whole.status.complete).toBe(true);
      for (const c of whole.chunks) expect(Object.keys(c.unitUpdateNorms!)).toEqual(c.activeUnits);

      await store.put('runs/h/chunks/00000001.json', enc('{"version": 1, "runId": "h", "se'));
      const damaged = await runs.history('h');
      expect(damaged.chunks.map((c) => c.seq)).toEqual([0, 2]);
      expect(damaged.unreadable).toHaveLength(1);
      expect(damaged.unreadable[0]).toMatchObject({ key: 'runs/h/chunks/00000001.json', code: 'STORE_OBJECT_INVALID' });
      expect(damaged.unreadable[0].message).toMatch(/^object runs\/h\/chunks\/00000001\.json in store \S+ is damaged: not UTF-8 JSON/);
      expect(damaged.status.head?.seq).toBe(2);

      await expect(runs.history('nope')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
      await expect(runs.manifest('nope', 0)).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
      await expect(runs.manifest('h', 7)).rejects.toMatchObject({ code: 'CHUNK_NOT_FOUND' });
      expect((await runs.manifest('h', 2)).units).toBeDefined();
    });
  });
}

describe('output records', () => {
  it('exports and compositions leave a record in each run; a damaged one is named; a record that cannot be stored is logged, not thrown', async () => {
    const store = await fsStore('outputs');
    const runs = runsOn(store);
    for (const id of ['x', 'y']) {
      await runs.create(tinyRun(baseDir, dataFile, { steps: 3, seed: id === 'x' ? 1 : 2 }), { id });
      await runs.chunk(id);
    }
    const out = await tempDir('outputs-out');
    const exported = await runs.export('x', { out: join(out, 'x') });
    const delta = await runs.export('x', { out: join(out, 'x.delta'), delta: true, at: 0 });
    const composed = await runs.compose({ base: baseDir, runs: [{ runId: 'x' }, { runId: 'y', weight: 0.5 }], method: 'linear', out: join(out, 'xy'), dtype: 'f32' });
    const createdAt = '2025-03-04T05:06:07.089Z';
    const composition = {
      kind: 'composition',
      createdAt,
      out: composed.out,
      method: 'linear',
      runs: composed.runs,
      dtype: 'f32',
      units: composed.units,
      files: composed.files.length,
      bytes: composed.bytes,
      seconds: composed.seconds,
    };
    const byOut = (a: { out: string }, b: { out: string }) => a.out.localeCompare(b.out);
    // one clock reading for all three: their keys differ only in the random part
    expect((await runs.history('x')).outputs.sort(byOut)).toEqual([
      { kind: 'export', createdAt, out: exported.out, seq: 0, delta: false, dtype: 'base', units: exported.units, files: exported.files.length, bytes: exported.bytes, seconds: exported.seconds },
      { kind: 'export', createdAt, out: delta.out, seq: 0, delta: true, dtype: 'base', units: delta.units, files: 1, bytes: delta.bytes, seconds: delta.seconds },
      composition,
    ].sort(byOut));
    expect((await runs.history('y')).outputs).toEqual([composition]);
    const keys = await store.list('runs/x/outputs/');
    expect(keys).toHaveLength(3);
    for (const k of keys) expect(k).toMatch(/^runs\/x\/outputs\/20250304050607089-[0-9a-f]{8}\.json$/);

    await store.put(keys[0], enc('not json'));
    const damaged = await runs.history('x');
    expect(damaged.outputs).toHaveLength(2);
    expect(damaged.unreadable.map((u) => [u.key, u.code])).toEqual([[keys[0], 'STORE_OBJECT_INVALID']]);
    // valid JSON with one value changed: the record's checksum no longer matches
    const edited = new TextDecoder().decode(await store.get(keys[1])).replace(/"files": (\d+)/, (_, n: string) => `"files": ${Number(n) + 1}`);
    await store.put(keys[1], enc(edited));
    expect((await runs.history('x')).unreadable.map((u) => [u.key, u.code])).toEqual([
      [keys[0], 'STORE_OBJECT_INVALID'],
      [keys[1], 'STORE_OBJECT_CORRUPT'],
    ]);

    const logs: string[] = [];
    const failing: ObjectStore = Object.create(store, {
      put: { value: (key: string, body: Uint8Array) => (key.includes('/outputs/') ? Promise.reject(new Error('disk full')) : store.put(key, body)) },
    });
    const summary = await runsOn(failing, (m) => logs.push(m)).export('y', { out: join(out, 'y') });
    expect(summary.files.length).toBeGreaterThan(0);
    expect(logs).toEqual([`export to ${summary.out} is complete, but its record in run 'y' could not be stored: disk full`]);
  });
});
