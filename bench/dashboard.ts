/**
 * What the dashboard costs as runs grow: a directory store of synthetic runs (a 30-block model,
 * γ=2, manifests and empty unit objects as a real run leaves them), then for each size the time to
 * list the runs with their status (the runs page), to read a run's history, to render its page,
 * and the page's size.
 *
 * Times are the median of --repeat calls after one untimed call. Writing the stores takes most of
 * the run (about 7 minutes at the defaults on 2 busy cores: 100,000 objects for 1000 chunks).
 *
 *   npx tsx bench/dashboard.ts [--chunks 10,100,1000] [--runs 20] [--repeat 5]   prints a table, writes bench/results/dashboard.json
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runs } from '../core/runs/runs.ts';
import { FsStore } from '../core/store/fs-store.ts';
import { manifestKey, unitKey } from '../core/store/keys.ts';
import type { ChunkManifest } from '../core/store/manifest.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { parseRunConfig, putRunSpec, type RunSpec } from '../core/store/run-spec.ts';
import { ResourceCache } from '../core/train/resources.ts';
import { createSources } from '../core/train/sources.ts';
import { runPage } from '../functions/dashboard/run-page.ts';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const SIZES = arg('chunks', '10,100,1000').split(',').map(Number);
const RUNS = Number(arg('runs', '20'));
const REPEAT = Number(arg('repeat', '5'));
const LAYERS = 30;
const K = 10;

function spec(id: string, chunks: number): RunSpec {
  return {
    version: 1,
    id,
    createdAt: new Date(0).toISOString(),
    config: parseRunConfig({ base: '/bases/b', data: '/data/d.jsonl', period: K, steps: chunks * K }),
    base: { sha256: '0'.repeat(64), arch: 'llama', nLayers: LAYERS },
    data: { sha256: '0'.repeat(64), examples: 1000, heldOut: 10 },
  };
}

/** A run of `chunks` chunks: run.json, every manifest, and the unit objects' keys (empty). */
async function writeRun(store: ObjectStore, id: string, chunks: number): Promise<void> {
  await putRunSpec(store, spec(id, chunks));
  const units: ChunkManifest['units'] = {};
  const totals = { steps: 0, tokens: 0, seconds: 0, costUsd: 0, bytesIn: 0, bytesOut: 0 };
  for (let seq = 0; seq < chunks; seq++) {
    const active = ['embed', `layers.${(seq * 7) % LAYERS}`, `layers.${(seq * 13 + 1) % LAYERS}`, 'head'];
    for (const u of active) {
      const key = unitKey(id, u, seq, 'bench');
      await store.put(key, new Uint8Array(0));
      units[u] = { key, sha256: '0'.repeat(64), bytes: 0, seq, step: (seq + 1) * K, adamStep: K };
    }
    Object.assign(totals, { steps: totals.steps + K, tokens: totals.tokens + 2560, seconds: totals.seconds + 30, costUsd: totals.costUsd + 0.02 });
    const m: ChunkManifest = {
      version: 1,
      runId: id,
      seq,
      createdAt: new Date(seq * 60_000).toISOString(),
      method: 'lisa',
      period: seq,
      activeUnits: active,
      probabilities: Array.from({ length: LAYERS }, () => 1 / LAYERS),
      unitGradNorms: Object.fromEntries(active.map((u, i) => [u, 1 + i])),
      unitUpdateNorms: Object.fromEntries(active.map((u, i) => [u, 0.01 * (1 + i)])),
      units: { ...units },
      cursor: { epoch: 0, index: seq * 80 },
      startStep: seq * K,
      globalStep: (seq + 1) * K,
      losses: Array.from({ length: K }, (_, i) => 3 - 0.001 * (seq * K + i)),
      learningRates: Array.from({ length: K }, () => 3e-4),
      tokens: 2560,
      heldOut: { loss: 2.9, perplexity: 18 },
      stoppedBy: 'period',
      seconds: { wall: 30, load: 2, train: 26, upload: 2, accelerator: 0 },
      bytes: { in: 0, out: 0 },
      costUsd: 0.02,
      totals: { ...totals },
    };
    await store.put(manifestKey(id, seq), new TextEncoder().encode(JSON.stringify(m, null, 1)));
  }
}

/** The median of REPEAT timed calls, after one untimed call (module loading, JIT, the OS's file cache). */
async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  let value = await work();
  const ms: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const t0 = performance.now();
    value = await work();
    ms.push(performance.now() - t0);
  }
  return { value, ms: ms.sort((a, b) => a - b)[Math.floor(REPEAT / 2)] };
}

const rows = [];
for (const chunks of SIZES) {
  const dir = await mkdtemp(join(tmpdir(), 'lisa-bench-dashboard-'));
  const store = new FsStore(dir);
  for (let r = 0; r < RUNS; r++) await writeRun(store, `run-${r}`, chunks);
  const runs = new Runs({ store, sources: createSources(() => store), cache: new ResourceCache(), openStore: () => store });
  const keys = (await store.list('runs/')).length;
  const overview = await timed(() => runs.overview());
  const history = await timed(() => runs.history('run-0'));
  const render = await timed(async () => String(await runPage(history.value, 'update')));
  rows.push({
    chunks,
    runs: RUNS,
    keysUnderRuns: keys,
    overviewMs: Math.round(overview.ms),
    historyMs: Math.round(history.ms),
    renderMs: Math.round(render.ms),
    pageKiB: Math.round(Buffer.byteLength(render.value) / 1024),
    heatCells: history.value.units.length * history.value.chunks.length,
  });
  await rm(dir, { recursive: true, force: true });
}

console.log(`dashboard on a directory store: ${RUNS} runs of a ${LAYERS}-block model, each of N chunks (γ=2, K=${K}); median of ${REPEAT}\n`);
console.log('chunks per run | keys under runs/ | runs page (list + status of each) | run history | render run page | page size | heat-map cells');
for (const r of rows) {
  console.log(`${String(r.chunks).padStart(14)} | ${String(r.keysUnderRuns).padStart(16)} | ${`${r.overviewMs} ms`.padStart(33)} | ${`${r.historyMs} ms`.padStart(11)} | ${`${r.renderMs} ms`.padStart(15)} | ${`${r.pageKiB} KiB`.padStart(9)} | ${r.heatCells}`);
}
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/dashboard.json', import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
