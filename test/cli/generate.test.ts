import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const reference = (name: string) => readFileSync(new URL(`test/fixtures/stories260K/${name}`, `file://${root}`), 'utf8');

function lisa(...args: string[]) {
  const r = spawnSync('node', ['bin/lisa.js', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('lisa generate', () => {
  it('prints the prompt and its greedy continuation exactly like run.c', () => {
    const r = lisa('generate', '--model', 'models/stories260K', '--prompt', 'Once upon a time', '--max-tokens', '64', '--temperature', '0');
    expect(r.stderr).toMatch(/generated 60 tokens after a 5-token prompt/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${reference('reference-prompt-64.txt')}\n`);
  });

  it('generates from BOS alone when there is no prompt', () => {
    const r = lisa('generate', '--model', 'models/stories260K', '--max-tokens', '200', '--temperature', '0');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${reference('reference-greedy-200.txt')}\n`);
  });

  it('samples reproducibly with a seed', () => {
    const args = ['generate', '--model', 'models/stories260K', '--prompt', 'Tom', '--max-tokens', '40', '--temperature', '1', '--top-p', '0.9', '--seed', '7'];
    const a = lisa(...args);
    expect(a.code).toBe(0);
    expect(a.stdout.startsWith('Tom')).toBe(true);
    expect(lisa(...args).stdout).toBe(a.stdout);
  });

  it('rejects bad options and a missing model', () => {
    const zero = lisa('generate', '--model', 'models/stories260K', '--max-tokens', '0');
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain("expected an integer >= 1, got '0'");
    const topP = lisa('generate', '--model', 'models/stories260K', '--top-p', '1.5');
    expect(topP.code).toBe(1);
    expect(topP.stderr).toContain("expected a number in [0, 1], got '1.5'");
    const missing = lisa('generate', '--model', 'no/such/dir', '--max-tokens', '5');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error REF_NOT_FOUND: base no/such/dir: no such file or directory\n');
    expect(missing.stdout).toBe('');
  });

  it("--chat applies the model's chat template to the prompt and prints only the reply", () => {
    const args = ['generate', '--model', 'test/fixtures/families/qwen2/model', '--chat', '--prompt', 'Hi', '--max-tokens', '120', '--temperature', '0'];
    const r = lisa(...args);
    expect(r.code).toBe(0);
    // <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n ... <|im_start|>assistant\n: 40 tokens in this cut vocabulary
    expect(r.stderr).toMatch(/after a 40-token prompt/);
    expect(r.stdout).not.toContain('<|im_start|>');
    const custom = lisa(...args, '--chat-template', 'test/fixtures/families/chatml-plain.jinja');
    expect(custom.stderr).toMatch(/after a 15-token prompt/);
  });
});
