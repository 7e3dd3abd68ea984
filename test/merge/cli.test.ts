import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsStore, makeBase, makeRun, tempDir } from './helpers.ts';

let root: string;
let cleanup: () => Promise<void>;

/** Runs `lisa` and returns its exit code and output, failing or not. */
async function lisa(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/lisa.js', ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  ({ path: root, cleanup } = await tempDir());
  const base = await makeBase(join(root, 'base'));
  await makeRun(fsStore(join(root, 'store')), 'r1', join(root, 'base'), base, [{ units: ['embed', 'layers.0'] }, { units: ['layers.1'] }]);
  await makeRun(fsStore(join(root, 'store')), 'r2', join(root, 'base'), base, [{ units: ['layers.1', 'head'] }], undefined, 9);
  await makeBase(join(root, 'other'), undefined, 3);
});
afterAll(() => cleanup());

describe('lisa export / apply / compose', () => {
  it('export --json prints the summary; apply rebuilds the same model from a delta', async () => {
    const store = join(root, 'store');
    const full = await lisa('export', '--store', store, '--run', 'r1', '--out', join(root, 'm1'), '--json');
    expect(full.code).toBe(0);
    const summary = JSON.parse(full.stdout);
    expect(summary).toMatchObject({ runId: 'r1', seq: 1, units: ['embed', 'layers.0', 'layers.1'], out: join(root, 'm1') });

    expect((await lisa('export', '--store', store, '--run', 'r1', '--delta', '--out', join(root, 'd1.safetensors'))).code).toBe(0);
    const applied = await lisa('apply', '--base', join(root, 'base'), '--delta', join(root, 'd1.safetensors'), '--out', join(root, 'm2'), '--json');
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout).sha256s['model.safetensors']).toBe(summary.sha256s['model.safetensors']);

    const wrong = await lisa('apply', '--base', join(root, 'other'), '--delta', join(root, 'd1.safetensors'), '--out', join(root, 'm3'));
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^error DELTA_BASE_MISMATCH: delta .* was made for base sha256 [0-9a-f]{64}, but base .* has sha256 [0-9a-f]{64}/);
  });

  it('compose takes ID@seq:weight runs and writes shards with --shard-size', async () => {
    const out = join(root, 'c1');
    const r = await lisa('compose', '--base', join(root, 'base'), '--store', join(root, 'store'), '--run', 'r1@0:0.5', '--run', 'r2', '--method', 'ties', '--density', '0.5', '--shard-size', '10KB', '--out', out, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.runs).toEqual([
      { runId: 'r1', seq: 0, weight: 0.5 },
      { runId: 'r2', seq: 0, weight: 1 },
    ]);
    expect(s.units).toEqual(['embed', 'layers.0', 'layers.1', 'head']);
    expect((await readdir(out)).sort()).toEqual([...s.files].sort());
    expect(s.files.filter((f: string) => f.startsWith('model-')).length).toBeGreaterThan(1);
    expect(s.files).toContain('model.safetensors.index.json');

    const bad = await lisa('compose', '--base', join(root, 'base'), '--store', join(root, 'store'), '--run', 'r1', '--method', 'dare', '--out', join(root, 'c2'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error MERGE_PARAMETERS_INVALID: method dare needs a density: the fraction of each task vector to keep, in (0, 1]\n');
  });
});
