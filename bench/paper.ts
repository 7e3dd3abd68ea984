/**
 * The LISA paper's comparison on this engine (Pan et al. 2024: LISA against LoRA and full
 * fine-tuning at equal data, batch, seed and steps), one process, every method through the real
 * chunk pipeline (runChunk on a local store):
 *   rows    FT; LoRA r=8 and r=128 scaled to the model's width; LISA E+H, E+H+1L, +2L, +4L
 *   models  stories260K (real weights) on the bundled GSM8K; a deeper random llama (12 blocks,
 *           10.3M parameters) for memory and time only
 *   per row peak engine bytes (tf.profile over one chunk: the most tfjs held after any kernel),
 *           what it holds between steps (tf.memory), ms per step (median, unprofiled chunks,
 *           each chunk's first step left out), held-out loss after the last step, the training
 *           loss curve, bytes uploaded per chunk, and the kernels that took the time
 *   Figure 2  mean per-unit ‖W_t − W_0‖_F under FT and LoRA (merged exports), stories260K
 * LoRA ranks: r·d/4096 rounded (LLaMA-2-7B's width is 4096), at least 1; alpha = 2·rank.
 *
 *   npx tsx bench/paper.ts [--quick] [--tiny] [--out DIR]
 * --quick: fewer steps (under 5 minutes on 2 cores); --tiny: minute models for the test suite.
 * Writes DIR/paper.json, DIR/paper.md and the SVG figures (DIR defaults to bench/results).
 * Goals are printed met / missed; timings are never asserted.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { initEngine } from '../core/engine/index.ts';
import { exportRun } from '../core/merge/index.ts';
import type { ModelSpec } from '../core/models/config.ts';
import { loadBaseDir, saveModelDir } from '../core/models/load.ts';
import { randomWeights } from '../core/models/model.ts';
import { tensorShapes, unitNames, unitOf } from '../core/models/units.ts';
import { openStore } from '../core/store/open.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import type { RunConfigInput, RunSpec } from '../core/store/run-spec.ts';
import { l2Distance, runChunk } from '../core/train/chunk.ts';
import { createRun } from '../core/train/create-run.ts';
import { ResourceCache } from '../core/train/resources.ts';
import { createSources } from '../core/train/sources.ts';
import { evaluateGoals, renderFigures, renderReport, type Row } from './paper-report.ts';

/** What one profiled chunk measured. */
interface Profile {
  peakBytes: number;
  /** kernel name -> summed kernel time */
  kernelMs: Map<string, number>;
}

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, tiny: { type: 'boolean' }, out: { type: 'string' } } });
const outDir = args.out ?? new URL('results/', import.meta.url).pathname;
const repo = (p: string) => new URL(`../${p}`, import.meta.url).pathname;

interface ModelCase {
  name: string;
  /** real weights: held-out loss means something */
  real: boolean;
  base: () => Promise<string>;
  run: Partial<RunConfigInput>;
}

const llama = (o: Partial<ModelSpec>): ModelSpec => ({
  arch: 'llama', vocabSize: 512, dim: 256, nLayers: 12, nHeads: 8, nKvHeads: 8, headDim: 32, hiddenDim: 768,
  maxSeqLen: 256, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true, bosId: 1, eosId: 2, ...o,
});

/** A random-weight base with the bundled tokenizer, in a temp directory. */
async function randomBase(spec: ModelSpec): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'lisa-paper-')), 'base');
  await saveModelDir(dir, spec, randomWeights(spec, 1), { files: { 'tokenizer.bin': await readFile(repo('models/stories260K/tokenizer.bin')) } });
  return dir;
}

// --tiny reads the smaller GSM8K split: tokenizing the training split takes longer than its steps.
const common = { data: repo(`data/gsm8k/${args.tiny ? 'test' : 'train'}.jsonl`), fields: ['question', 'answer'], seed: 3, schedule: 'cosine' as const, warmupSteps: 2, maxGradNorm: 1 };
const MODELS: ModelCase[] = args.tiny
  ? [
      { name: 'stories260K', real: true, base: async () => repo('models/stories260K'), run: { seqLen: 128, batchSize: 1, heldOut: 2, steps: 4, period: 2 } },
      { name: 'llama-12L-tiny', real: false, base: () => randomBase(llama({ dim: 16, nHeads: 2, nKvHeads: 2, headDim: 8, hiddenDim: 32 })), run: { seqLen: 128, batchSize: 1, heldOut: 2, steps: 4, period: 2 } },
    ]
  : [
      { name: 'stories260K', real: true, base: async () => repo('models/stories260K'), run: { seqLen: 128, heldOut: 64, ...(args.quick ? { batchSize: 4, steps: 24, period: 6 } : { batchSize: 8, steps: 120, period: 10 }) } },
      { name: 'llama-12L-10M', real: false, base: () => randomBase(llama({})), run: { seqLen: 64, heldOut: 8, ...(args.quick ? { batchSize: 2, steps: 8, period: 4 } : { batchSize: 4, steps: 16, period: 4 }) } },
    ];

/** LoRA rank r of LLaMA-2-7B (width 4096) scaled to width d: round(r·d/4096), at least 1. */
const scaledRank = (r: number, d: number): number => Math.max(1, Math.round((r * d) / 4096));

function methods(spec: ModelSpec): Array<{ label: string; input: Partial<RunConfigInput> }> {
  const lora = (r: number) => {
    const rank = scaledRank(r, spec.dim);
    return { label: `LoRA r=${r} (${rank})`, input: { method: 'lora' as const, loraRank: rank, loraAlpha: 2 * rank, lr: LR.lora } };
  };
  const lisa = (g: number) => ({ label: g === 0 ? 'LISA E+H' : `LISA E+H+${g}L`, input: { activeLayers: Math.min(g, spec.nLayers), lr: LR.lisa } });
  return [{ label: 'FT', input: { method: 'full', lr: LR.full } }, lora(8), lora(128), lisa(0), lisa(1), lisa(2), lisa(4)];
}

/** Peak learning rates: FT and LISA share one (LISA trains full-rank tensors); LoRA's adapters take a larger one, as is usual. */
const LR = { full: 3e-3, lisa: 3e-3, lora: 1e-2 };

const backend = await initEngine({ backend: (process.env.LISA_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm' });
const rows: Row[] = [];
const updateNorms: Array<{ label: string; unit: string; norm: number }> = [];

interface RowRun {
  label: string;
  run: RunSpec;
  store: ObjectStore;
  storeDir: string;
  losses: number[];
  stepMs: number[];
  bytesOut: number[];
  held: number;
  heldOut: number | null;
  profile?: Profile;
}

for (const m of MODELS) {
  const baseDir = await m.base();
  const base = await loadBaseDir(baseDir);
  const spec = base.spec;
  const params = [...tensorShapes(spec).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  const ctx = { sources: createSources((u) => openStore(u)), cache: new ResourceCache() };
  const runs: RowRun[] = [];
  for (const { label, input } of methods(spec)) {
    const storeDir = await mkdtemp(join(tmpdir(), 'lisa-paper-store-'));
    const store = openStore(storeDir);
    const run = await createRun({ store, ...ctx, input: { base: baseDir, ...common, ...m.run, ...input } as RunConfigInput });
    runs.push({ label, run, store, storeDir, losses: [], stepMs: [], bytesOut: [], held: 0, heldOut: null });
  }
  // Chunk by chunk, every row in turn: the machine's load drifts over all rows alike. The last
  // chunk is profiled (peak bytes, kernel times); the others are timed without the profiler.
  const chunks = Math.ceil(runs[0].run.config.steps / runs[0].run.config.period);
  for (let i = 0; i < chunks; i++) {
    for (const r of runs) {
      const profiled = i === chunks - 1;
      let last = 0;
      const chunk = () =>
        runChunk({
          store: r.store, run: r.run, ...ctx,
          onStep: (e) => {
            if (!profiled && e.stepInChunk > 1) r.stepMs.push((e.seconds - last) * 1000);
            last = e.seconds;
            r.held = tf.memory().numBytes;
          },
        });
      const manifest = profiled ? await profiledChunk(chunk, (p) => (r.profile = p)) : await chunk();
      r.losses.push(...manifest.losses);
      r.bytesOut.push(manifest.bytes.out);
      r.heldOut = manifest.heldOut?.loss ?? null;
    }
  }
  for (const r of runs) {
    const profile = r.profile!;
    const kernels = profile.kernelMs;
    const kernelMs = [...kernels.values()].reduce((a, b) => a + b, 0);
    rows.push({
      model: m.name,
      method: r.run.config.method,
      label: r.label,
      peakBytes: profile.peakBytes,
      msPerStep: median(r.stepMs),
      heldOutLoss: r.heldOut,
      bytesPerChunk: median(r.bytesOut),
      steps: r.losses.length,
      realWeights: m.real,
      params,
      embedParams: tensorShapes(spec).get(spec.arch === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight')!.reduce((a, b) => a * b, 1),
      heldBytes: r.held,
      weightBytes: 4 * params,
      lossCurve: r.losses,
      topKernels: [...kernels].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([name, ms]) => ({ name, share: ms / kernelMs })),
    });
    console.log(`${m.name.padEnd(16)} ${r.label.padEnd(18)} peak ${mib(profile.peakBytes).padStart(8)} MiB  ${median(r.stepMs).toFixed(1).padStart(8)} ms/step  held-out ${r.heldOut?.toFixed(4) ?? '-'}  ${(median(r.bytesOut) / 1024).toFixed(0).padStart(7)} KiB/chunk`);
    if (m.real && (r.run.config.method === 'full' || r.run.config.method === 'lora')) {
      const exported = join(r.storeDir, 'export');
      await exportRun({ store: r.store, runId: r.run.id, out: exported });
      const after = (await loadBaseDir(exported)).weights;
      for (const unit of unitNames(spec)) {
        const names = [...base.weights.keys()].filter((n) => unitOf(spec, n) === unit);
        const norm = names.reduce((s, n) => s + l2Distance([[base.weights.get(n)!, after.get(n)!]]), 0) / names.length;
        updateNorms.push({ label: r.label, unit, norm });
      }
    }
    await rm(r.storeDir, { recursive: true, force: true });
  }
  if (!m.real) await rm(dirname(baseDir), { recursive: true, force: true });
}

/**
 * Runs one chunk under tf.profile: the peak is the most tfjs held after any of its kernels. The
 * profile is read out at once: tfjs hands every profile the same object.
 */
async function profiledChunk<T>(chunk: () => Promise<T>, report: (p: Profile) => void): Promise<T> {
  let result: T | undefined;
  const info = await tf.profile(async () => {
    result = await chunk();
    return [];
  });
  const kernelMs = new Map<string, number>();
  for (const k of info.kernels) kernelMs.set(k.name, (kernelMs.get(k.name) ?? 0) + (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0));
  report({ peakBytes: info.peakBytes, kernelMs });
  return result!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function mib(b: number): string {
  return (b / 2 ** 20).toFixed(2);
}

const goals = evaluateGoals(rows);
await mkdir(outDir, { recursive: true });
const figures = await renderFigures(rows, updateNorms, outDir);
const settings = { backend, quick: Boolean(args.quick), tiny: Boolean(args.tiny), lr: LR, common, models: MODELS.map((m) => ({ name: m.name, ...m.run })) };
await writeFile(join(outDir, 'paper.json'), `${JSON.stringify({ settings, rows, goals, updateNorms, figures }, null, 2)}\n`);
await writeFile(join(outDir, 'paper.md'), renderReport(settings, rows, goals, figures));
console.log('');
for (const [model, byGoal] of Object.entries(goals)) {
  for (const g of Object.values(byGoal)) console.log(`${model.padEnd(16)} ${g.met ? 'met   ' : 'MISSED'} ${g.goal}: ${g.value}`);
}
console.log(`\nwrote ${join(outDir, 'paper.json')}, paper.md and ${figures.length} figures`);
