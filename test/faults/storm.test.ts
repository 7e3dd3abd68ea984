/** The short version of the storms in `npm run faults`: one storm of 32 requests on RGW (storm.ts). */
import { describe, expect, it } from 'vitest';
import { clearPrefix } from './s3-inputs.ts';
import { storm } from './storm.ts';

describe.runIf(process.env.LISA_TEST_S3)('a storm of chunk requests over two lisa serve processes on one S3 store', () => {
  it('seed 1: 4/4 chains linear, every loser a 409 naming a committed seq, replays give the first answer', async () => {
    const url = `${process.env.LISA_TEST_S3!.replace(/\/?$/, '/')}faults-storm-test-${Date.now()}`;
    try {
      const result = await storm(url, 1);
      expect(result, result.error).toMatchObject({ ok: true, linear: 4, other: {} });
      expect(result.committed + result.conflicts).toBe(32);
    } finally {
      await clearPrefix(url);
    }
  });
});
