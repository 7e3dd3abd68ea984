/**
 * bench/paper.ts's goals, figures (SVG from vega-lite specs, rendered by vega in Node) and
 * markdown report. Every explanation of a missed goal is built from the row's measurements.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from './svg.ts';

export interface Row {
  model: string;
  method: string;
  label: string;
  /** most bytes tfjs held after any kernel of the profiled chunk */
  peakBytes: number;
  msPerStep: number;
  heldOutLoss: number | null;
  bytesPerChunk: number;
  steps: number;
  realWeights: boolean;
  params: number;
  embedParams: number;
  /** bytes tfjs held between steps: weights, adapters, AdamW m and v of the trained units */
  heldBytes: number;
  /** the base's weights as F32 */
  weightBytes: number;
  lossCurve: number[];
  /** kernels by share of the profiled chunk's kernel time */
  topKernels: Array<{ name: string; share: number }>;
}

export interface Goal {
  goal: string;
  met: boolean;
  value: string;
  /** for a missed goal: what the measurements say holds the memory or takes the time */
  why?: string;
}

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

/** What a row holds: between steps (weights, adapters and optimizer state) and within a step (the rest of the peak). */
function memoryParts(r: Row): string {
  const transient = r.peakBytes - r.heldBytes;
  return (
    `${r.label} peaks at ${MiB(r.peakBytes)}: between steps it holds ${MiB(r.heldBytes)} (the base's weights ${MiB(r.weightBytes)}, ` +
    `${r.method === 'lora' ? 'adapters and their' : 'the trained units\''} AdamW m, v ${MiB(r.heldBytes - r.weightBytes)}); within the step, activations, ` +
    `gradients and temporaries add ${MiB(transient)} (${pct(transient / r.peakBytes)} of the peak)`
  );
}

function kernelParts(r: Row): string {
  return `${r.label} ${r.msPerStep.toFixed(1)} ms/step, kernel time ${r.topKernels.slice(0, 3).map((k) => `${k.name} ${pct(k.share)}`).join(', ')}`;
}

/** The issue's goals, per model: LISA E+H+2L against FT and the best (lowest) LoRA row of each measure. */
export function evaluateGoals(rows: Row[]): Record<string, Record<string, Goal>> {
  const out: Record<string, Record<string, Goal>> = {};
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const of = rows.filter((r) => r.model === model);
    const lisa = of.find((r) => r.label === 'LISA E+H+2L')!;
    const ft = of.find((r) => r.method === 'full')!;
    const loras = of.filter((r) => r.method === 'lora');
    const best = (key: 'peakBytes' | 'msPerStep' | 'heldOutLoss') => loras.reduce((a, b) => ((b[key] ?? Infinity) < (a[key] ?? Infinity) ? b : a));
    const embedShare = `The embedding is ${pct(lisa.embedParams / lisa.params)} of the parameters and LISA trains it every step`;
    const goals: Record<string, Goal> = {};
    const lora = best('peakBytes');
    goals.memoryVsLora = {
      goal: 'LISA E+H+2L peak memory ≤ LoRA',
      met: lisa.peakBytes <= lora.peakBytes,
      value: `${MiB(lisa.peakBytes)} vs ${lora.label} ${MiB(lora.peakBytes)} (${(lisa.peakBytes / lora.peakBytes).toFixed(2)}×)`,
      why: `${memoryParts(lisa)}. ${memoryParts(lora)}: its adapter products add tensors to every projection, and tfjs keeps every intermediate until the backward ends. ${embedShare}.`,
    };
    goals.memoryVsFt = {
      goal: 'LISA E+H+2L peak memory ≤ 0.5× FT',
      met: lisa.peakBytes <= 0.5 * ft.peakBytes,
      value: `${(lisa.peakBytes / ft.peakBytes).toFixed(2)}× (${MiB(lisa.peakBytes)} vs ${MiB(ft.peakBytes)})`,
      why: `${memoryParts(lisa)}. ${memoryParts(ft)}. What LISA saves is FT's optimizer state and weight gradients of the frozen blocks; the step's activations and activation gradients, which run through every block down to the embedding under both, are the same. ${embedShare}.`,
    };
    goals.timeVsFt = {
      goal: 'LISA E+H+2L ms/step ≤ 0.6× FT',
      met: lisa.msPerStep <= 0.6 * ft.msPerStep,
      value: `${(lisa.msPerStep / ft.msPerStep).toFixed(2)}× (${lisa.msPerStep.toFixed(1)} vs ${ft.msPerStep.toFixed(1)} ms)`,
      why: `${kernelParts(lisa)}; ${kernelParts(ft)}. Activation gradients flow down to the embedding under both, so LISA saves only the frozen blocks' weight gradients and optimizer updates.`,
    };
    const fast = best('msPerStep');
    goals.timeVsLora = {
      goal: 'LISA E+H+2L ms/step ≤ LoRA',
      met: lisa.msPerStep <= fast.msPerStep,
      value: `${lisa.msPerStep.toFixed(1)} vs ${fast.label} ${fast.msPerStep.toFixed(1)} ms (${(lisa.msPerStep / fast.msPerStep).toFixed(2)}×)`,
      why: `${kernelParts(lisa)}; ${kernelParts(fast)}. LoRA's backward stops at block 0 (the embedding is frozen) but runs two extra products per adapted projection.`,
    };
    if (lisa.realWeights) {
      const good = best('heldOutLoss');
      goals.lossVsLora = {
        goal: `LISA E+H+2L held-out loss after ${lisa.steps} steps ≤ LoRA`,
        met: (lisa.heldOutLoss ?? Infinity) <= (good.heldOutLoss ?? Infinity),
        value: `${lisa.heldOutLoss?.toFixed(4)} vs ${good.label} ${good.heldOutLoss?.toFixed(4)}`,
        why: `held-out loss per row: ${of.map((r) => `${r.label} ${r.heldOutLoss?.toFixed(4)}`).join(', ')}.`,
      };
    }
    for (const g of Object.values(goals)) if (g.met) delete g.why;
    out[model] = goals;
  }
  return out;
}

async function svg(spec: TopLevelSpec, file: string): Promise<void> {
  await writeFile(file, await renderSvg(spec));
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-');

/** Loss curves and memory/time bars per model, and Figure 2's per-unit update norms; returns the file names. */
export async function renderFigures(rows: Row[], updateNorms: Array<{ label: string; unit: string; norm: number }>, dir: string): Promise<string[]> {
  const files: string[] = [];
  const order = [...new Set(rows.map((r) => r.label))];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const of = rows.filter((r) => r.model === model);
    const loss = `loss-${slug(model)}.svg`;
    await svg(
      {
        title: `${model}: training loss`,
        width: 520,
        height: 280,
        data: { values: of.flatMap((r) => r.lossCurve.map((l, i) => ({ step: i + 1, loss: l, row: r.label }))) },
        mark: { type: 'line', strokeWidth: 1.5 },
        encoding: {
          x: { field: 'step', type: 'quantitative' },
          y: { field: 'loss', type: 'quantitative', scale: { zero: false } },
          color: { field: 'row', type: 'nominal', sort: order, title: null },
        },
      },
      join(dir, loss),
    );
    const bars = `memory-time-${slug(model)}.svg`;
    const values = of.map((r) => ({ row: r.label, 'peak MiB': r.peakBytes / 2 ** 20, 'ms/step': r.msPerStep }));
    const bar = (field: string) => ({
      width: 240,
      height: 200,
      mark: 'bar' as const,
      encoding: {
        y: { field: 'row', type: 'nominal' as const, sort: order, title: null },
        x: { field, type: 'quantitative' as const },
        color: { field: 'row', type: 'nominal' as const, sort: order, legend: null },
      },
    });
    await svg({ title: `${model}: peak engine memory and time per step`, data: { values }, hconcat: [bar('peak MiB'), bar('ms/step')] }, join(dir, bars));
    files.push(loss, bars);
  }
  if (updateNorms.length > 0) {
    const units = [...new Set(updateNorms.map((u) => u.unit))];
    await svg(
      {
        title: 'Figure 2: mean ‖W_t − W_0‖ per unit (stories260K)',
        width: 520,
        height: 260,
        data: { values: updateNorms },
        mark: 'bar',
        encoding: {
          x: { field: 'unit', type: 'nominal', sort: units, title: null },
          xOffset: { field: 'label', type: 'nominal' },
          y: { field: 'norm', type: 'quantitative', title: 'mean ‖W_t − W_0‖_F over the unit’s tensors' },
          color: { field: 'label', type: 'nominal', title: null },
        },
      },
      join(dir, 'update-norms.svg'),
    );
    files.push('update-norms.svg');
  }
  return files;
}

export function renderReport(settings: Record<string, unknown>, rows: Row[], goals: Record<string, Record<string, Goal>>, figures: string[]): string {
  const lines = [
    '# LISA against LoRA and full fine-tuning on this engine',
    '',
    'Written by `npx tsx bench/paper.ts` (`npm run bench:paper`); every number below comes from one run of it.',
    '',
    '```json',
    JSON.stringify(settings),
    '```',
    '',
  ];
  for (const model of [...new Set(rows.map((r) => r.model))]) {
    const of = rows.filter((r) => r.model === model);
    lines.push(`## ${model}${of[0].realWeights ? '' : ' (random weights: memory and time only)'}`, '');
    lines.push('| row | peak MiB | held between steps MiB | ms/step | held-out loss | KiB uploaded/chunk | top kernels (share of kernel time) |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const r of of) {
      lines.push(
        `| ${r.label} | ${(r.peakBytes / 2 ** 20).toFixed(2)} | ${(r.heldBytes / 2 ** 20).toFixed(2)} | ${r.msPerStep.toFixed(1)} | ${r.heldOutLoss?.toFixed(4) ?? '-'} | ${(r.bytesPerChunk / 1024).toFixed(0)} | ${r.topKernels.slice(0, 3).map((k) => `${k.name} ${pct(k.share)}`).join(', ')} |`,
      );
    }
    lines.push('', '| goal | | measured |', '| --- | --- | --- |');
    for (const g of Object.values(goals[model])) lines.push(`| ${g.goal} | ${g.met ? 'met' : '**missed**'} | ${g.value} |`);
    const missed = Object.values(goals[model]).filter((g) => !g.met);
    if (missed.length > 0) lines.push('', 'Why, from the measurements:', '', ...missed.map((g) => `- ${g.goal}: ${g.why}`));
    lines.push('');
  }
  lines.push('## Figures', '', ...figures.map((f) => `![${f}](${f})`), '');
  return lines.join('\n');
}
