/**
 * lisa-fn's training step against the peer a user would pick: PyTorch eager on the same CPU
 * (Debian's python3-torch on OpenBLAS; bench/peers/torch_step.py, written from the same model
 * definitions). Same configs, same weights, same tokens, same AdamW step as bench/train-step.ts.
 *
 *   npm run bench:peers [-- --rounds 7 --steps 3 --backend wasm]
 *
 * Torch runs in three processes (1 thread; 2 torch and 2 OpenBLAS threads; 1 torch and 2 OpenBLAS
 * threads), started with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from their environment (set
 * on some machines for old OpenBLAS builds, they slow a current one); lisa-fn on its native
 * kernels runs OpenBLAS on 1 and 2 threads too. The machine is shared, so each round times every engine back to back
 * (the order rotating) and a round's ratio is the better lisa-fn's tokens/s over the better
 * torch's; the table shows the median ratio over rounds and its spread, and the same ratio of
 * process CPU time for the single-threaded engines, which other processes on the machine disturb
 * far less than wall time. The losses before the first step must agree (same model, same weights),
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
/**
 * Torch's thread settings: torch's own (OpenMP) threads and OpenBLAS's. torch.set_num_threads(2)
 * alone leaves OpenBLAS's pool next to OpenMP's, both spinning on 2 cores; BLAS threads alone is
 * often torch's best here. The peer gets all three, and the best counts.
 */
const TORCH = [
  { name: 'torch x1', threads: 1, blas: 1 },
  { name: 'torch x2', threads: 2, blas: 2 },
  { name: 'torch x1 blas x2', threads: 1, blas: 2 },
];

/** One torch process answering the JSON-lines protocol of torch_step.py. */
class TorchPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  constructor(
    readonly name: string,
    threads: number,
    blas: number,
  ) {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: `${threads}`, OPENBLAS_NUM_THREADS: `${blas}`, MKL_NUM_THREADS: `${blas}` };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const script = fileURLToPath(new URL('./torch_step.py', import.meta.url));
    this.proc = spawn('/usr/bin/python3', [script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d: Buffer) => process.stderr.write(`${name}: ${d}`));
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  async ask<T>(req: Record<string, unknown>): Promise<T> {
    this.proc.stdin.write(JSON.stringify(req) + '\n');
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`${this.name} exited (status ${this.proc.exitCode}); see its stderr above`);
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

interface Steps {
  ms: number[];
  /** Process CPU time per step: on one thread, what the step costs with no other process in the way. */
  cpuMs: number[];
  loss: number;
}

function lisaSteps(t: TrainingStep, n: number): Steps {
  const ms: number[] = [];
  const cpuMs: number[] = [];
  let loss = NaN;
  for (let i = 0; i < n; i++) {
    const [t0, c0] = [performance.now(), process.cpuUsage()];
    loss = t.step();
    const c = process.cpuUsage(c0);
    ms.push(performance.now() - t0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  return { ms, cpuMs, loss };
}

async function writeWeights(dir: string, c: StepConfig, weights: Map<string, Float32Array>): Promise<string> {
  const path = join(dir, 'weights.safetensors');
  const entries = [...tensorShapes(c.spec)].map(([name, shape]) => ({ name, dtype: 'F32' as const, shape, data: weights.get(name)! }));
  await writeFile(path, await encodeSafetensors(entries));
  return path;
}

interface Engine {
  name: string;
  steps(n: number): Promise<Steps>;
}

const backend = await initEngine({ backend: args.backend as BackendName | undefined, log: (m) => console.log(m) });
// With the native kernels OpenBLAS can use both cores, as torch can: lisa-fn runs 1 and 2 threads too.
const native = nativeKernels();
const lisaThreads = native ? THREADS : [1];
const peers = TORCH.map((t) => new TorchPeer(t.name, t.threads, t.blas));
const dir = await mkdtemp(join(tmpdir(), 'lisa-peers-'));
const loadBefore = loadavg();

// The engines' 1024^3 matmul, best of three interleaved rounds of best-of-5.
const matmul: Record<string, number> = {};
let blas: string[] = [];
const keepBest = (name: string, gflops: number) => (matmul[name] = Math.max(matmul[name] ?? 0, gflops));
for (let r = 0; r < 3; r++) {
  for (const n of lisaThreads) {
    native?.setThreads(n);
    keepBest(`lisa x${n}`, lisaMatmulGflops(1024));
  }
  for (const p of peers) {
    const out = await p.ask<{ gflops: number; blas: string[] }>({ op: 'matmul', n: 1024 });
    keepBest(p.name, out.gflops);
    blas = out.blas;
  }
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
  for (const p of peers) loss0[p.name] = (await p.ask<{ loss: number }>(load)).loss;
  const engines: Engine[] = [
    ...lisaThreads.map((n) => ({
      name: `lisa x${n}`,
      steps: async (k: number) => {
        native?.setThreads(n);
        return lisaSteps(lisa, k);
      },
    })),
    ...peers.map((p) => ({ name: p.name, steps: (k: number) => p.ask<Steps>({ op: 'steps', n: k }) })),
  ];
  for (const e of engines) await e.steps(WARMUP);

  const ms: Record<string, number[]> = Object.fromEntries(engines.map((e) => [e.name, []]));
  const cpuMs: Record<string, number[]> = Object.fromEntries(engines.map((e) => [e.name, []]));
  const lossEnd: Record<string, number> = {};
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Record<string, number> = {};
    const roundCpu: Record<string, number> = {};
    for (let i = 0; i < engines.length; i++) {
      const e = engines[(r + i) % engines.length];
      const out = await e.steps(STEPS);
      ms[e.name].push(...out.ms);
      cpuMs[e.name].push(...out.cpuMs);
      round[e.name] = median(out.ms);
      roundCpu[e.name] = median(out.cpuMs);
      lossEnd[e.name] = out.loss;
    }
    ratios.push(best(round, 'torch') / best(round, 'lisa'));
    cpuRatios.push(roundCpu['torch x1'] / roundCpu['lisa x1']);
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
    'x1 cpu ratio': Number(median(cpuRatios).toFixed(2)),
    'lisa GFLOP/s': Number((flopsPerStep(c, lisa.trained) / best(stepMs, 'lisa') / 1e6).toFixed(1)),
    'loss0 diff': Number(Math.abs(loss0.lisa - loss0['torch x1']).toExponential(1)),
  });
  raw.push({ config: c.name, trained: lisa.trained, stepMs: ms, cpuMs, roundRatios: ratios, cpuRatios, loss0, lossEnd });
}
for (const p of peers) p.close();
await rm(dir, { recursive: true, force: true });

const loadAfter = loadavg();
console.log(`\nlisa-fn (${backend}, tfjs ${tf.version_core}) vs PyTorch eager on this CPU: ${ROUNDS} rounds of ${STEPS} steps after ${WARMUP} warm-up`);
console.log(`ratio = the best lisa-fn's tokens/s / the best torch's, per round; median and spread over rounds`);
console.log(`x1 cpu ratio = torch x1's process CPU time per step / lisa-fn x1's (one thread each: the cost without other processes)`);
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
