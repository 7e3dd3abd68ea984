/**
 * The run dashboard: server-rendered pages of the runs a caller may see, the same for `lisa serve`
 * (each tenant signs in with its token and sees its own runs) and `lisa dashboard` (a local store
 * on loopback, no sign-in). Pages read everything through the run API (core's Runs), like the
 * JSON routes. Every page is HTML that works without JavaScript; the run page's script draws its
 * charts and refreshes it while the run trains.
 *
 *   GET  /                         the runs
 *   GET  /runs/{id}[?heat=...]     one run (heat = update | grad | p colours the heat map)
 *   GET  /runs/{id}/head           {seq, complete}: what the page's script polls
 *   GET  /runs/{id}/chunks/{seq}.json   a committed manifest as stored
 *   GET  /assets/{name}            uPlot and our script, styles and icon, from the package (the icon
 *                                  also as /favicon.ico)
 *   GET|POST /login, POST /logout  sign-in (lisa serve only)
 *
 * Every response carries a strict Content-Security-Policy (scripts, styles, fetches: this origin
 * only; no inline script or style; no framing) and the usual hardening headers.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { secureHeaders } from 'hono/secure-headers';
import { LisaError, type Runs } from '../../core/index.ts';
import { InvalidRequestError, STATUS } from '../errors.ts';
import { loadAssets } from './assets.ts';
import { HEAT_VIEWS, type HeatView } from './heatmap.ts';
import { page, type Html } from './layout.ts';
import { errorPage, runsPage, signInPage } from './pages.ts';
import { runPage } from './run-page.ts';
import { SESSION_COOKIE, SESSION_SECONDS, type Sessions } from './session.ts';

/** Who sees which runs. */
export type DashboardAccess =
  /** lisa serve: each tenant signs in with its token and sees its own runs */
  | { sessions: Sessions; runsOf(tenant: string): Runs }
  /** lisa dashboard: every run of one store, no sign-in (loopback only) */
  | { runs: Runs };

export interface DashboardOptions {
  access: DashboardAccess;
  /** told about server-side failures (5xx): a bug, damaged data or an unavailable store */
  logError(err: unknown, c: Context): void;
}

type DashboardEnv = { Variables: { tenant: string; requestId: string } };

export class CrossOriginError extends LisaError {
  constructor(origin: string) {
    super('REQUEST_CROSS_ORIGIN', `a form posted from ${origin} to this dashboard; sign in from the dashboard's own page`, { origin });
  }
}

const PAGES = ['/', '/runs/*'];
const SEQ_FILE = /^(\d{1,8})\.json$/;
const LOCAL_PATH = /^\/(?![/\\])[\w\-/.?=&#]{0,200}$/;

export function dashboardRoutes(opts: DashboardOptions): Hono<DashboardEnv> {
  const app = new Hono<DashboardEnv>();
  const assets = loadAssets();
  const headers = secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      baseUri: ["'none'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: 'DENY',
    // not no-referrer: under it browsers send `Origin: null` with form posts, which sameOrigin needs
    referrerPolicy: 'same-origin',
    // TLS, and so HSTS, is the operator's proxy's to decide
    strictTransportSecurity: false,
  });
  for (const path of [...PAGES, '/login', '/logout', '/assets/*', '/favicon.ico']) app.use(path, headers);
  for (const path of PAGES) {
    app.use(path, async (c, next) => {
      await next();
      c.header('Cache-Control', 'no-store');
    });
  }

  const { access } = opts;
  const runsFor = (c: Context<DashboardEnv>): Runs => ('sessions' in access ? access.runsOf(c.get('tenant')) : access.runs);
  const render = (c: Context<DashboardEnv>, title: string, content: Html, extra: { scripts?: boolean; data?: Record<string, string> } = {}): Html => {
    if (!('sessions' in access)) return page({ title, scope: access.runs.store.url, signOut: false, ...extra }, content);
    const tenant = c.get('tenant') ?? null;
    return page({ title, scope: tenant === null ? '' : `tenant ${tenant}`, signOut: tenant !== null, ...extra }, content);
  };

  const serveAsset = (c: Context<DashboardEnv>, name: string) => {
    const asset = assets.get(name);
    if (!asset) throw new LisaError('ROUTE_NOT_FOUND', `no asset ${name}`);
    return c.body(asset.body as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=300' });
  };
  app.get('/assets/:name', (c) => serveAsset(c, c.req.param('name')));
  // what browsers ask for on pages without an icon link, such as a manifest's JSON
  app.get('/favicon.ico', (c) => serveAsset(c, 'favicon.svg'));

  if ('sessions' in access) signIn(app, access.sessions, render);

  app.get('/', async (c) => c.html(render(c, 'Runs', runsPage(await runsFor(c).overview()))));

  app.get('/runs/:id', async (c) => {
    const view = heatView(c.req.query('heat'));
    const history = await runsFor(c).history(c.req.param('id'));
    const data = { run: history.status.id, head: String(history.status.head?.seq ?? ''), live: String(!history.status.complete) };
    return c.html(render(c, `Run ${history.status.id}`, runPage(history, view), { scripts: true, data }));
  });

  app.get('/runs/:id/head', async (c) => {
    const status = await runsFor(c).status(c.req.param('id'));
    return c.json({ seq: status.head?.seq ?? null, complete: status.complete });
  });

  app.get('/runs/:id/chunks/:file', async (c) => {
    const m = SEQ_FILE.exec(c.req.param('file'));
    if (!m) throw new LisaError('ROUTE_NOT_FOUND', `no route GET ${c.req.path}: a manifest is /runs/{id}/chunks/{seq}.json`);
    const manifest = await runsFor(c).manifest(c.req.param('id'), Number(m[1]));
    return c.body(`${JSON.stringify(manifest, null, 1)}\n`, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });

  app.onError((thrown, c) => {
    const err = thrown instanceof LisaError ? thrown : null;
    const status = err ? STATUS[err.kind] : 500;
    if (status >= 500) opts.logError(thrown, c);
    const requestId = c.get('requestId');
    const message = err ? err.message : 'internal error: the server log has the details';
    return c.html(render(c, 'Error', errorPage(status, err?.code ?? 'INTERNAL', message, requestId)), status);
  });

  return app;
}

function heatView(q: string | undefined): HeatView {
  if (q === undefined) return 'update';
  if ((HEAT_VIEWS as readonly string[]).includes(q)) return q as HeatView;
  throw new InvalidRequestError('REQUEST_INVALID', `heat: expected one of ${HEAT_VIEWS.join(', ')}, got '${q}'`, { issues: [{ path: 'heat', message: 'unknown view' }] });
}

/**
 * Sign-in for lisa serve: the form posts the token once, the server answers with a session cookie
 * (HttpOnly, SameSite=Strict, Path=/; Secure behind https) and the pages ask for it. The /v1 API
 * never reads the cookie, so the cookie cannot be used to drive the API from another site.
 */
function signIn(app: Hono<DashboardEnv>, sessions: Sessions, render: (c: Context<DashboardEnv>, title: string, content: Html) => Html): void {
  const signInForm = (c: Context<DashboardEnv>, status: 200 | 400 | 401, next: string, problem: string | null) =>
    c.html(render(c, 'Sign in', signInPage(next, problem)), status);

  // without a session, to the sign-in form and back (a redirect, not a 401: browsers log those as errors)
  const signedIn: MiddlewareHandler<DashboardEnv> = async (c, next) => {
    const tenant = sessions.tenantOf(getCookie(c, SESSION_COOKIE));
    if (tenant === null) {
      const url = new URL(c.req.url);
      return c.redirect(`/login?${new URLSearchParams({ next: `${url.pathname}${url.search}` })}`, 303);
    }
    c.set('tenant', tenant);
    await next();
  };
  for (const path of PAGES) app.use(path, signedIn);

  app.get('/login', (c) => signInForm(c, 200, localPath(c.req.query('next')), null));

  app.post('/login', bodyLimit({ maxSize: 4096, onError: (c) => signInForm(c, 400, '/', 'The form is too large.') }), sameOrigin, async (c) => {
    const form = await c.req.parseBody();
    const next = localPath(form.next);
    const token = typeof form.token === 'string' ? form.token.trim() : '';
    if (token === '') return signInForm(c, 400, next, 'Enter a token.');
    const session = sessions.signIn(token);
    if (session === null) return signInForm(c, 401, next, 'That token matches no tenant on this server.');
    setCookie(c, SESSION_COOKIE, session.cookie, { httpOnly: true, sameSite: 'Strict', path: '/', maxAge: SESSION_SECONDS, secure: isHttps(c) });
    return c.redirect(next, 303);
  });

  app.post('/logout', sameOrigin, (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: isHttps(c) });
    return c.redirect('/login', 303);
  });
}

/** Where sign-in may send the browser on: a path on this site (never another origin), else '/'. */
function localPath(next: unknown): string {
  return typeof next === 'string' && LOCAL_PATH.test(next) ? next : '/';
}

/** A form post must come from this site: browsers send Origin with every POST. */
const sameOrigin: MiddlewareHandler<DashboardEnv> = async (c, next) => {
  const origin = c.req.header('Origin');
  if (origin !== undefined && hostOf(origin) !== c.req.header('Host')) throw new CrossOriginError(origin);
  await next();
};

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

const isHttps = (c: Context): boolean => new URL(c.req.url).protocol === 'https:' || c.req.header('X-Forwarded-Proto') === 'https';
