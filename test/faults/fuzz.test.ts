/**
 * The short run of `npm run fuzz`: 200 seeded cases per target (fuzz-targets.ts); only typed
 * errors, no crash, no hang past 5 s a case.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { fuzzTargets, httpTarget, scratchDir, type FuzzTarget } from './fuzz-targets.ts';

const CASES = 200;
let targets: FuzzTarget[];
let close: () => Promise<void>;

beforeAll(async () => {
  const scratch = await scratchDir();
  const http = await httpTarget();
  targets = [...(await fuzzTargets(scratch.dir)), http.target];
  close = async () => {
    await http.close();
    await scratch.close();
  };
});
afterAll(() => close());

describe('hostile input: only typed errors', () => {
  it(`${CASES} cases for each target`, async () => {
    for (const t of targets) await fc.assert(t.property, { numRuns: CASES, seed: 1, timeout: 5000 });
  });
});
