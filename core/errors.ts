/**
 * Every error lisa-fn raises on purpose is a LisaError with a stable `code` and the `kind` of
 * failure it is. Front ends derive what they show from the kind alone: the HTTP status
 * (functions/errors.ts) and the CLI exit code (cli/errors.ts). Tests match codes.
 *
 * Codes name the area first, then what is wrong: RUN_NOT_FOUND, STORE_URL_INVALID, REF_FORBIDDEN.
 * ERROR_CODES below is the one list of them; docs/errors.md documents each, and a test holds the
 * two (and the codes the sources actually throw) in step. Each module defines its own subclasses
 * next to the code that throws them.
 */

/** What kind of failure an error is, from the point of view of whoever has to act on it. */
export const ERROR_KINDS = [
  /** the request or options are malformed or out of range: fix them */
  'input',
  /** no or a wrong credential (HTTP only) */
  'auth',
  /** the run has spent its budget */
  'budget',
  /** the request names something it may not use (a ref outside the tenant's area) */
  'forbidden',
  /** the run, chunk or object named does not exist (for this tenant) */
  'not-found',
  /** the request clashes with the current state: another commit won, the run is complete, the output exists */
  'conflict',
  /** the request body is too large (HTTP only) */
  'too-large',
  /** the request body is not JSON (HTTP only) */
  'unsupported-media',
  /** a base model, dataset or path the request refers to is missing, unreadable or unusable */
  'unusable-ref',
  /** well-formed, but cannot be carried out as asked (a deadline too short for one step, non-finite gradients) */
  'unprocessable',
  /** data the system wrote itself (a manifest, a unit object) is damaged, or an input a run pinned by sha256 changed */
  'integrity',
  /** a service this process needs (object store, hub, engine) is unavailable, or the process is starting or stopping: retry later */
  'unavailable',
  /** a bug or a misuse of the library: report it */
  'internal',
] as const;

export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Every error code and its kind. docs/errors.md has a row for each (test/errors.test.ts checks). */
export const ERROR_CODES = {
  // runs and chunks (core/store, core/train, core/runs)
  RUN_CONFIG_INVALID: 'input',
  RUN_ID_INVALID: 'input',
  RUN_NOT_FOUND: 'not-found',
  RUN_EXISTS: 'conflict',
  RUN_COMPLETE: 'conflict',
  CHUNK_NOT_FOUND: 'not-found',
  CHUNK_CONFLICT: 'conflict',
  BUDGET_EXCEEDED: 'budget',
  DEADLINE_TOO_SHORT: 'unprocessable',
  BASE_CHANGED: 'integrity',
  DATA_CHANGED: 'integrity',
  IDEMPOTENCY_KEY_INVALID: 'input',
  IDEMPOTENCY_KEY_REUSED: 'unprocessable',
  IDEMPOTENCY_IN_PROGRESS: 'conflict',
  UNIT_OBJECT_INVALID: 'integrity',
  RUN_CALIBRATION_MISSING: 'integrity',
  SAMPLER_HISTORY_MISSING: 'integrity',
  // refs: the base, data, store and output locations a caller names (core/runs/refs.ts)
  REF_NOT_FOUND: 'unusable-ref',
  REF_INACCESSIBLE: 'unusable-ref',
  REF_WRONG_TYPE: 'unusable-ref',
  REF_FORBIDDEN: 'forbidden',
  // object stores (core/store)
  STORE_URL_INVALID: 'input',
  STORE_KEY_INVALID: 'input',
  STORE_CONFIG_INVALID: 'input',
  STORE_NOT_FOUND: 'not-found',
  STORE_OBJECT_CORRUPT: 'integrity',
  STORE_OBJECT_INVALID: 'integrity',
  STORE_ACCESS_DENIED: 'unavailable',
  STORE_BUCKET_NOT_FOUND: 'unavailable',
  STORE_CREDENTIALS_MISSING: 'unavailable',
  STORE_REQUEST_FAILED: 'unavailable',
  STORE_READ_UNSTABLE: 'unavailable',
  STORE_RANGE_INVALID: 'internal',
  STORE_OBJECT_TOO_LARGE: 'internal',
  STORE_STREAM_CLOSED: 'internal',
  // the Hugging Face Hub (core/store/hub.ts)
  HUB_REF_INVALID: 'input',
  HUB_REPO_NOT_FOUND: 'unusable-ref',
  HUB_ACCESS_DENIED: 'unusable-ref',
  HUB_TOKEN_INVALID: 'unavailable',
  HUB_REQUEST_FAILED: 'unavailable',
  HUB_RANGE_IGNORED: 'unavailable',
  // byte sources and safetensors files (core/tensors)
  SOURCE_NOT_FOUND: 'unusable-ref',
  SOURCE_OUT_OF_RANGE: 'unusable-ref',
  SOURCE_RANGE_INVALID: 'internal',
  SAFETENSORS_TOO_SMALL: 'unusable-ref',
  SAFETENSORS_HEADER_TOO_LARGE: 'unusable-ref',
  SAFETENSORS_HEADER_BEYOND_FILE: 'unusable-ref',
  SAFETENSORS_HEADER_NOT_UTF8: 'unusable-ref',
  SAFETENSORS_HEADER_NOT_JSON: 'unusable-ref',
  SAFETENSORS_HEADER_NOT_OBJECT: 'unusable-ref',
  SAFETENSORS_DUPLICATE_TENSOR: 'unusable-ref',
  SAFETENSORS_DUPLICATE_KEY: 'unusable-ref',
  SAFETENSORS_METADATA_INVALID: 'unusable-ref',
  SAFETENSORS_ENTRY_INVALID: 'unusable-ref',
  SAFETENSORS_UNKNOWN_DTYPE: 'unusable-ref',
  SAFETENSORS_SHAPE_INVALID: 'unusable-ref',
  SAFETENSORS_OFFSETS_INVALID: 'unusable-ref',
  SAFETENSORS_SIZE_MISMATCH: 'unusable-ref',
  SAFETENSORS_OFFSETS_BEYOND_FILE: 'unusable-ref',
  SAFETENSORS_OVERLAP: 'unusable-ref',
  SAFETENSORS_HOLE: 'unusable-ref',
  SAFETENSORS_TRAILING_BYTES: 'unusable-ref',
  SAFETENSORS_NOT_FLOAT: 'unusable-ref',
  SAFETENSORS_RESERVED_NAME: 'input',
  SAFETENSORS_DATA_TYPE: 'internal',
  SAFETENSORS_DATA_LENGTH: 'internal',
  // base models (core/models)
  MODEL_CONFIG_INVALID: 'unusable-ref',
  MODEL_ARCHITECTURE_UNSUPPORTED: 'unusable-ref',
  MODEL_FILE_MISSING: 'unusable-ref',
  MODEL_FILE_INVALID: 'unusable-ref',
  MODEL_INDEX_INVALID: 'unusable-ref',
  MODEL_TENSORS_MISMATCH: 'unusable-ref',
  MODEL_UNKNOWN_TENSOR: 'unusable-ref',
  MODEL_WEIGHTS_INVALID: 'unusable-ref',
  MODEL_OUT_DIR_NOT_EMPTY: 'conflict',
  MODEL_SEQUENCE_TOO_LONG: 'input',
  MODEL_TOO_BIG_FOR_BACKEND: 'unprocessable',
  LLAMA2C_CHECKPOINT_INVALID: 'unusable-ref',
  GENERATE_OPTIONS_INVALID: 'input',
  // tokenizers (core/tokenizers)
  TOKENIZER_INVALID: 'unusable-ref',
  TOKENIZER_NOT_FOUND: 'unusable-ref',
  TOKENIZER_NOT_CONVERTIBLE: 'unusable-ref',
  TOKENIZER_ENCODE_FAILED: 'unusable-ref',
  TOKENIZER_ID_INVALID: 'input',
  // datasets (core/data)
  DATA_LINE_INVALID: 'unusable-ref',
  DATA_MISSING_FIELD: 'unusable-ref',
  DATA_FIELD_TYPE: 'unusable-ref',
  DATA_EMPTY: 'unusable-ref',
  DATA_UNKNOWN_FORMAT: 'unusable-ref',
  DATA_CHAT_ROW_INVALID: 'unusable-ref',
  DATA_CHAT_ASSISTANT_MISSING: 'unusable-ref',
  DATA_CHAT_TEMPLATE_INVALID: 'unusable-ref',
  DATA_CHAT_TEMPLATE_UNSTABLE: 'unusable-ref',
  DATA_CONFIG_INVALID: 'input',
  // schedule, optimizer, PRNG (core/lisa, core/optim)
  SCHEDULE_CONFIG_INVALID: 'input',
  RNG_INVALID: 'input',
  OPTIM_CONFIG_INVALID: 'input',
  OPTIM_NONFINITE_GRAD: 'unprocessable',
  OPTIM_GRAD_MISMATCH: 'internal',
  OPTIM_STATE_INVALID: 'integrity',
  // export, delta packages, composition (core/merge)
  EXPORT_OUTPUT_EXISTS: 'conflict',
  EXPORT_OUTPUT_INVALID: 'input',
  EXPORT_SIZE_INVALID: 'input',
  EXPORT_OPTIONS_INVALID: 'input',
  EXPORT_RUN_NOT_LORA: 'unprocessable',
  EXPORT_STORE_MISSING: 'internal',
  BASE_LAYOUT_INVALID: 'unusable-ref',
  DELTA_INVALID: 'unusable-ref',
  DELTA_CORRUPT: 'integrity',
  DELTA_BASE_MISMATCH: 'unusable-ref',
  COMPOSE_BASE_MISMATCH: 'unusable-ref',
  MERGE_PARAMETERS_INVALID: 'input',
  MERGE_UNIT_MISMATCH: 'integrity',
  // the engine (core/engine)
  ENGINE_BACKEND_INVALID: 'input',
  ENGINE_UNAVAILABLE: 'unavailable',
  // the HTTP function (functions/)
  AUTH_TOKEN_MISSING: 'auth',
  AUTH_TOKEN_INVALID: 'auth',
  REQUEST_INVALID: 'input',
  REQUEST_JSON_INVALID: 'input',
  REQUEST_TOO_LARGE: 'too-large',
  REQUEST_MEDIA_TYPE_UNSUPPORTED: 'unsupported-media',
  REQUEST_CROSS_ORIGIN: 'forbidden',
  REQUEST_HOST_INVALID: 'forbidden',
  ROUTE_NOT_FOUND: 'not-found',
  SERVER_CONFIG_INVALID: 'input',
  SERVER_NOT_READY: 'unavailable',
  SERVER_SHUTTING_DOWN: 'unavailable',
  TOKEN_CONFIG_INVALID: 'input',
  TENANT_INVALID: 'input',
  INTERNAL: 'internal',
  // the lisa command (cli/)
  GENERATE_SOURCE_INVALID: 'input',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class LisaError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.kind = ERROR_CODES[code];
    this.details = details;
  }
}
