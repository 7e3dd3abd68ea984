/**
 * The page frame and the formatting every page shares. Pages are hono `html` templates: every
 * interpolated string is HTML-escaped (& < > " '), nested templates are not escaped twice, and
 * `raw` is used in one place only, for JSON data blocks (jsonBlock).
 */
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

export interface Frame {
  title: string;
  /** who is looking: the tenant (server) or the store (local) */
  scope: string;
  /** a sign-out button (server sessions) */
  signOut: boolean;
  /** the chart library and our script (run pages) */
  scripts?: boolean;
  /** attributes of <main> the script reads, as data-* */
  data?: Record<string, string>;
}

export function page(frame: Frame, content: Html): Html {
  const data = Object.entries(frame.data ?? {}).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · lisa-fn</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/dashboard.css">
${frame.scripts ? html`<link rel="stylesheet" href="/assets/uplot.css">
<script src="/assets/uplot.js" defer></script>
<script src="/assets/dashboard.js" defer></script>` : ''}
</head>
<body>
<header>
<a class="brand" href="/">lisa-fn</a>
<span class="scope">${frame.scope}</span>
${frame.signOut ? html`<form method="post" action="/logout"><button type="submit">Sign out</button></form>` : ''}
</header>
<main${data}>
${content}
</main>
</body>
</html>
`;
}

/**
 * JSON for the page's script, in a data block the browser never executes (so the CSP's
 * script-src does not apply to it). '<' is written as \u003c, so no string in it can close the
 * element; JSON.parse reads it back unchanged.
 */
export function jsonBlock(id: string, value: unknown): Html {
  return html`<script type="application/json" id="${id}">${raw(JSON.stringify(value).replace(/</g, '\\u003c'))}</script>`;
}

/** A number with `digits` significant digits; '–' for none. */
export function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return Number(x.toPrecision(digits)).toString();
}

export const usd = (x: number): string => `$${x.toFixed(x !== 0 && Math.abs(x) < 0.01 ? 6 : 4)}`;

export const seconds = (s: number): string => (s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(2)} h`);

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** An ISO time as `2025-03-04 05:06:07Z`, or the text as given when it is not one. */
export const time = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

export const runHref = (id: string): string => `/runs/${encodeURIComponent(id)}`;
