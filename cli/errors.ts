import { CommanderError } from 'commander';
import { LisaError, type ErrorKind } from '../core/index.ts';

/**
 * The exit status of every kind of error (docs/errors.md lists them per code): 1 when the command
 * cannot succeed as given, 69 (sysexits EX_UNAVAILABLE) when a service it needs failed and a
 * retry may succeed, 70 (EX_SOFTWARE) for a bug or for damaged data the operator has to look at.
 */
export const EXIT: Record<ErrorKind, number> = {
  input: 1,
  auth: 1,
  budget: 1,
  forbidden: 1,
  'not-found': 1,
  conflict: 1,
  'too-large': 1,
  'unsupported-media': 1,
  'unusable-ref': 1,
  unprocessable: 1,
  integrity: 70,
  internal: 70,
  unavailable: 69,
};

/**
 * Prints an error as one `error CODE: message` line (the stack only with --verbose) and returns
 * the exit status. An error that is not a LisaError is a bug: it prints as INTERNAL.
 */
export function reportError(err: unknown, verbose: boolean, write: (text: string) => void): number {
  if (err instanceof CommanderError) return err.exitCode;
  const known = err instanceof LisaError;
  const message = err instanceof Error ? err.message : String(err);
  write(known ? `error ${err.code}: ${message}\n` : `error INTERNAL: ${message} (a bug; --verbose prints the stack to report)\n`);
  if (verbose && err instanceof Error && err.stack) write(`${err.stack}\n`);
  return known ? EXIT[err.kind] : EXIT.internal;
}
