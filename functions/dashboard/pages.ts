/** The list of runs, the sign-in form and the error page. */
import { html } from 'hono/html';
import type { RunOverview } from '../../core/index.ts';
import { num, runHref, seconds, time, usd, type Html } from './layout.ts';
import { budgetLeft, methodOf, stateOf } from './run-page.ts';

export function runsPage(runs: readonly RunOverview[]): Html {
  if (runs.length === 0) return html`<h1>Runs</h1><p class="empty">No runs yet.</p>`;
  return html`<h1>Runs</h1>
<div class="scroll"><table class="data" id="runs">
<thead><tr><th>run</th><th>created</th><th>base</th><th>method</th><th>steps</th><th>loss</th><th>held-out</th><th>tokens</th><th>seconds</th><th>cost</th><th>budget left</th><th>state</th></tr></thead>
<tbody>
${runs.map((r) => {
  const link = html`<a href="${runHref(r.id)}">${r.id}</a>`;
  if ('unreadable' in r) {
    return html`<tr class="unreadable"><td>${link}</td><td colspan="11">unreadable: <code>${r.unreadable.key}</code>: ${r.unreadable.code}: ${r.unreadable.message}</td></tr>
`;
  }
  const s = r.status;
  const c = s.config;
  return html`<tr><td>${link}</td><td>${time(s.createdAt)}</td><td>${s.base.arch}, ${s.base.nLayers} layers</td><td>${methodOf(c)}</td><td>${s.totals.steps} / ${c.steps}</td><td>${num(s.head?.losses.at(-1))}</td><td>${num(s.head?.heldOut?.loss)}</td><td>${s.totals.tokens}</td><td>${seconds(s.totals.seconds)}</td><td>${usd(s.totals.costUsd)}</td><td>${budgetLeft(s, s.totals.costUsd)}</td><td>${stateOf(s)}</td></tr>
`;
})}</tbody>
</table></div>`;
}

export function signInPage(next: string, problem: string | null): Html {
  return html`<h1>Sign in</h1>
<p>Sign in with your tenant's bearer token (the one the API takes). The server keeps a signed session cookie, never the token.</p>
${problem ? html`<p class="problem" role="alert">${problem}</p>` : ''}
<form method="post" action="/login" class="sign-in">
<input type="hidden" name="next" value="${next}">
<label>Token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`;
}

export function errorPage(status: number, code: string, message: string, requestId: string | undefined): Html {
  const heading = status === 404 ? 'Not found' : status >= 500 ? 'Something went wrong' : 'That did not work';
  return html`<h1>${heading}</h1>
<p class="problem"><code>${code}</code>: ${message}</p>
${requestId ? html`<p>Request id <code>${requestId}</code> (the server log has the details).</p>` : ''}
<p><a href="/">All runs</a></p>`;
}
