import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Env } from '../context.ts';
import { InvalidRequestError } from '../errors.ts';
import { ErrorSchema } from '../schemas.ts';

/** A resource's routes: an OpenAPIHono whose schema failures answer 400 REQUEST_INVALID. */
export function resource(): OpenAPIHono<Env> {
  return new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues);
    },
  });
}

export const security = [{ bearer: [] }];

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'invalid input: details.issues lists each field path and what was expected',
  401: 'missing or invalid bearer token',
  402: 'the run has spent its maxCostUsd (details.spentUsd)',
  403: "a ref outside the tenant's area (REF_FORBIDDEN)",
  404: "no such run for this tenant (other tenants' runs are not found either)",
  409: 'conflict: another attempt committed (details.winningSeq), run complete, output exists, or the same Idempotency-Key still running',
  413: 'request body over 64 KiB',
  415: 'request body not application/json',
  422: 'a base, dataset or path that cannot be used, a deadline too short for a step and the commit, or an Idempotency-Key reused with another body',
  500: 'internal error or damaged stored data; quote the request id',
  503: 'initializing, shutting down, or the store is unavailable; retry',
};

const jsonError = { content: { 'application/json': { schema: ErrorSchema } } };

/** OpenAPI responses for the error statuses a route can answer (docs/errors.md has the codes). */
export const errors = (...statuses: number[]): Record<number, { description: string } & typeof jsonError> =>
  Object.fromEntries(statuses.map((s) => [s, { description: ERROR_DESCRIPTIONS[s] ?? 'error', ...jsonError }]));

function validationError(issues: z.core.$ZodIssue[]): InvalidRequestError {
  const list = issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: [...i.path, k].join('.'), message: 'unknown field; expected one of the documented fields' }))
      : [{ path: i.path.length ? i.path.join('.') : '(body)', message: i.message }],
  );
  return new InvalidRequestError('REQUEST_INVALID', `invalid request: ${list.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues: list });
}
