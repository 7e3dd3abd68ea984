/**
 * lisa-fn's training step against the peer a user would pick: PyTorch eager on the same CPU
 * (Debian's python3-torch on OpenBLAS; bench/peers/torch_step.py, written from the same model
 * definitions). Same configs, same weights, same tokens, same AdamW step as bench/train-step.ts.
 *
 *   npm run bench:peers [-- --rounds 7 --steps 3 --backend wasm]
 *
 * Torch runs in two processes, one with 1 thread and one with 2 (OMP and OpenBLAS both), started
 * with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from their environment (set on some machines
 * for old OpenBLAS builds, they slow a current one); lisa-fn on its native kernels runs OpenBLAS
 * on 1 and 2 threads too. The machine is shared, so each round times every engine back to back
 * (the order rotating) and a round's ratio is the better lisa-fn's tokens/s over the better
 * torch's; the table shows the median ratio over rounds and its spread. The losses before the first step must agree (same model, same weights),
 * which is checked and shown. Prints a table and writes bench/results/peers.json; never asserts.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, nativeKernelsStatus, type BackendName } from '../../core/engine/index.ts';
import { nativeKernels } from '../../core/engine/native.ts';
import { encodeSafetensors } from '../../core/tensors/safetensors.ts';
import { tensorShapes } from '../../core/models/units.ts';
import { CONFIGS, flopsPerStep, type StepConfig } from '../configs.ts';
import { ADAMW, trainingStep, type TrainingStep } from '../step.ts';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    rounds: { type: 'string', default: '7' },
    steps: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
  },
});
const ROUNDS = Number(args.rounds);
const STEPS = Number(args.steps);
const WARMUP = Number(args.warmup);
const THREADS = [1, 2];

/** One torch process answering the JSON-lines protocol of torch_step.py. */
class TorchPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(readonly threads: number) {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: `${threads}`, OPENBLAS_NUM_THREADS: `${threads}`, MKL_NUM_THREADS: `${threads}` };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const script = fileURLToPath(new URL('./torch_step.py', import.meta.url));
    this.proc = spawn('/usr/bin/python3', [script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => process.stderr.write(`torch x${threads}: ${d}`));
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  async ask<T>(req: Record<string, unknown>): Promise<T> {
    this.proc.stdin.write(JSON.stringify(req) + '\n');
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`torch x${this.threads} exited (status ${this.proc.exitCode}); see its stderr above`);
    return JSON.parse(value) as T;
  }

  close(): void {
    this.proc.stdin.end();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function lisaMatmulGflops(n: number): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  tf.tidy(() => void tf.matMul(a, b).dataSync());
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    tf.tidy(() => void tf.matMul(a, b).dataSync());
    best = Math.min(best, performance.now() - t0);
  }
  tf.dispose([a, b]);
  return (2 * n ** 3) / best / 1e6;
}

function lisaSteps(t: TrainingStep, n: number): { ms: number[]; loss: number } {
  const ms: number[] = [];
  let loss = NaN;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    loss = t.step();
    ms.push(performance.now() - t0);
  }
  return { ms, loss };
}

async function writeWeights(dir: string, c: StepConfig, weights: Map<string, Float32Array>): Promise<string> {
  const path = join(dir, 'weights.safetensors');
  const entries = [...tensorShapes(c.spec)].map(([name, shape]) => ({ name, dtype: 'F32' as const, shape, data: weights.get(name)! }));
  await writeFile(path, await encodeSafetensors(entries));
  return path;
}

interface Engine {
  name: string;
  steps(n: number): Promise<{ ms: number[]; loss: number }>;
}

const backend = await initEngine({ backend: args.backend as BackendName | undefined, log: (m) => console.log(m) });
// With the native kernels OpenBLAS can use both cores, as torch can: lisa-fn runs 1 and 2 threads too.
const native = nativeKernels();
const lisaThreads = native ? THREADS : [1];
const peers = THREADS.map((n) => new TorchPeer(n));
const dir = await mkdtemp(join(tmpdir(), 'lisa-peers-'));
const loadBefore = loadavg();

const matmul: Record<string, number> = {};
for (const n of lisaThreads) {
  native?.setThreads(n);
  matmul[`lisa x${n}`] = lisaMatmulGflops(1024);
}
let blas: string[] = [];
for (const p of peers) {
  const r = await p.ask<{ gflops: number; blas: string[] }>({ op: 'matmul', n: 1024 });
  matmul[`torch x${p.threads}`] = r.gflops;
  blas = r.blas;
}
if (!blas.some((l) => l.includes('openblas'))) {
  throw new Error(`torch is not running on OpenBLAS (mapped BLAS: ${blas.join(', ') || 'none'}): that is not the peer; run bench/peers/ensure-torch.sh`);
}

const best = (stepMs: Record<string, number>, prefix: string) => Math.min(...Object.entries(stepMs).filter(([e]) => e.startsWith(prefix)).map(([, ms]) => ms));
const rows: Record<string, unknown>[] = [];
const raw: Record<string, unknown>[] = [];
for (const c of CONFIGS) {
  const lisa = trainingStep(c);
  const weights = await writeWeights(dir, c, lisa.weights);
  const load = { op: 'load', spec: c.spec, weights, tokens: lisa.ids, trains: lisa.trainedNames, adamw: ADAMW };
  const loss0: Record<string, number> = { lisa: lisa.loss() };
  for (const p of peers) loss0[`torch x${p.threads}`] = (await p.ask<{ loss: number }>(load)).loss;
  const engines: Engine[] = [
    ...lisaThreads.map((n) => ({
      name: `lisa x${n}`,
      steps: async (k: number) => {
        native?.setThreads(n);
        return lisaSteps(lisa, k);
      },
    })),
    ...peers.map((p) => ({ name: `torch x${p.threads}`, steps: (k: number) => p.ask<{ ms: number[]; loss: number }>({ op: 'steps', n: k }) })),
  ];
  for (const e of engines) await e.steps(WARMUP);

  const ms: Record<string, number[]> = Object.fromEntries(engines.map((e) => [e.name, []]));
  const lossEnd: Record<string, number> = {};
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Record<string, number> = {};
    for (let i = 0; i < engines.length; i++) {
      const e = engines[(r + i) % engines.length];
      const out = await e.steps(STEPS);
      ms[e.name].push(...out.ms);
      round[e.name] = median(out.ms);
      lossEnd[e.name] = out.loss;
    }
    ratios.push(best(round, 'torch') / best(round, 'lisa'));
  }
  lisa.dispose();

  const tokens = c.batch * c.seq;
  const stepMs = Object.fromEntries(engines.map((e) => [e.name, median(ms[e.name])]));
  const sorted = [...ratios].sort((a, b) => a - b);
  rows.push({
    config: c.name,
    trained: c.layers ? `embed+head+${c.layers.join(',')}` : 'all',
    tokens,
    ...Object.fromEntries(engines.map((e) => [`${e.name} ms`, Number(stepMs[e.name].toFixed(1))])),
    'lisa tok/s': Math.round((tokens / best(stepMs, 'lisa')) * 1000),
    'torch tok/s': Math.round((tokens / best(stepMs, 'torch')) * 1000),
    ratio: Number(median(ratios).toFixed(2)),
    spread: `${sorted[0].toFixed(2)}-${sorted[sorted.length - 1].toFixed(2)}`,
    'lisa GFLOP/s': Number((flopsPerStep(c, lisa.trained) / best(stepMs, 'lisa') / 1e6).toFixed(1)),
    'loss0 diff': Number(Math.abs(loss0.lisa - loss0['torch x1']).toExponential(1)),
  });
  raw.push({ config: c.name, trained: lisa.trained, stepMs: ms, roundRatios: ratios, loss0, lossEnd });
}
for (const p of peers) p.close();
await rm(dir, { recursive: true, force: true });

const loadAfter = loadavg();
console.log(`\nlisa-fn (${backend}, tfjs ${tf.version_core}) vs PyTorch eager on this CPU: ${ROUNDS} rounds of ${STEPS} steps after ${WARMUP} warm-up`);
console.log(`ratio = the better lisa-fn's tokens/s / the better torch's (x1 or x2 threads), per round; median and spread over rounds`);
console.log(nativeKernelsStatus());
console.log(`1024^3 matmul GFLOP/s: ${Object.entries(matmul).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}; torch BLAS: ${blas.join(', ')}`);
console.log(`load average (1 min) before ${loadBefore[0].toFixed(2)}, after ${loadAfter[0].toFixed(2)}`);
console.table(rows);
const worstLoss = Math.max(...raw.map((r) => Math.abs((r.loss0 as Record<string, number>).lisa - (r.loss0 as Record<string, number>)['torch x1'])));
if (worstLoss > 1e-3) console.log(`WARNING: initial losses differ by up to ${worstLoss}: the peer does not compute the same model`);
await mkdir(new URL('../results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('../results/peers.json', import.meta.url),
  JSON.stringify({ backend, tfjs: tf.version_core, date: new Date().toISOString(), rounds: ROUNDS, steps: STEPS, warmup: WARMUP, loadBefore, loadAfter, matmulGflops: matmul, blas, rows, raw }, null, 2),
);
