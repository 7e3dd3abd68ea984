/**
 * The library as its front ends (cli/, functions/) see it: the run operations (core/runs/) and
 * what they take and return, the engine, and the error types. The front ends import nothing else
 * from core (eslint's no-restricted-imports holds them to it), so every run rule lives here once.
 */
export { ERROR_CODES, ERROR_KINDS, LisaError, type ErrorCode, type ErrorKind } from './errors.ts';
