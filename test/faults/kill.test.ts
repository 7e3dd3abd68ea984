/**
 * The short version of `npm run faults` (test/faults/faults.ts runs ≥ 20 of each): kill -9 trials
 * on the directory store and on Ceph RGW, at seeds that land in upload and commit, and SIGTERM
 * drains of a real `lisa serve` with and without grace. Each trial checks its own invariants
 * (kill.ts, drain.ts); a failure prints the seed to replay with `npm run faults -- --seed N`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killTrial, prepareKillTrials, type KillSetup, type StoreKind } from './kill.ts';
import { drainTrial } from './drain.ts';

const STORES: Array<{ kind: StoreKind; name: string; enabled: boolean }> = [
  { kind: 'fs', name: 'the directory store', enabled: true },
  { kind: 's3', name: 'Ceph RGW', enabled: Boolean(process.env.LISA_TEST_S3) },
];

for (const { kind, name, enabled } of STORES) {
  describe.runIf(enabled)(`kill -9 on ${name}`, () => {
    let setup: KillSetup;
    beforeAll(async () => {
      setup = await prepareKillTrials(kind);
    });
    afterAll(() => setup.close());

    // seed 1 targets the commit, seed 3 the upload (mulberry32 draws the stage)
    for (const seed of [1, 3]) {
      it(`seed ${seed}: the head verifies, gc removes exactly the orphans, the next chunk resumes`, async () => {
        const trial = await killTrial(setup, seed);
        expect(trial, trial.error).toMatchObject({ ok: true });
      });
    }
  });
}

describe('SIGTERM under lisa serve', () => {
  for (const seed of [1, 2]) {
    it(`seed ${seed}: the drain commits the whole chunk or nothing`, async () => {
      const trial = await drainTrial(seed);
      expect(trial, trial.error).toMatchObject({ ok: true });
    });
  }
});
