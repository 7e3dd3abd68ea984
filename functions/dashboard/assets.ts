import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The files the pages load, served from the package itself (no CDN: the machines may have no
 * internet): uPlot (MIT, from node_modules) draws the charts; the script, styles and icon are ours.
 */
export interface Asset {
  body: Uint8Array;
  type: string;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

export function loadAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const own = (name: string) => fileURLToPath(new URL(`./assets/${name}`, import.meta.url));
  const files: [string, string, string][] = [
    ['uplot.js', require.resolve('uplot/dist/uPlot.iife.min.js'), JS],
    ['uplot.css', require.resolve('uplot/dist/uPlot.min.css'), CSS],
    ['dashboard.js', own('dashboard.js'), JS],
    ['dashboard.css', own('dashboard.css'), CSS],
    ['favicon.svg', own('favicon.svg'), 'image/svg+xml'],
  ];
  return new Map(files.map(([name, path, type]) => [name, { body: readFileSync(path), type }]));
}
