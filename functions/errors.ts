import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { LisaError, type ErrorCode, type ErrorKind } from '../core/index.ts';

/** Errors the HTTP layer raises itself; core's own errors arrive as LisaError subclasses. */
export class UnauthorizedError extends LisaError {
  constructor(readonly reason: 'missing' | 'invalid') {
    super(
      reason === 'missing' ? 'AUTH_TOKEN_MISSING' : 'AUTH_TOKEN_INVALID',
      reason === 'missing'
        ? 'missing bearer token: send "Authorization: Bearer <token>"'
        : 'invalid bearer token: it matches no configured token (LISA_TOKENS / LISA_TOKENS_FILE)',
    );
  }
}

export class ShuttingDownError extends LisaError {
  constructor() {
    super('SERVER_SHUTTING_DOWN', 'this instance is shutting down and starts no new chunk; retry on another instance');
  }
}

export class NotReadyError extends LisaError {
  constructor() {
    super('SERVER_NOT_READY', 'this instance is still initializing (engine, caches); retry shortly');
  }
}

/** A request hono or the schemas rejected: malformed JSON, a field out of range, a body too large. */
export class InvalidRequestError extends LisaError {
  constructor(code: Extract<ErrorCode, `REQUEST_${string}`>, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/** The HTTP status of every kind of error (docs/errors.md lists them per code). */
export const STATUS: Record<ErrorKind, ContentfulStatusCode> = {
  input: 400,
  auth: 401,
  budget: 402,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'too-large': 413,
  'unsupported-media': 415,
  'unusable-ref': 422,
  unprocessable: 422,
  integrity: 500,
  internal: 500,
  unavailable: 503,
};

export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; details?: Record<string, unknown> };
}

export function errorBody(err: LisaError, requestId?: string): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(requestId !== undefined ? { requestId } : {}),
      ...(err.details !== undefined ? { details: err.details } : {}),
    },
  };
}

/** An unexpected failure: the client gets the request id to quote, never the stack or message. */
export function internalErrorBody(requestId: string): ErrorBody {
  return {
    error: {
      code: 'INTERNAL',
      message: `internal error; the server log has the details under request id ${requestId}`,
      requestId,
    },
  };
}
