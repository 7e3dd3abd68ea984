import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { LisaError } from '../core/errors.ts';

/** Errors the HTTP layer raises itself; core's own errors arrive as LisaError subclasses. */
export class UnauthorizedError extends LisaError {
  constructor(readonly reason: 'missing' | 'invalid') {
    super(
      'UNAUTHORIZED',
      reason === 'missing'
        ? 'missing bearer token: send "Authorization: Bearer <token>"'
        : 'invalid bearer token: it matches no configured token (LISA_TOKENS / LISA_TOKENS_FILE)',
    );
  }
}

export class ShuttingDownError extends LisaError {
  constructor() {
    super('SHUTTING_DOWN', 'this instance is shutting down and starts no new chunk; retry on another instance');
  }
}

export class NotReadyError extends LisaError {
  constructor() {
    super('NOT_READY', 'this instance is still initializing (engine, caches); retry shortly');
  }
}

export class InvalidRequestError extends LisaError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}

/**
 * Status per stable error code. Codes neither listed nor matched by a family below are server
 * faults (500); their message is still returned because a LisaError message is written for users.
 */
const STATUS: Record<string, ContentfulStatusCode> = {
  UNAUTHORIZED: 401,
  BUDGET_EXCEEDED: 402,
  RUN_NOT_FOUND: 404,
  CHUNK_NOT_FOUND: 404,
  NOT_FOUND: 404,
  CHUNK_CONFLICT: 409,
  RUN_COMPLETE: 409,
  RUN_EXISTS: 409,
  IDEMPOTENCY_IN_PROGRESS: 409,
  EXPORT_OUTPUT_EXISTS: 409,
  // the base or data behind a run's refs changed since the run was created
  BASE_CHANGED: 409,
  DATA_CHANGED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  DEADLINE_TOO_SHORT: 422,
  IDEMPOTENCY_KEY_REUSED: 422,
  // the request is well-formed but what it refers to cannot be used
  REF_NOT_FOUND: 422,
  BASE_LAYOUT_INVALID: 422,
  CONFIG_INVALID: 422,
  SCHEDULE_CONFIG: 422,
  STORE_BAD_URL: 422,
  COMPOSE_BASE_MISMATCH: 422,
  DELTA_INVALID: 422,
  // a run whose gradients went non-finite: its hyperparameters, not the server
  OPTIM_NONFINITE_GRAD: 422,
  MERGE_INVALID_PARAMETERS: 400,
  EXPORT_BAD_SIZE: 400,
  EXPORT_BAD_OUTPUT: 400,
  EXPORT_BAD_OPTIONS: 400,
  EXPORT_NOT_LORA: 422,
  ENGINE_UNAVAILABLE: 503,
  NOT_READY: 503,
  SHUTTING_DOWN: 503,
};

/** Families of codes raised while reading a referenced base model or dataset. */
const UNUSABLE_INPUT = ['DATA_', 'MODEL_', 'TOKENIZER_', 'SAFETENSORS_'];

export function statusOf(code: string): ContentfulStatusCode {
  if (code in STATUS) return STATUS[code];
  if (code.startsWith('INVALID_')) return 400;
  return UNUSABLE_INPUT.some((p) => code.startsWith(p)) ? 422 : 500;
}

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
