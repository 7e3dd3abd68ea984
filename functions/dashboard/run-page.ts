/** The page of one run: totals, charts, the heat map, the chunk table, outputs and config. */
import { html } from 'hono/html';
import type { ChunkSummary, OutputRecord, RunConfig, RunHistory, RunSpec, RunStatus, UnreadableObject } from '../../core/index.ts';
import { heatmap, type HeatView } from './heatmap.ts';
import { bytes, jsonBlock, num, runHref, seconds, time, usd, type Html } from './layout.ts';

/** What the charts draw, one entry per optimizer step (x = the global step after it). */
export interface Series {
  steps: number[];
  loss: number[];
  /** each chunk's held-out loss at its last step, null elsewhere */
  heldOut: (number | null)[];
  lr: number[];
}

export function series(chunks: readonly ChunkSummary[]): Series {
  const s: Series = { steps: [], loss: [], heldOut: [], lr: [] };
  for (const c of chunks) {
    c.losses.forEach((loss, i) => {
      s.steps.push(c.startStep + i + 1);
      s.loss.push(loss);
      s.lr.push(c.learningRates[i]);
      s.heldOut.push(i === c.losses.length - 1 && c.heldOut ? c.heldOut.loss : null);
    });
  }
  return s;
}

export function budgetLeft(spec: RunSpec, spentUsd: number): string {
  const max = spec.config.maxCostUsd;
  return max === undefined ? 'no budget set' : `${usd(Math.max(0, max - spentUsd))} of ${usd(max)}`;
}

/** The method and its main options in a few words, e.g. `lisa: γ 2, K 10, uniform`. */
export function methodOf(c: RunConfig): string {
  if (c.method === 'lisa') return `lisa: γ ${c.activeLayers}, K ${c.period}, ${c.sampler}`;
  return c.method === 'lora' ? `lora: rank ${c.loraRank}, α ${c.loraAlpha}` : 'full';
}

export function stateOf(status: RunStatus): string {
  if (status.complete) return 'complete';
  return status.head === null ? 'no chunk yet' : 'training';
}

export function runPage(h: RunHistory, view: HeatView): Html {
  const { status } = h;
  const id = status.id;
  const steps = status.config.steps;
  const lede =
    h.chunks.length === 0
      ? 'No chunk committed yet: the charts and tables fill in as chunks commit.'
      : status.complete
        ? `Complete: all ${steps} steps trained in ${h.chunks.length} chunks.`
        : `Training: ${status.head!.globalStep} of ${steps} steps in ${h.chunks.length} chunks; this page refreshes as chunks commit.`;
  const heatHref = (v: HeatView) => `${runHref(id)}?heat=${v}#units`;
  return html`<h1>Run <span class="id">${id}</span></h1>
<p class="lede">${lede}</p>
${h.unreadable.length ? unreadable(h.unreadable) : ''}
<section aria-labelledby="totals-h">
<h2 id="totals-h">Totals</h2>
<dl class="totals">
<div><dt>steps</dt><dd>${status.totals.steps} / ${steps}</dd></div>
<div><dt>tokens</dt><dd>${status.totals.tokens}</dd></div>
<div><dt>seconds</dt><dd>${seconds(status.totals.seconds)}</dd></div>
<div><dt>cost</dt><dd>${usd(status.totals.costUsd)}</dd></div>
<div><dt>budget left</dt><dd>${budgetLeft(status, status.totals.costUsd)}</dd></div>
<div><dt>bytes in / out</dt><dd>${bytes(status.totals.bytes.in)} / ${bytes(status.totals.bytes.out)}</dd></div>
</dl>
</section>
<section aria-labelledby="charts-h">
<h2 id="charts-h">Loss and learning rate</h2>
${h.chunks.length === 0 ? html`<p class="empty">No chunk committed yet: the charts are empty until the first one commits.</p>` : ''}
${h.chunks.length > 0 && h.chunks.every((c) => c.heldOut === null) ? html`<p class="note">No held-out loss: the run holds out no examples (heldOut 0).</p>` : ''}
<noscript><p class="note">The charts need JavaScript; the tables below have every number.</p></noscript>
<div class="charts">
<figure><figcaption>Loss: training (per step) and held-out (per chunk) over the global step</figcaption><div class="chart" id="chart-loss"></div></figure>
<figure><figcaption>Learning rate over the global step</figcaption><div class="chart" id="chart-lr"></div></figure>
</div>
${jsonBlock('series', series(h.chunks))}
</section>
<section aria-labelledby="units-h" id="units">
<h2 id="units-h">Units × chunks</h2>
${heatmap(h, view, heatHref)}
</section>
<section aria-labelledby="chunks-h">
<h2 id="chunks-h">Chunks</h2>
${h.chunks.length === 0 ? html`<p class="empty">No chunk committed yet.</p>` : chunkTable(id, h.chunks)}
</section>
<section aria-labelledby="outputs-h">
<h2 id="outputs-h">Exports and compositions</h2>
${h.outputs.length === 0 ? html`<p class="empty">None yet: <code>lisa export</code>, <code>lisa compose</code> and their HTTP routes record each one here.</p>` : outputTable(h.outputs)}
</section>
<section aria-labelledby="config-h">
<h2 id="config-h">Method and config</h2>
${configTable(status)}
</section>`;
}

function unreadable(list: readonly UnreadableObject[]): Html {
  return html`<section class="problems" role="alert" aria-labelledby="problems-h">
<h2 id="problems-h">Unreadable objects</h2>
<p>These objects could not be read; the rest of the page is shown without them.</p>
<ul>${list.map((u) => html`<li><code>${u.key}</code>: ${u.code}: ${u.message}</li>`)}</ul>
</section>`;
}

function chunkTable(id: string, chunks: readonly ChunkSummary[]): Html {
  return html`<div class="scroll"><table class="data" id="chunks">
<thead><tr><th>seq</th><th>committed</th><th>period</th><th>units</th><th>steps</th><th>stopped by</th><th>loss</th><th>held-out</th><th>tokens</th><th>Σ tokens</th><th>seconds</th><th>Σ seconds</th><th>cost</th><th>Σ cost</th></tr></thead>
<tbody>
${chunks.map(
  (c) => html`<tr><td><a href="${runHref(id)}/chunks/${c.seq}.json">${c.seq}</a></td><td>${time(c.createdAt)}</td><td>${c.period}</td><td>${c.activeUnits.join(' ')}</td><td>${c.startStep}–${c.globalStep}</td><td>${c.stoppedBy}</td><td>${c.losses.length ? `${num(c.losses[0])} → ${num(c.losses.at(-1))}` : '–'}</td><td>${num(c.heldOut?.loss)}</td><td>${c.tokens}</td><td>${c.totals.tokens}</td><td>${c.seconds.wall.toFixed(1)}</td><td>${c.totals.seconds.toFixed(1)}</td><td>${usd(c.costUsd)}</td><td>${usd(c.totals.costUsd)}</td></tr>
`,
)}</tbody>
</table></div>`;
}

function outputTable(outputs: readonly OutputRecord[]): Html {
  return html`<div class="scroll"><table class="data" id="outputs">
<thead><tr><th>when</th><th>what</th><th>of</th><th>written to</th><th>units from the run</th><th>dtype</th><th>files</th><th>bytes</th><th>seconds</th></tr></thead>
<tbody>
${outputs.map(
  (o) => html`<tr><td>${time(o.createdAt)}</td><td>${o.kind === 'export' ? (o.delta ? 'delta package' : 'export') : `composition (${o.method})`}</td><td>${o.kind === 'export' ? `seq ${o.seq}` : o.runs.map((r) => `${r.runId}@${r.seq}×${r.weight}`).join(' ')}</td><td><code>${o.out}</code></td><td>${o.units.join(' ') || 'none'}</td><td>${o.dtype}</td><td>${o.files}</td><td>${bytes(o.bytes)}</td><td>${o.seconds.toFixed(2)}</td></tr>
`,
)}</tbody>
</table></div>`;
}

function configTable(spec: RunSpec): Html {
  const value = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
  const rows: [string, unknown][] = [
    ...Object.entries(spec.config),
    ['base.arch', spec.base.arch],
    ['base.nLayers', spec.base.nLayers],
    ['base.sha256', spec.base.sha256],
    ['data.examples', spec.data.examples],
    ['data.heldOut', spec.data.heldOut],
    ['data.sha256', spec.data.sha256],
    ['created', time(spec.createdAt)],
    ...(spec.outlier ? ([['outlier.ratios', spec.outlier.ratios]] as [string, unknown][]) : []),
  ];
  return html`<table class="data config" id="config"><tbody>
${rows.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${value(v)}</td></tr>
`)}</tbody></table>`;
}
