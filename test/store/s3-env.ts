import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';

/**
 * The S3 location for this test file: $LISA_TEST_S3 plus a fresh prefix, so reruns against a
 * persistent bucket never see old objects. Without LISA_TEST_S3 the S3 tests are skipped with a
 * reason, except under CI=true, where a failing test says what is missing: `npm test` always sets
 * it (infra/local-s3/with-s3.sh), so its absence in CI is a broken setup, not a reason to skip.
 */
export function s3TestUrl(label: string): string | null {
  const base = process.env.LISA_TEST_S3;
  if (base) return `${base.replace(/\/?$/, '/')}${label}-${Date.now()}-${randomBytes(3).toString('hex')}`;
  if (process.env.CI === 'true') {
    describe(`${label} (S3)`, () => {
      it('has an S3 endpoint to test against', () => {
        throw new Error('LISA_TEST_S3 is not set under CI=true: run the suite through `npm test` (infra/local-s3/with-s3.sh starts Ceph RGW) or set LISA_TEST_S3 and AWS_ENDPOINT_URL_S3');
      });
    });
  } else {
    describe.skip(`${label} (S3): LISA_TEST_S3 not set; run bash infra/local-s3/with-s3.sh npx vitest run test/store/`, () => {
      it.skip('needs S3', () => undefined);
    });
  }
  return null;
}
