import type { MiddlewareHandler } from 'hono';
import { bearerToken, tenantOfToken, type TokenEntry } from '../auth.ts';
import type { Env } from '../context.ts';
import { UnauthorizedError } from '../errors.ts';

/** Second header for the tenant token, for platforms whose gateway owns Authorization (RunPod). */
export const TOKEN_HEADER = 'X-Lisa-Token';

/** The caller's tenant from its bearer token (or X-Lisa-Token), or 401. */
export function bearerAuth(tokens: readonly TokenEntry[]): MiddlewareHandler<Env> {
  return async (c, next) => {
    const token = c.req.header(TOKEN_HEADER) ?? bearerToken(c.req.header('Authorization'));
    if (token === null) throw new UnauthorizedError('missing');
    const tenant = tenantOfToken(tokens, token);
    if (tenant === null) throw new UnauthorizedError('invalid');
    c.set('tenant', tenant);
    await next();
  };
}
