// Create the test bucket on the local RGW (with-s3.sh runs this once the gateway answers).
// Plain JS so it runs with bare node; endpoint and credentials come from the AWS_* env.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const bucket = process.argv[2];
if (!bucket) throw new Error('usage: make-bucket.mjs <bucket>');
const client = new S3Client({ forcePathStyle: true });
try {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
} catch (err) {
  // a rerun against a kept cluster is fine
  if (err?.name !== 'BucketAlreadyOwnedByYou') throw err;
} finally {
  client.destroy();
}
