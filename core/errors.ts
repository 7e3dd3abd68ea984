/**
 * Every error lisa-fn raises on purpose is a LisaError with a stable `code`: the CLI prints
 * `code: message` without a stack trace, the HTTP layer maps codes to statuses, tests match codes.
 * Each module defines its own subclasses next to the code that throws them.
 */
export class LisaError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}
