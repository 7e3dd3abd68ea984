/**
 * Where a training step's time goes, per kernel: tf.profile over steps of bench/step.ts (forward,
 * backward, AdamW), each kernel's wall time summed by name (and by operand shapes with --shapes).
 *
 *   npx tsx bench/step-profile.ts [--config llama-5M] [--backend wasm] [--steps 3] [--shapes]
 *
 * Prints the kernels that hold 99% of the time and writes bench/results/step-profile.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, type BackendName } from '../core/engine/index.ts';
import { CONFIGS } from './configs.ts';
import { trainingStep } from './step.ts';

const { values: args } = parseArgs({
  options: {
    config: { type: 'string', default: 'llama-5M' },
    backend: { type: 'string' },
    steps: { type: 'string', default: '3' },
    shapes: { type: 'boolean', default: false },
  },
});
const config = CONFIGS.find((c) => c.name === args.config);
if (!config) throw new Error(`no config "${args.config}"; one of ${CONFIGS.map((c) => c.name).join(', ')}`);
const backend = await initEngine({ backend: args.backend as BackendName | undefined });
const steps = Number(args.steps);
const t = trainingStep(config);
t.step();
t.step();
const t0 = performance.now();
const info = await tf.profile(() => {
  for (let i = 0; i < steps; i++) t.step();
});
const wallMs = (performance.now() - t0) / steps;
t.dispose();

const byKey = new Map<string, { ms: number; calls: number }>();
for (const k of info.kernels) {
  const key = args.shapes ? `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(' ')}` : k.name;
  const e = byKey.get(key) ?? { ms: 0, calls: 0 };
  e.ms += (await k.kernelTimeMs) as number;
  e.calls += 1;
  byKey.set(key, e);
}
const total = [...byKey.values()].reduce((n, e) => n + e.ms, 0) / steps;
const sorted = [...byKey].sort((a, b) => b[1].ms - a[1].ms);
const rows: Record<string, unknown>[] = [];
let cumulative = 0;
for (const [kernel, e] of sorted) {
  if (cumulative > 0.99 * total * steps) break;
  cumulative += e.ms;
  rows.push({ kernel, 'ms/step': Number((e.ms / steps).toFixed(2)), share: `${((100 * e.ms) / steps / wallMs).toFixed(1)}%`, 'calls/step': e.calls / steps });
}
console.log(`${config.name} on ${backend}: ${wallMs.toFixed(1)} ms/step under the profiler, ${total.toFixed(1)} ms of it inside kernels`);
console.table(rows);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/step-profile.json', import.meta.url), JSON.stringify({ backend, config: config.name, wallMs, kernelMs: total, rows }, null, 2));
