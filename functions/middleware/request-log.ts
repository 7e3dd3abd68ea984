import type { MiddlewareHandler } from 'hono';
import type { AppDeps, Env } from '../context.ts';

/** probes, and what a dashboard page fetches every few seconds or on every load */
const QUIET = new Set(['/ping', '/metrics', '/healthz', '/runs/:id/head', '/assets/:name']);

/** One JSON log line and two metrics per request; a per-request child logger under `log`. */
export function requestLog(deps: Pick<AppDeps, 'clock' | 'logger' | 'metrics'>): MiddlewareHandler<Env> {
  return async (c, next) => {
    const t0 = deps.clock();
    c.set('log', deps.logger.child({ reqId: c.get('requestId') }));
    await next();
    const route = c.req.routePath || 'unmatched';
    const seconds = (deps.clock() - t0) / 1000;
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    if (!QUIET.has(route)) {
      c.get('log').info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1000), tenant: c.get('tenant') }, 'request');
    }
  };
}
