import { describe, expect, it } from 'vitest';
import { FsStore } from '../../core/store/fs-store.ts';
import { openStore, parseStoreUrl } from '../../core/store/open.ts';
import { S3Store, s3ClientConfig } from '../../core/store/s3-store.ts';

describe('parseStoreUrl / openStore', () => {
  it('parses s3 urls, normalizing the prefix', () => {
    expect(parseStoreUrl('s3://my-bucket')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '' });
    expect(parseStoreUrl('s3://my-bucket/')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '' });
    expect(parseStoreUrl('s3://my-bucket/a/b')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'a/b/' });
    expect(parseStoreUrl('s3://my.bucket.1/a//b/')).toEqual({ kind: 's3', bucket: 'my.bucket.1', prefix: 'a/b/' });
  });

  it('parses file urls and paths', () => {
    expect(parseStoreUrl('file:///data/runs')).toEqual({ kind: 'dir', path: '/data/runs' });
    expect(parseStoreUrl('/data/runs')).toEqual({ kind: 'dir', path: '/data/runs' });
    expect(parseStoreUrl('rel/dir')).toEqual({ kind: 'dir', path: `${process.cwd()}/rel/dir` });
  });

  it.each([
    ['', 'empty'],
    ['s3://', 'no bucket name'],
    ['s3:///prefix', 'no bucket name'],
    ['s3://Upper/x', "'Upper' is not a valid S3 bucket name"],
    ['s3://ab', "'ab' is not a valid S3 bucket name"],
    ['s3://a..b', "'a..b' is not a valid S3 bucket name"],
    ['s3://bucket/../x', "prefix has a '.' or '..' segment"],
    ['gs://bucket/x', "unsupported scheme 'gs://'"],
    ['https://example.com/x', "unsupported scheme 'https://'"],
    ['file://otherhost/x', 'not a local file url'],
  ])('rejects %j: %s', (url, why) => {
    let err: unknown;
    try {
      parseStoreUrl(url);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'STORE_URL_INVALID', details: { url } });
    expect((err as Error).message).toContain(`store url '${url}': ${why}`);
    expect(() => openStore(url)).toThrow(expect.objectContaining({ code: 'STORE_URL_INVALID' }));
  });

  it('opens S3Store for s3:// and FsStore otherwise, with canonical urls', () => {
    const s3 = openStore('s3://my-bucket/runs/', { env: { AWS_REGION: 'eu-west-1' } });
    expect(s3).toBeInstanceOf(S3Store);
    expect(s3.url).toBe('s3://my-bucket/runs');
    expect((s3 as S3Store).prefix).toBe('runs/');
    expect(openStore('s3://my-bucket', { env: { AWS_REGION: 'eu-west-1' } }).url).toBe('s3://my-bucket');
    const fs = openStore('/data/runs');
    expect(fs).toBeInstanceOf(FsStore);
    expect(fs.url).toBe('file:///data/runs');
    expect(openStore('file:///data/runs').url).toBe('file:///data/runs');
  });

  it('rejects S3 part sizes below 5 MiB and bad concurrency', () => {
    expect(() => openStore('s3://my-bucket', { s3: { partSize: 1024 * 1024 } })).toThrow(expect.objectContaining({ code: 'STORE_CONFIG_INVALID' }));
    expect(() => openStore('s3://my-bucket', { s3: { concurrency: 0 } })).toThrow(expect.objectContaining({ code: 'STORE_CONFIG_INVALID' }));
  });
});

describe('s3ClientConfig (endpoint, region and credentials from the env passed in)', () => {
  const requestHandler = { connectionTimeout: 10_000, socketTimeout: 60_000 };
  it('uses AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL, with path-style addressing and us-east-1', () => {
    expect(s3ClientConfig({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:7480', AWS_ENDPOINT_URL: 'http://other:1' })).toEqual({
      maxAttempts: 1,
      requestHandler,
      endpoint: 'http://127.0.0.1:7480',
      forcePathStyle: true,
      region: 'us-east-1',
    });
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://minio:9000', AWS_REGION: 'eu-central-1' })).toEqual({
      maxAttempts: 1,
      requestHandler,
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
      region: 'eu-central-1',
    });
  });

  it('leaves AWS addressing and the default chains alone without an endpoint', () => {
    expect(s3ClientConfig({})).toEqual({ maxAttempts: 1, requestHandler });
    expect(s3ClientConfig({ AWS_DEFAULT_REGION: 'ap-south-1', AWS_ENDPOINT_URL_S3: '' })).toEqual({ maxAttempts: 1,
      requestHandler, region: 'ap-south-1' });
  });

  it('takes static keys (and a session token) from the env passed in', () => {
    expect(s3ClientConfig({ AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_SESSION_TOKEN: 'TOK', AWS_REGION: 'us-west-2' })).toEqual({
      maxAttempts: 1,
      requestHandler,
      region: 'us-west-2',
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOK' },
    });
    // half a key pair is no credential: the SDK chain decides
    expect(s3ClientConfig({ AWS_ACCESS_KEY_ID: 'AK' })).toEqual({ maxAttempts: 1, requestHandler });
  });

  it('takes the connect and socket timeouts from LISA_S3_*_TIMEOUT_SECONDS, refusing what is not positive', () => {
    expect(s3ClientConfig({ LISA_S3_CONNECT_TIMEOUT_SECONDS: '0.5', LISA_S3_SOCKET_TIMEOUT_SECONDS: '2' })).toEqual({
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 500, socketTimeout: 2000 },
    });
    for (const bad of ['0', '-1', 'soon', 'Infinity']) {
      expect(() => s3ClientConfig({ LISA_S3_SOCKET_TIMEOUT_SECONDS: bad })).toThrow(
        expect.objectContaining({ code: 'STORE_CONFIG_INVALID', message: `LISA_S3_SOCKET_TIMEOUT_SECONDS='${bad}' is not a positive number of seconds` }),
      );
    }
  });
});
