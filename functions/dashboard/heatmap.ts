/**
 * The layer heat map: the model's units (rows) × the run's chunks (columns). A cell says whether
 * the unit trained in the chunk and is coloured by one quantity the manifests record: the update
 * norm (how far the unit's weights moved), the gradient norm, or the probability the period drew
 * it with. Colours are LEVELS classes (no inline styles under the CSP), on a log scale for norms,
 * which span orders of magnitude between embed, blocks and head, and linear for probabilities.
 */
import { html } from 'hono/html';
import type { ChunkSummary, RunHistory } from '../../core/index.ts';
import { num, type Html } from './layout.ts';

export const HEAT_VIEWS = ['update', 'grad', 'p'] as const;
export type HeatView = (typeof HEAT_VIEWS)[number];

const LABEL: Record<HeatView, string> = { update: 'update norm', grad: 'gradient norm', p: 'sampling probability' };
const CAPTION: Record<HeatView, string> = {
  update: "L2 norm of the unit's weight change over the chunk, log scale",
  grad: "the unit's gradient norm before clipping, mean over the chunk's steps, log scale",
  p: 'the probability the period drew the unit with (drawn units outlined), linear scale',
};
export const LEVELS = 8;

interface Scale {
  min: number;
  max: number;
  level(v: number): number;
}

function scale(values: number[], log: boolean): Scale | null {
  const usable = log ? values.filter((v) => v > 0) : values;
  if (usable.length === 0) return null;
  const min = log ? Math.min(...usable) : 0;
  const max = Math.max(...usable);
  const at = (v: number) => (log ? Math.log(Math.max(v, min)) : v);
  const span = at(max) - at(min);
  return {
    min,
    max,
    level: (v) => (span > 0 ? Math.min(LEVELS - 1, Math.max(0, Math.floor((LEVELS * (at(v) - at(min))) / span))) : LEVELS - 1),
  };
}

/** The value a view colours a cell by, or null where the chunk records none. */
function valueOf(h: RunHistory, view: HeatView, c: ChunkSummary, unit: string): number | null {
  if (view === 'p') {
    const i = h.candidates.indexOf(unit);
    return i < 0 ? null : (c.probabilities?.[i] ?? null);
  }
  const norms = view === 'update' ? c.unitUpdateNorms : c.unitGradNorms;
  return norms?.[unit] ?? null;
}

function title(h: RunHistory, c: ChunkSummary, unit: string, trained: boolean): string {
  const parts = [`${unit} · chunk ${c.seq}, steps ${c.startStep}–${c.globalStep}: ${trained ? 'trained' : 'frozen'}`];
  for (const v of HEAT_VIEWS) {
    const x = valueOf(h, v, c, unit);
    if (x !== null) parts.push(`${LABEL[v]} ${num(x)}`);
  }
  return parts.join(' · ');
}

/** The views some chunk of the run has data for; update is always offered. */
export function heatViews(h: RunHistory): HeatView[] {
  return HEAT_VIEWS.filter((v) => v === 'update' || h.chunks.some((c) => h.units.some((u) => valueOf(h, v, c, u) !== null)));
}

export function heatmap(h: RunHistory, view: HeatView, href: (view: HeatView) => string): Html {
  const values = h.chunks.flatMap((c) => h.units.map((u) => valueOf(h, view, c, u)).filter((v): v is number => v !== null));
  const s = scale(values, view !== 'p');
  const cell = (c: ChunkSummary, unit: string): Html => {
    const trained = c.activeUnits.includes(unit);
    const v = valueOf(h, view, c, unit);
    const colour = v === null || s === null ? (trained ? 'on' : 'off') : `q${s.level(v)}${view === 'p' && trained ? ' drawn' : ''}`;
    return html`<td class="cell ${colour}" title="${title(h, c, unit, trained)}"></td>`;
  };
  const views = heatViews(h).map((v) =>
    v === view ? html`<strong aria-current="page">${LABEL[v]}</strong>` : html`<a href="${href(v)}">${LABEL[v]}</a>`,
  );
  return html`<nav class="heat-views">Colour by: ${views.map((v, i) => html`${i > 0 ? ' · ' : ''}${v}`)}</nav>
<div class="scroll">
<table class="heatmap" id="heatmap">
<thead><tr><th scope="col">unit \\ chunk</th>${h.chunks.map((c) => html`<th scope="col">${c.seq}</th>`)}</tr></thead>
<tbody>
${h.units.map((u) => html`<tr><th scope="row">${u}</th>${h.chunks.map((c) => cell(c, u))}</tr>
`)}</tbody>
</table>
</div>
<p class="legend"><span class="cell off"></span> frozen <span class="cell on"></span> trained${
    s
      ? html`, coloured by ${CAPTION[view]}: ${num(s.min)} ${Array.from({ length: LEVELS }, (_, i) => html`<span class="cell q${i}"></span>`)} ${num(s.max)}`
      : html` (no chunk records its ${LABEL[view]})`
  }</p>`;
}
