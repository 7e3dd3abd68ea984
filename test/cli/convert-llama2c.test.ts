import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const fixture = (name: string) => join(root, 'test/fixtures/stories260K', name);

function lisa(...args: string[]) {
  const r = spawnSync('node', ['bin/lisa.js', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('lisa convert-llama2c', () => {
  it('writes the HF directory and reports the model', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'lisa-cli-')), 'stories');
    const r = lisa('convert-llama2c', fixture('stories260K.bin'), fixture('tok512.bin'), '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      `wrote ${out}: config.json, generation_config.json, model.safetensors, tokenizer.bin, tokenizer.json, tokenizer_config.json, special_tokens_map.json\n` +
        '  llama dim=64 layers=5 heads=8/4 hidden=172 vocab=512 seq=512 tied=true\n' +
        '  model.safetensors sha256 7fe20d74ed0c9325c818c61ad972080a09b1d862dea4d4868f25afdff0ac6f98\n',
    );
    expect(Buffer.compare(readFileSync(join(out, 'model.safetensors')), readFileSync(join(root, 'models/stories260K/model.safetensors')))).toBe(0);
  });

  it('reports a truncated checkpoint and a missing file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lisa-cli-'));
    const truncated = join(dir, 'short.bin');
    writeFileSync(truncated, readFileSync(fixture('stories260K.bin')).subarray(0, 500_000));
    const r = lisa('convert-llama2c', truncated, fixture('tok512.bin'), '--out', join(dir, 'out'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error LLAMA2C_CHECKPOINT_INVALID: ${truncated}: truncated: the header (dim=64 hidden_dim=172 n_layers=5 n_heads=8 n_kv_heads=4 vocab_size=512 seq_len=512) implies 1056540 bytes, the file has 500000\n`,
    );
    const missing = lisa('convert-llama2c', join(dir, 'nope.bin'), fixture('tok512.bin'), '--out', join(dir, 'out'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error REF_NOT_FOUND: checkpoint ${join(dir, 'nope.bin')}: no such file or directory\n`);
  });
});
