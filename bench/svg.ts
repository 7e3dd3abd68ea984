/**
 * The benches' figures: a vega-lite spec rendered to SVG in Node by vega (pure JS: no browser, no
 * native build), for bench/sampling.ts and bench/paper.ts alike.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
