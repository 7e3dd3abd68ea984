import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

function lisa(...args: string[]) {
  const r = spawnSync('node', ['bin/lisa.js', ...args], { cwd: root, encoding: 'utf8', timeout: 300_000, env: { ...process.env, LISA_BACKEND: 'wasm' } });
  // The engine logs its backend choice on stderr once; the rest of stderr is the command's own.
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(/^engine: tfjs [\d.]+ backend wasm[^\n]*\n/, '') };
}

const tmp = mkdtempSync(join(tmpdir(), 'lisa-cli-'));
const store = join(tmp, 'store');
const data = join(tmp, 'qa.jsonl');
writeFileSync(
  data,
  Array.from({ length: 24 }, (_, i) => JSON.stringify({ question: `Ann has ${i} pens. How many?`, answer: `${i} pens. #### ${i}` })).join('\n') + '\n',
);

describe('lisa run create / chunk / status / generate / gc', () => {
  it('runs a fine-tune chunk by chunk and shows its chain', () => {
    const create = lisa('run', 'create', '--store', store, '--base', 'models/stories260K', '--data', data, '--fields', 'question,answer', '--seq-len', '48', '--layers', '1', '--period', '2', '--steps', '4', '--batch', '2', '--held-out', '4', '--id', 'cli-run', '--json');
    expect(create.stderr).toBe('');
    expect(create.code).toBe(0);
    const spec = JSON.parse(create.stdout);
    expect([spec.id, spec.config.activeLayers, spec.config.period, spec.data.examples, spec.data.heldOut]).toEqual(['cli-run', 1, 2, 20, 4]);

    const first = lisa('chunk', '--store', store, '--run', 'cli-run');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^committed chunk 0 of run cli-run \(lisa, period 0, stopped by period\)\n {2}units {5}embed, layers\.\d, head\n {2}steps {5}0 -> 2\n/);
    const second = lisa('chunk', '--store', store, '--run', 'cli-run', '--json', '--price-per-hour', '3.6');
    expect(second.code).toBe(0);
    const m = JSON.parse(second.stdout);
    expect([m.seq, m.startStep, m.globalStep, m.stoppedBy]).toEqual([1, 2, 4, 'run-complete']);
    expect(m.costUsd).toBeCloseTo(m.seconds.wall / 1000, 9);

    const status = lisa('status', '--store', store, '--run', 'cli-run', '--json');
    const chain = JSON.parse(status.stdout);
    expect(chain.chunks.map((c: { seq: number }) => c.seq)).toEqual([0, 1]);
    expect(chain.chunks[1].totals.steps).toBe(4);
    // how often each block trained: one block per period, two periods of two steps
    const trained = Object.values(chain.trained as Record<string, { periods: number; steps: number }>);
    expect(trained).toHaveLength(5);
    expect(trained.reduce((n, f) => n + f.periods, 0)).toBe(2);
    expect(trained.reduce((n, f) => n + f.steps, 0)).toBe(4);
    const table = lisa('status', '--store', store, '--run', 'cli-run');
    expect(table.stdout).toContain('seq  period  units');
    expect(table.stdout).toMatch(/\nunit {6}periods {2}steps {2}p \(last draw\)\nlayers\.0 {2}\d {8}\d {6}0\.200\n/);
    expect(table.stdout.trimEnd().split('\n').at(-1)).toMatch(/^4\/4 steps, \d+ tokens, [\d.]+ s, \$[\d.]+$/);

    const done = lisa('chunk', '--store', store, '--run', 'cli-run');
    expect([done.code, done.stderr]).toEqual([1, "error RUN_COMPLETE: run 'cli-run' has already trained all 4 steps\n"]);

    const base = lisa('generate', '--store', store, '--run', 'cli-run', '--at', '-1', '--prompt', 'Once upon a time', '--max-tokens', '20', '--temperature', '0');
    const plain = lisa('generate', '--model', 'models/stories260K', '--prompt', 'Once upon a time', '--max-tokens', '20', '--temperature', '0');
    expect(base.stdout).toBe(plain.stdout);
    const tuned = lisa('generate', '--store', store, '--run', 'cli-run', '--prompt', 'Once upon a time', '--max-tokens', '20', '--temperature', '0');
    expect(tuned.code).toBe(0);
    expect(tuned.stdout.startsWith('Once upon a time')).toBe(true);

    const gc = lisa('gc', '--store', store, '--run', 'cli-run', '--json');
    expect(JSON.parse(gc.stdout)).toMatchObject({ deleted: [], pending: [] });
  });

  it('--method lora: status and chunks name the method, export --adapter writes the PEFT pair; a LoRA option on a LISA run is refused', () => {
    const create = lisa('run', 'create', '--store', store, '--base', 'models/stories260K', '--data', data, '--fields', 'question,answer', '--seq-len', '48', '--period', '2', '--steps', '2', '--batch', '2', '--method', 'lora', '--lora-rank', '2', '--lora-alpha', '4', '--lora-targets', 'q_proj,v_proj', '--id', 'cli-lora');
    expect([create.code, create.stderr, create.stdout]).toEqual([0, '', 'cli-lora\n']);
    const chunk = lisa('chunk', '--store', store, '--run', 'cli-lora');
    expect(chunk.stdout).toMatch(/^committed chunk 0 of run cli-lora \(lora, period 0, stopped by run-complete\)\n {2}units {5}layers\.0, layers\.1, layers\.2, layers\.3, layers\.4\n/);
    expect(lisa('status', '--store', store, '--run', 'cli-lora').stdout).toContain('\n  method lora r=2 alpha=4 dropout=0 targets=q_proj,v_proj\n');
    const out = join(tmp, 'adapter');
    const exported = lisa('export', '--store', store, '--run', 'cli-lora', '--adapter', '--out', out);
    expect(exported.code).toBe(0);
    expect(exported.stdout.split('\n')[0]).toBe(`LoRA adapter of run cli-lora at seq 0 (units from the run: layers.0 layers.1 layers.2 layers.3 layers.4) -> ${out}`);
    const bad = lisa('run', 'create', '--store', store, '--base', 'models/stories260K', '--data', data, '--fields', 'question,answer', '--lora-rank', '4');
    expect([bad.code, bad.stderr]).toEqual([1, "error RUN_CONFIG_INVALID: invalid run config: loraRank: applies to method lora only; this run's method is lisa\n"]);
  });

  it('prints errors as one line with their code, and the stack only with --verbose', () => {
    const missing = lisa('status', '--store', store, '--run', 'nope');
    expect([missing.code, missing.stdout, missing.stderr]).toEqual([1, '', `error RUN_NOT_FOUND: run 'nope' not found in file://${store}\n`]);
    const verbose = lisa('--verbose', 'status', '--store', store, '--run', 'nope');
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(/^error RUN_NOT_FOUND: .*\nRunNotFoundError: .*\n {4}at /);
    const bad = lisa('run', 'create', '--store', store, '--base', 'models/stories260K', '--data', data, '--layers', '9', '--fields', 'question,answer');
    expect([bad.code, bad.stderr]).toEqual([1, "error RUN_CONFIG_INVALID: invalid run config: activeLayers: γ=9 exceeds the base's 5 layers\n"]);
    const wrong = lisa('run', 'create', '--store', store, '--base', 'models/stories260K', '--data', data, '--fields', 'question,answer', '--sampler', 'grad-norm', '--outlier-threshold', '3');
    expect([wrong.code, wrong.stderr]).toEqual([1, "error RUN_CONFIG_INVALID: invalid run config: outlierThreshold: belongs to sampler 'outlier', but this run's sampler is 'grad-norm'\n"]);
  });
});
