import { InvalidArgumentError } from 'commander';
import { parseSize } from '../core/index.ts';

/** Commander argument parsers: the one set every command uses. */

/** An integer, at least `min` when given. */
export const intArg =
  (min = -Infinity) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(min === -Infinity ? `expected an integer, got '${value}'` : `expected an integer >= ${min}, got '${value}'`);
    }
    return n;
  };

/** A finite number, within [min, max] when given. */
export const numberArg =
  (min = -Infinity, max = Infinity) =>
  (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      const range = min === -Infinity && max === Infinity ? '' : ` in [${min}, ${max === Infinity ? '∞' : max}]`;
      throw new InvalidArgumentError(`expected a number${range}, got '${value}'`);
    }
    return n;
  };

/** A size like 2GB or 500MB, in bytes. */
export function sizeArg(value: string): number {
  try {
    return parseSize(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
