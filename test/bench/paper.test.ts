/**
 * bench/paper.ts on its --tiny config: it runs end to end and its JSON has every field the issue
 * names, for every row of both models, plus the goals and the figures. Timings are not asserted;
 * sizes are (what each method uploads follows from what it trains).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;

describe('bench/paper.ts --tiny', () => {
  it('writes paper.json with every field, the goals, a report and SVG figures', () => {
    const out = mkdtempSync(join(tmpdir(), 'lisa-paper-test-'));
    const r = spawnSync(join(root, 'node_modules/.bin/tsx'), ['bench/paper.ts', '--tiny', '--out', out], { cwd: root, encoding: 'utf8', timeout: 540_000, env: { ...process.env, LISA_BACKEND: 'wasm' } });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'paper.json'), 'utf8'));
    // LoRA ranks scale with width: round(r·d/4096), at least 1 (stories260K d=64, the tiny llama d=16)
    const labels = (r128: number) => ['FT', 'LoRA r=8 (1)', `LoRA r=128 (${r128})`, 'LISA E+H', 'LISA E+H+1L', 'LISA E+H+2L', 'LISA E+H+4L'];
    expect(json.rows.map((x: { model: string; label: string }) => `${x.model}/${x.label}`)).toEqual([
      ...labels(2).map((l) => `stories260K/${l}`),
      ...labels(1).map((l) => `llama-12L-tiny/${l}`),
    ]);
    for (const row of json.rows) {
      expect(Object.keys(row)).toEqual(expect.arrayContaining(['model', 'method', 'label', 'peakBytes', 'msPerStep', 'heldOutLoss', 'bytesPerChunk', 'steps']));
      expect(row.method).toBe(row.label === 'FT' ? 'full' : row.label.startsWith('LoRA') ? 'lora' : 'lisa');
      for (const k of ['peakBytes', 'msPerStep', 'heldOutLoss', 'bytesPerChunk']) expect(row[k] > 0 && Number.isFinite(row[k]), `${row.label} ${k}`).toBe(true);
      expect([row.steps, row.lossCurve.length]).toEqual([4, 4]);
    }
    for (const model of ['stories260K', 'llama-12L-tiny']) {
      const of = (label: string) => json.rows.find((x: { model: string; label: string }) => x.model === model && x.label.startsWith(label));
      // FT uploads every unit, LoRA only adapters, LISA embed + head + γ blocks
      expect(of('LoRA r=8').bytesPerChunk).toBeLessThan(of('LISA E+H').bytesPerChunk);
      expect(of('LISA E+H').bytesPerChunk).toBeLessThan(of('LISA E+H+1L').bytesPerChunk);
      expect(of('LISA E+H+4L').bytesPerChunk).toBeLessThan(of('FT').bytesPerChunk);
      const goals = json.goals[model];
      expect(Object.keys(goals)).toEqual(['memoryVsLora', 'memoryVsFt', 'timeVsFt', 'timeVsLora', ...(model === 'stories260K' ? ['lossVsLora'] : [])]);
      for (const g of Object.values(goals) as Array<{ met: boolean; why?: string }>) expect(g.met || (g.why ?? '').length > 0).toBe(true);
    }
    expect(json.figures).toEqual(['loss-stories260k.svg', 'memory-time-stories260k.svg', 'loss-llama-12l-tiny.svg', 'memory-time-llama-12l-tiny.svg', 'update-norms.svg']);
    for (const f of json.figures) expect(readFileSync(join(out, f), 'utf8').startsWith('<svg'), f).toBe(true);
    expect(readFileSync(join(out, 'paper.md'), 'utf8')).toContain('## stories260K\n');
    rmSync(out, { recursive: true, force: true });
  });
});
