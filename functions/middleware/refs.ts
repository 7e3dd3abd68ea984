import type { MiddlewareHandler } from 'hono';
import type { AppDeps, Env } from '../context.ts';

/**
 * The ref policy: each request works on its tenant's runs, whose operations accept only refs
 * inside the tenant's area of the store (`tenants/{t}/inputs/`, `tenants/{t}/exports/`) and the
 * operator's LISA_REF_PREFIXES (core/runs/refs.ts holds the rule). A fresh view per request, so
 * its byte meter counts this request only.
 */
export function tenantRuns(deps: Pick<AppDeps, 'runs' | 'refPrefixes'>): MiddlewareHandler<Env> {
  return async (c, next) => {
    c.set('runs', deps.runs.forTenant(c.get('tenant'), deps.refPrefixes));
    await next();
  };
}
