/**
 * Importance sampling against uniform: LISA (γ = 2) on the bundled stories260K and GSM8K, each
 * sampler for the same steps on the same seeds (a seed fixes the data order and the held-out
 * split, so runs of one seed differ only in which blocks trained). Reports the final held-out
 * loss (mean ± sd over seeds; each sampler against uniform by paired differences, a tie unless
 * the mean difference clears t·sd/√n at 95%), how often each block trained, wall time with the
 * outlier calibration, and what sampling itself costs per chunk.
 *
 *   npm run bench:sampling [-- --steps 100 --period 5 --seeds 3]
 *
 * prints tables, writes bench/results/sampling.json and bench/results/sampling.svg (the figure
 * in docs/sampling.md is a copy of it); `-- --replot` redraws the figure from the JSON.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TopLevelSpec } from 'vega-lite';
import { initEngine } from '../core/engine/index.ts';
import { observeGradNorms } from '../core/lisa/grad-norm.ts';
import { trainingFrequency } from '../core/lisa/samplers.ts';
import { candidateUnits } from '../core/lisa/schedule.ts';
import { listSeqs, readManifest, type ChunkManifest } from '../core/store/manifest.ts';
import { openStore } from '../core/store/open.ts';
import type { LisaConfig, RunConfigInput, RunSpec, SamplerKind } from '../core/store/run-spec.ts';
import { runChunk } from '../core/train/chunk.ts';
import { createRun } from '../core/train/create-run.ts';
import { heldOutLoss } from '../core/train/evaluate.ts';
import { isLisa } from '../core/train/method.ts';
import { ResourceCache } from '../core/train/resources.ts';
import { loadRunModel } from '../core/train/run-model.ts';
import { chunkDraw, samplerOf } from '../core/train/sampling.ts';
import { createSources } from '../core/train/sources.ts';
import { renderSvg } from './svg.ts';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '100' },
    period: { type: 'string', default: '5' },
    seeds: { type: 'string', default: '3' },
    replot: { type: 'boolean', default: false },
  },
});
const STEPS = Number(args.steps);
const PERIOD = Number(args.period);
const SEEDS = Array.from({ length: Number(args.seeds) }, (_, i) => i);
const SAMPLERS: SamplerKind[] = ['uniform', 'outlier', 'grad-norm'];
const repo = (p: string) => new URL(`../${p}`, import.meta.url).pathname;

const backend = await initEngine({ backend: (process.env.LISA_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm' });
const sources = createSources((url) => openStore(url));
const cache = new ResourceCache();

const config = (sampler: SamplerKind, seed: number): RunConfigInput => ({
  base: repo('models/stories260K'),
  data: repo('data/gsm8k/train.jsonl'),
  fields: ['question', 'answer'],
  seqLen: 128,
  heldOut: 64,
  activeLayers: 2,
  period: PERIOD,
  steps: STEPS,
  batchSize: 8,
  lr: 3e-3,
  warmupSteps: 5,
  seed,
  sampler,
});

interface RunResult {
  sampler: SamplerKind;
  seed: number;
  heldOut: number;
  /** run creation (data preparation and, for outlier, calibration) */
  createSeconds: number;
  calibrationSeconds: number;
  chunkSeconds: number[];
  /** the draw and the gradient-norm bookkeeping of each chunk, timed in isolation */
  samplingSeconds: number[];
  /** share of periods each block trained */
  frequency: number[];
  /** what the last period drew from */
  lastProbabilities: number[];
}

/** Seconds per call of f, over enough calls to be above the clock's resolution. */
function secondsPer(f: () => void): number {
  const reps = 200;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / 1000 / reps;
}

/** What choosing the units costs a chunk: its draw, and for grad-norm one state update per step. */
function samplingCost(run: RunSpec<LisaConfig>, m: ChunkManifest, parent: ChunkManifest | null): number {
  const sampler = samplerOf(run);
  const draw = secondsPer(() => chunkDraw(run, m.period, parent));
  const steps = m.globalStep - m.startStep;
  const update = sampler.kind === 'grad-norm' ? secondsPer(() => observeGradNorms(parent?.gradNormEma ?? {}, m.unitGradNorms!, sampler.decay)) : 0;
  return draw + steps * update;
}

async function train(sampler: SamplerKind, seed: number): Promise<RunResult> {
  const store = openStore(await mkdtemp(join(tmpdir(), 'lisa-bench-sampling-')));
  const t0 = performance.now();
  const run = await createRun({ store, input: config(sampler, seed), sources, cache });
  if (!isLisa(run)) throw new Error(`bench/sampling creates LISA runs; got method ${run.config.method}`);
  const createSeconds = (performance.now() - t0) / 1000;
  let m: ChunkManifest;
  do m = await runChunk({ store, run, sources, cache });
  while (m.stoppedBy !== 'run-complete');
  const chunks = await Promise.all((await listSeqs(store, run.id)).map((seq) => readManifest(store, run.id, seq)));
  const blocks = candidateUnits(run.base.nLayers, run.config.embedHead);
  const periods = new Set(chunks.map((c) => c.period)).size;
  const trained = trainingFrequency(chunks);
  return {
    sampler,
    seed,
    heldOut: m.heldOut!.loss,
    createSeconds,
    calibrationSeconds: run.outlier?.seconds ?? 0,
    chunkSeconds: chunks.map((c) => c.seconds.wall),
    samplingSeconds: chunks.map((c, i) => samplingCost(run, c, chunks[i - 1] ?? null)),
    frequency: blocks.map((u) => (trained.get(u)?.periods ?? 0) / periods),
    lastProbabilities: m.probabilities!,
  };
}

async function baseHeldOut(seed: number): Promise<number> {
  const store = openStore(await mkdtemp(join(tmpdir(), 'lisa-bench-sampling-')));
  const run = await createRun({ store, input: config('uniform', seed), sources, cache });
  const rm = await loadRunModel({ store, run, at: -1, sources, cache });
  try {
    return heldOutLoss(rm.model, rm.dataset, run.config.batchSize)!.loss;
  } finally {
    rm.model.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));
/** Two-sided 95% t quantiles by degrees of freedom. */
const T95 = [NaN, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

interface FigureData {
  steps: number;
  period: number;
  seeds: number[];
  frequency: Array<{ sampler: SamplerKind; share: number[] }>;
  results: Array<Pick<RunResult, 'sampler' | 'seed' | 'heldOut'>>;
}

/** Left: share of periods each block trained, per sampler; right: held-out loss per seed. */
async function figure(d: FigureData): Promise<string> {
  const blocks = d.frequency[0].share.map((_, i) => `layers.${i}`);
  const color = { field: 'sampler', type: 'nominal', sort: SAMPLERS, title: 'sampler' } as const;
  const chart: TopLevelSpec = {
    title: `LISA γ=2 on stories260K + GSM8K: ${d.steps} steps, K=${d.period}, ${d.seeds.length} seeds`,
    hconcat: [
      {
        title: 'share of periods each block trained (dashed: uniform γ/N)',
        layer: [
          {
            data: { values: d.frequency.flatMap((f) => blocks.map((b, i) => ({ block: b, sampler: f.sampler, share: f.share[i] }))) },
            mark: 'bar',
            encoding: {
              x: { field: 'block', type: 'nominal', title: null, sort: blocks, axis: { labelAngle: 0 } },
              xOffset: { field: 'sampler', sort: SAMPLERS },
              y: { field: 'share', type: 'quantitative', title: 'share of periods', scale: { domain: [0, 1] } },
              color,
            },
          },
          { data: { values: [{}] }, mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { datum: 2 / blocks.length } } },
        ],
        width: 360,
        height: 220,
      },
      {
        title: 'held-out loss per seed (tick: mean)',
        data: { values: d.results.map((r) => ({ sampler: r.sampler, seed: r.seed, loss: r.heldOut })) },
        encoding: { x: { field: 'sampler', type: 'nominal', sort: SAMPLERS, title: null, axis: { labelAngle: 0 } }, color },
        layer: [
          { mark: { type: 'point', filled: true, size: 60 }, encoding: { y: { field: 'loss', type: 'quantitative', scale: { zero: false }, title: 'held-out loss (nats/token)' } } },
          { mark: { type: 'tick', thickness: 2, size: 30 }, encoding: { y: { aggregate: 'mean', field: 'loss', type: 'quantitative' } } },
        ],
        width: 200,
        height: 220,
      },
    ],
  };
  return renderSvg(chart);
}

if (args.replot) {
  await writeFile(repo('bench/results/sampling.svg'), await figure(JSON.parse(await readFile(repo('bench/results/sampling.json'), 'utf8')) as FigureData));
  console.log('wrote bench/results/sampling.svg from bench/results/sampling.json');
  process.exit(0);
}

console.log(`sampling bench: stories260K + GSM8K, γ=2, K=${PERIOD}, ${STEPS} steps, seeds ${SEEDS.join(',')}, backend ${backend}`);
const before = new Map<number, number>();
const results: RunResult[] = [];
for (const seed of SEEDS) {
  before.set(seed, await baseHeldOut(seed));
  // Samplers interleaved within a seed, so machine load drifts over all of them alike.
  for (const sampler of SAMPLERS) {
    const r = await train(sampler, seed);
    results.push(r);
    console.log(`  seed ${seed} ${sampler.padEnd(9)} held-out ${before.get(seed)!.toFixed(4)} -> ${r.heldOut.toFixed(4)}  ${(r.createSeconds + r.chunkSeconds.reduce((a, b) => a + b, 0)).toFixed(1)} s`);
  }
}

const of = (s: SamplerKind) => results.filter((r) => r.sampler === s);
const uniformBySeed = new Map(of('uniform').map((r) => [r.seed, r.heldOut]));
const verdicts = SAMPLERS.map((s) => {
  const losses = of(s).map((r) => r.heldOut);
  const diffs = of(s).map((r) => r.heldOut - uniformBySeed.get(r.seed)!);
  const margin = T95[Math.min(diffs.length - 1, T95.length - 1)] * (sd(diffs) / Math.sqrt(diffs.length));
  const verdict = s === 'uniform' ? '-' : diffs.length < 2 ? 'n/a (one seed)' : Math.abs(mean(diffs)) <= margin ? 'tie' : mean(diffs) < 0 ? 'better' : 'worse';
  return { sampler: s, losses, mean: mean(losses), sd: sd(losses), diffMean: mean(diffs), diffSd: sd(diffs), margin, verdict };
});
console.log(`\nheld-out loss after ${STEPS} steps (base: ${mean([...before.values()]).toFixed(4)})`);
console.log(
  table(
    ['sampler', 'mean ± sd', 'per seed', 'minus uniform (paired)', '95% margin', 'verdict'],
    verdicts.map((v) => [
      v.sampler,
      `${v.mean.toFixed(4)} ± ${v.sd.toFixed(4)}`,
      v.losses.map((x) => x.toFixed(4)).join(' '),
      v.sampler === 'uniform' ? '-' : `${v.diffMean >= 0 ? '+' : ''}${v.diffMean.toFixed(4)} ± ${v.diffSd.toFixed(4)}`,
      v.sampler === 'uniform' ? '-' : v.margin.toFixed(4),
      v.verdict,
    ]),
  ),
);

const blocks = candidateUnits(5, 'always');
const frequency = SAMPLERS.map((s) => ({ sampler: s, share: blocks.map((_, i) => mean(of(s).map((r) => r.frequency[i]))) }));
const drawn = SAMPLERS.map((s) => ({ sampler: s, p: blocks.map((_, i) => mean(of(s).map((r) => r.lastProbabilities[i]))) }));
console.log(`\nshare of periods each block trained (mean over seeds; uniform expects ${(2 / 5).toFixed(2)}), and the last period's probabilities`);
console.log(
  table(
    ['sampler', ...blocks.map((b) => `${b} trained/p`)],
    SAMPLERS.map((s, k) => [s, ...blocks.map((_, i) => `${frequency[k].share[i].toFixed(2)}/${drawn[k].p[i].toFixed(3)}`)]),
  ),
);

const timing = SAMPLERS.map((s) => {
  const rs = of(s);
  const chunk = rs.flatMap((r) => r.chunkSeconds);
  const sampling = rs.flatMap((r) => r.samplingSeconds);
  return {
    sampler: s,
    wall: mean(rs.map((r) => r.createSeconds + r.chunkSeconds.reduce((a, b) => a + b, 0))),
    create: mean(rs.map((r) => r.createSeconds)),
    calibration: mean(rs.map((r) => r.calibrationSeconds)),
    chunkMedian: median(chunk),
    samplingShare: sampling.reduce((a, b) => a + b, 0) / chunk.reduce((a, b) => a + b, 0),
  };
});
console.log('\ntime per run (mean over seeds)');
console.log(
  table(
    ['sampler', 'wall s', 'create s', 'calibration s', 'chunk s (median)', 'calibration / chunk', 'sampling / chunk'],
    timing.map((t) => [
      t.sampler,
      t.wall.toFixed(1),
      t.create.toFixed(2),
      t.calibration.toFixed(3),
      t.chunkMedian.toFixed(2),
      t.calibration ? `${((100 * t.calibration) / t.chunkMedian).toFixed(1)}%` : '-',
      `${(100 * t.samplingShare).toFixed(4)}%`,
    ]),
  ),
);

await mkdir(repo('bench/results'), { recursive: true });
await writeFile(repo('bench/results/sampling.svg'), await figure({ steps: STEPS, period: PERIOD, seeds: SEEDS, frequency, results }));
await writeFile(
  repo('bench/results/sampling.json'),
  `${JSON.stringify({ backend, steps: STEPS, period: PERIOD, seeds: SEEDS, baseHeldOut: Object.fromEntries(before), verdicts, frequency, drawn, timing, results }, null, 1)}\n`,
);
console.log('\nwrote bench/results/sampling.json and bench/results/sampling.svg');
