import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

describe('lisa demo', () => {
  it('fine-tunes the bundled model on the bundled data: loss falls over 5 chunks', () => {
    const store = join(mkdtempSync(join(tmpdir(), 'lisa-demo-')), 'store');
    const r = spawnSync('node', ['bin/lisa.js', 'demo', '--store', store], { cwd: root, encoding: 'utf8', timeout: 600_000 });
    expect(r.status, r.stderr).toBe(0);
    const chunks = [...r.stdout.matchAll(/^chunk (\d) {2}units (.+?)\s+loss ([\d.]+) → ([\d.]+)\s+held-out ([\d.]+)/gm)];
    expect(chunks.map((c) => Number(c[1]))).toEqual([0, 1, 2, 3, 4]);
    for (const c of chunks) expect(c[2].split(', ')).toEqual(expect.arrayContaining(['embed', 'head']));
    const heldOut = chunks.map((c) => Number(c[5]));
    const before = Number(/^before {2}held-out loss ([\d.]+)/m.exec(r.stdout)![1]);
    const after = Number(/^after {3}held-out loss ([\d.]+)/m.exec(r.stdout)![1]);
    expect(after).toBeCloseTo(heldOut[4], 2);
    expect(heldOut[4]).toBeLessThan(heldOut[0]);
    expect(after).toBeLessThan(before - 1);
    expect(r.stdout).toContain(`the run lives in ${store}/runs/`);
  });
});
