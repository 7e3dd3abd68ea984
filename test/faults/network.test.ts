/**
 * The short version of the proxy trials in `npm run faults`: one seeded trial of four chunks with a
 * quarter of S3 requests faulted (network.ts checks each attempt commits whole or fails coded, the
 * chain and its objects verify, retries stay bounded).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { networkTrial, prepareNetworkTrials, type NetworkSetup } from './network.ts';

describe.runIf(process.env.LISA_TEST_S3)('network faults between lisa-fn and RGW', () => {
  let setup: NetworkSetup;
  beforeAll(async () => {
    setup = await prepareNetworkTrials();
  });
  afterAll(() => setup.close());

  it('seed 1: every chunk commits whole or fails with a code; no request tried more than 6 times', async () => {
    const trial = await networkTrial(setup, 1);
    expect(trial, trial.error).toMatchObject({ ok: true });
    expect(trial.maxTries).toBeLessThanOrEqual(6);
  });
});
