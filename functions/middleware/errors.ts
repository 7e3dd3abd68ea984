import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { IdempotencyInProgressError, LisaError } from '../../core/index.ts';
import type { AppDeps, Env } from '../context.ts';
import { errorBody, internalErrorBody, InvalidRequestError, STATUS, UnauthorizedError } from '../errors.ts';

/**
 * Error mapping: a LisaError answers with the status of its kind and its code and message; any
 * other error is a bug, logged with its stack under the request id and answered 500 INTERNAL.
 */
export function errorHandler(deps: Pick<AppDeps, 'logger' | 'metrics'>): ErrorHandler<Env> {
  return (thrown, c) => {
    const reqId = c.get('requestId');
    const log = c.get('log') ?? deps.logger;
    const err = thrown instanceof HTTPException ? fromHttpException(thrown) : thrown;
    if (!(err instanceof LisaError)) {
      log.error({ err, reqId }, 'unhandled error');
      deps.metrics.errors.inc({ code: 'INTERNAL' });
      return c.json(internalErrorBody(reqId), 500);
    }
    const status = STATUS[err.kind];
    deps.metrics.errors.inc({ code: err.code });
    if (status >= 500) log.error({ err, reqId }, err.message);
    else log.info({ code: err.code, status }, err.message);
    setRetryHeaders(c, err, status);
    return c.json(errorBody(err, reqId), status);
  };
}

export const notFound: NotFoundHandler<Env> = (c) =>
  c.json(errorBody(new LisaError('ROUTE_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), c.get('requestId')), 404);

function setRetryHeaders(c: Context<Env>, err: LisaError, status: number): void {
  if (err instanceof UnauthorizedError) c.header('WWW-Authenticate', err.reason === 'missing' ? 'Bearer realm="lisa"' : 'Bearer realm="lisa", error="invalid_token"');
  if (err instanceof IdempotencyInProgressError) c.header('Retry-After', String(err.retryAfterSeconds));
  if (status === 503) c.header('Retry-After', '5');
  // the rest of an oversized body is never read: close instead of draining it to reuse the connection
  if (status === 413) c.header('Connection', 'close');
}

/** hono's own 4xx (body parsing) as stable codes; anything else stays an unexpected error. */
function fromHttpException(err: HTTPException): Error {
  if (err.status === 400) return new InvalidRequestError('REQUEST_JSON_INVALID', `request body is not valid JSON (${err.message})`);
  if (err.status === 415) return new InvalidRequestError('REQUEST_MEDIA_TYPE_UNSUPPORTED', 'send the request body as application/json');
  return err.status < 500 ? new InvalidRequestError('REQUEST_INVALID', err.message) : err;
}
