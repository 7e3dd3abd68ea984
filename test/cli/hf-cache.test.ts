import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBaseDir } from '../../core/models/load.ts';
import { addCommit, dirFiles, type FakeHub, startFakeHub } from '../train/fake-hub.ts';
import { qaLines, smallLlama, tempDir, writeBase, writeData } from '../train/harness.ts';

let hub: FakeHub;
let sha: string;
let data: string;

async function lisa(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/lisa.js', ...args], { env: { ...process.env, LISA_BACKEND: 'cpu', ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  hub = await startFakeHub();
  const dir = await writeBase(smallLlama, 4);
  sha = (await loadBaseDir(dir)).sha256;
  addCommit(hub, 'org/tiny', 'main', await dirFiles(dir));
  data = await writeData(qaLines(8));
});

afterAll(async () => {
  await hub?.close();
});

describe('lisa with HF_ENDPOINT and LISA_CACHE_DIR', () => {
  it('run create on an hf:// base fills the cache; the next process reads the base from it', async () => {
    const cacheDir = await tempDir('cli-cache');
    const store = await tempDir('cli-store');
    const env = { HF_ENDPOINT: hub.url, LISA_CACHE_DIR: cacheDir };
    const args = ['run', 'create', '--store', store, '--base', 'hf://org/tiny', '--data', data, '--fields', 'question,answer', '--seq-len', '48', '--json'];
    const first = await lisa(env, ...args, '--id', 'a');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).base.sha256).toBe(sha);
    expect((await readdir(cacheDir)).sort()).toEqual([sha, 'refs']);

    hub.resetCounts();
    const second = await lisa(env, ...args, '--id', 'b');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout).base.sha256).toBe(sha);
    expect(hub.bytesServed('model.safetensors')).toBe(1);
    expect(hub.bytesServed('config.json') + hub.bytesServed('tokenizer.bin')).toBe(0);

    const missing = await lisa(env, ...args, '--id', 'c', '--base', 'hf://org/none');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error HUB_REPO_NOT_FOUND: hf://org/none: no model repository org/none on ${hub.url}, or it is private or gated and no HF_TOKEN is set\n`);
  });
});
