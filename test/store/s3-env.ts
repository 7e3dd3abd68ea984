import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';

/**
 * The S3 location for this test file: $LISA_TEST_S3 plus a fresh prefix, so reruns against a
 * persistent bucket never see old objects. Without LISA_TEST_S3 the file gets one failing test
 * that says how to run it: `npm test` always sets it (infra/local-s3/with-s3.sh starts Ceph RGW
 * in about 2 s), and an S3 suite that quietly skips would pass with S3 broken.
 */
export function s3TestUrl(label: string): string | null {
  const base = process.env.LISA_TEST_S3;
  if (base) return `${base.replace(/\/?$/, '/')}${label}-${Date.now()}-${randomBytes(3).toString('hex')}`;
  describe(`${label} (S3)`, () => {
    it('has an S3 endpoint to test against', () => {
      throw new Error('LISA_TEST_S3 is not set: run the suite through `npm test`, or one file with `bash infra/local-s3/with-s3.sh npx vitest run <file>` (starts Ceph RGW), or set LISA_TEST_S3 and AWS_ENDPOINT_URL_S3');
    });
  });
  return null;
}
