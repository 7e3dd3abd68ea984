// S3Store behaviour that needs a real S3 server plus injected faults: the conditional create's
// read-back decisions, retries, multipart abort, and errors from a misconfigured env.
import { createServer } from 'node:net';
import { ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStoreUrl, openStore } from '../../core/store/open.ts';
import { type RetryOptions, S3Store, s3ClientConfig, type S3StoreOptions } from '../../core/store/s3-store.ts';
import { s3TestUrl } from './s3-env.ts';

const MiB = 1024 * 1024;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

type Command = { constructor: { name: string }; input: Record<string, unknown> };
type Send = (cmd: Command) => Promise<unknown>;
/** decides per request: call `real` (or not) and return or throw */
type Hook = (cmd: Command, real: Send) => Promise<unknown>;

function awsError(name: string, status: number): Error {
  return Object.assign(new Error(`injected ${name}`), { name, $metadata: { httpStatusCode: status } });
}

const url = s3TestUrl('s3-store');

describe.runIf(url)('S3Store against a real S3 server, with injected faults', () => {
  const loc = parseStoreUrl(url ?? 's3://unused');
  if (loc.kind !== 's3') throw new Error(`LISA_TEST_S3 must be an s3:// url, got ${url}`);
  const { bucket, prefix } = loc;
  const real = new S3Client(s3ClientConfig(process.env));
  const sendReal: Send = (cmd) => real.send(cmd as never);
  const logs: string[] = [];

  /** an S3Store whose requests go through `hook`; `sent` records every command name */
  function faulty(hook: Hook, retry: Partial<RetryOptions> = { baseMs: 1, capMs: 5 }, opts: Partial<S3StoreOptions> = {}) {
    const client = new S3Client(s3ClientConfig(process.env));
    const sent: string[] = [];
    client.send = ((cmd: Command) => {
      sent.push(cmd.constructor.name);
      return hook(cmd, sendReal);
    }) as S3Client['send'];
    const store = new S3Store({ client, bucket, prefix, partSize: 5 * MiB, retry, log: (m) => logs.push(m), ...opts });
    return { store, sent };
  }
  const isConditionalPut = (cmd: Command) => cmd.constructor.name === 'PutObjectCommand' && cmd.input.IfNoneMatch === '*';
  const plain = openStore(url ?? 's3://unused', { env: process.env });

  afterAll(async () => {
    for (const key of await plain.list('')) await plain.delete(key);
    real.destroy();
  });

  it('createExclusive: the put landed but the answer was a 500 -> read back, our bytes -> "created"', async () => {
    let failed = 0;
    const { store, sent } = faulty(async (cmd, send) => {
      const res = await send(cmd);
      if (isConditionalPut(cmd) && failed++ === 0) throw awsError('InternalError', 500);
      return res;
    });
    expect(await store.createExclusive('ce/landed.json', bytes('ours'))).toBe('created');
    expect(sent).toEqual(['PutObjectCommand', 'GetObjectCommand']);
    expect(text(await plain.get('ce/landed.json'))).toBe('ours');
  });

  it('createExclusive: a 500 before anything landed -> read back finds nothing -> conditional put again -> "created"', async () => {
    let failed = 0;
    const { store, sent } = faulty(async (cmd, send) => {
      if (isConditionalPut(cmd) && failed++ === 0) throw awsError('InternalError', 500);
      return send(cmd);
    });
    expect(await store.createExclusive('ce/retried.json', bytes('ours'))).toBe('created');
    expect(sent).toEqual(['PutObjectCommand', 'GetObjectCommand', 'PutObjectCommand']);
    expect(text(await plain.get('ce/retried.json'))).toBe('ours');
  });

  it('createExclusive: a 500 while a rival\'s create landed (Ceph RGW on a race) -> other bytes -> "exists", theirs intact', async () => {
    const { store } = faulty(async (cmd, send) => {
      if (isConditionalPut(cmd)) {
        await send(new PutObjectCommand({ Bucket: bucket, Key: cmd.input.Key as string, Body: bytes('theirs'), IfNoneMatch: '*' }) as never);
        throw awsError('InternalError', 500);
      }
      return send(cmd);
    });
    expect(await store.createExclusive('ce/rival.json', bytes('ours'))).toBe('exists');
    expect(text(await plain.get('ce/rival.json'))).toBe('theirs');
  });

  it('createExclusive: 409 ConditionalRequestConflict and network errors are resolved by reading back too', async () => {
    const faults = [awsError('ConditionalRequestConflict', 409), Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })];
    const { store, sent } = faulty(async (cmd, send) => {
      if (isConditionalPut(cmd) && faults.length) throw faults.shift();
      return send(cmd);
    });
    expect(await store.createExclusive('ce/conflict.json', bytes('ours'))).toBe('created');
    expect(sent).toEqual(['PutObjectCommand', 'GetObjectCommand', 'PutObjectCommand', 'GetObjectCommand', 'PutObjectCommand']);
  });

  it('createExclusive: 412 is "exists" at once, never retried', async () => {
    await plain.put('ce/taken.json', bytes('first'));
    const { store, sent } = faulty((cmd, send) => send(cmd));
    expect(await store.createExclusive('ce/taken.json', bytes('second'))).toBe('exists');
    expect(sent).toEqual(['PutObjectCommand']);
    expect(text(await plain.get('ce/taken.json'))).toBe('first');
  });

  it('createExclusive: gives up with STORE_REQUEST_FAILED after `attempts` conditional puts that never land', async () => {
    const { store, sent } = faulty(
      async (cmd, send) => {
        if (isConditionalPut(cmd)) throw awsError('ServiceUnavailable', 503);
        return send(cmd);
      },
      { attempts: 3, baseMs: 1, capMs: 2 },
    );
    await expect(store.createExclusive('ce/never.json', bytes('x'))).rejects.toMatchObject({ code: 'STORE_REQUEST_FAILED', details: { status: 503 } });
    expect(sent.filter((n) => n === 'PutObjectCommand')).toHaveLength(3);
    expect(await plain.head('ce/never.json')).toBeNull();
  });

  it('retries throttling (503 SlowDown) on an idempotent get with backoff, and counts every request', async () => {
    await plain.put('rt/obj', bytes('payload'));
    let throttled = 0;
    const { store, sent } = faulty(async (cmd, send) => {
      if (cmd.constructor.name === 'GetObjectCommand' && throttled++ < 2) throw awsError('SlowDown', 503);
      return send(cmd);
    });
    logs.length = 0;
    expect(text(await store.get('rt/obj'))).toBe('payload');
    expect(sent).toEqual(['GetObjectCommand', 'GetObjectCommand', 'GetObjectCommand']);
    expect(store.stats.requests).toBe(3);
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatch(/^s3: get rt\/obj bytes 0\+5242880 failed \(SlowDown 503\); retry 1 in \d+ ms$/);
  });

  it('an object overwritten between its part GETs is read again, never returned mixed', async () => {
    const v1 = new Uint8Array(11 * MiB).fill(1);
    const v2 = new Uint8Array(11 * MiB).fill(2);
    await plain.put('rt/moving.bin', v1);
    let gets = 0;
    const { store, sent } = faulty(async (cmd, send) => {
      // after the first part of version 1 came back, someone replaces the object
      if (cmd.constructor.name === 'GetObjectCommand' && gets++ === 1) await plain.put('rt/moving.bin', v2);
      return send(cmd);
    });
    logs.length = 0;
    const got = await store.get('rt/moving.bin');
    expect(got.every((b) => b === 2)).toBe(true);
    // 3 parts of the mixed read, then 3 of the clean one
    expect(sent.filter((n) => n === 'GetObjectCommand')).toHaveLength(6);
    expect(logs).toEqual(['s3: rt/moving.bin changed while being read; reading again']);
  });

  it('does not retry a client error', async () => {
    const { store, sent } = faulty(async () => {
      throw awsError('InvalidArgument', 400);
    });
    await expect(store.get('rt/obj')).rejects.toMatchObject({ code: 'STORE_REQUEST_FAILED', details: { status: 400, op: 'get', key: 'rt/obj' } });
    expect(sent).toEqual(['GetObjectCommand']);
  });

  it('a multipart put whose part fails for good is aborted: no object, no upload left behind', async () => {
    const { store, sent } = faulty(async (cmd, send) => {
      if (cmd.constructor.name === 'UploadPartCommand' && cmd.input.PartNumber === 3) throw awsError('InvalidArgument', 400);
      return send(cmd);
    });
    await expect(store.put('mp/failed.bin', new Uint8Array(16 * MiB + 1))).rejects.toMatchObject({ code: 'STORE_REQUEST_FAILED', details: { op: 'put', status: 400 } });
    expect(sent[0]).toBe('CreateMultipartUploadCommand');
    expect(sent.at(-1)).toBe('AbortMultipartUploadCommand');
    expect(sent).not.toContain('CompleteMultipartUploadCommand');
    expect(await plain.head('mp/failed.bin')).toBeNull();
    const uploads = await real.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}mp/` }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  const pendingUploads = async (under: string) =>
    (await real.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}${under}` }))).Uploads ?? [];
  const pass: Hook = (cmd, send) => send(cmd);
  const partSizes = (cmds: Command[]) => cmds.filter((c) => c.constructor.name === 'UploadPartCommand').map((c) => (c.input.Body as Uint8Array).length);

  it('putStream of 17 MiB: one multipart upload of 4 parts (5, 5, 5, 2 MiB), completed with all 4', async () => {
    const seen: Command[] = [];
    const { store, sent } = faulty(async (cmd, send) => (seen.push(cmd), send(cmd)));
    const body = new Uint8Array(17 * MiB).map((_, i) => (i * 7 + (i >>> 20)) & 255);
    const sink = store.putStream('ps/17.bin');
    for (let at = 0; at < body.length; at += 3 * MiB) await sink.write(body.subarray(at, at + 3 * MiB));
    await sink.close();
    expect(sent[0]).toBe('CreateMultipartUploadCommand');
    expect(sent.at(-1)).toBe('CompleteMultipartUploadCommand');
    expect(partSizes(seen)).toEqual([5 * MiB, 5 * MiB, 5 * MiB, 2 * MiB]);
    const complete = seen.at(-1)!.input.MultipartUpload as { Parts: { PartNumber: number }[] };
    expect(complete.Parts.map((p) => p.PartNumber)).toEqual([1, 2, 3, 4]);
    expect(Buffer.compare(Buffer.from(await plain.get('ps/17.bin')), Buffer.from(body))).toBe(0);
  });

  it('putStream of up to one part is a single PUT', async () => {
    const { store, sent } = faulty(pass);
    const sink = store.putStream('ps/one.bin');
    await sink.write(new Uint8Array(5 * MiB).fill(9));
    await sink.close();
    expect(sent).toEqual(['PutObjectCommand']);
    expect(await plain.head('ps/one.bin')).toMatchObject({ size: 5 * MiB });
  });

  it('putStream aborted mid-upload: no object and no pending multipart upload', async () => {
    let uploaded = 0;
    let twoUploaded = () => undefined as void;
    const both = new Promise<void>((r) => (twoUploaded = r));
    const { store, sent } = faulty(async (cmd, send) => {
      const res = await send(cmd);
      if (cmd.constructor.name === 'UploadPartCommand' && ++uploaded === 2) twoUploaded();
      return res;
    });
    const sink = store.putStream('ps/aborted.bin');
    for (let i = 0; i < 12; i++) await sink.write(new Uint8Array(MiB).fill(i));
    await both; // two parts stored at the server, a third buffer half full
    await sink.abort();
    expect(sent[0]).toBe('CreateMultipartUploadCommand');
    expect(sent.filter((n) => n === 'UploadPartCommand')).toHaveLength(2);
    expect(sent.at(-1)).toBe('AbortMultipartUploadCommand');
    expect(await plain.head('ps/aborted.bin')).toBeNull();
    expect(await pendingUploads('ps/aborted')).toEqual([]);
  });

  it('putStream whose part fails for good fails the stream and aborts the upload', async () => {
    const { store, sent } = faulty(async (cmd, send) => {
      if (cmd.constructor.name === 'UploadPartCommand' && cmd.input.PartNumber === 2) throw awsError('InvalidArgument', 400);
      return send(cmd);
    });
    const sink = store.putStream('ps/failed.bin');
    let failedAt = -1;
    for (let i = 0; i < 40 && failedAt < 0; i++) {
      await sink.write(new Uint8Array(MiB)).catch((err: { code?: string }) => {
        expect(err).toMatchObject({ code: 'STORE_REQUEST_FAILED', details: { op: 'put', status: 400 } });
        failedAt = i;
      });
    }
    expect(failedAt).toBeGreaterThan(10); // part 2 goes out when the 11th MiB arrives
    await expect(sink.close()).rejects.toMatchObject({ code: 'STORE_REQUEST_FAILED' });
    expect(sent).not.toContain('CompleteMultipartUploadCommand');
    expect(sent.at(-1)).toBe('AbortMultipartUploadCommand');
    expect(await plain.head('ps/failed.bin')).toBeNull();
    expect(await pendingUploads('ps/failed')).toEqual([]);
  });

  it('putStream memory is bounded: at most streamParts parts uploading, write() waits, streamParts + 1 buffers reused', async () => {
    const gates: Array<() => void> = [];
    let uploading = 0;
    let most = 0;
    const bodies = new Set<ArrayBufferLike>();
    let hold = true;
    const { store } = faulty(
      async (cmd, send) => {
        if (cmd.constructor.name !== 'UploadPartCommand') return send(cmd);
        bodies.add((cmd.input.Body as Uint8Array).buffer);
        most = Math.max(most, ++uploading);
        if (hold) await new Promise<void>((open) => gates.push(open));
        try {
          return await send(cmd);
        } finally {
          uploading--;
        }
      },
      undefined,
      { streamParts: 2, concurrency: 8 },
    );
    const sink = store.putStream('ps/bounded.bin');
    let accepted = 0;
    let stalled: Promise<void> | null = null;
    for (let i = 0; i < 64; i++) {
      const w = sink.write(new Uint8Array(MiB).fill(i));
      const settled = await Promise.race([w.then(() => true), new Promise((r) => setTimeout(() => r(false), 200))]);
      if (!settled) {
        stalled = w;
        break;
      }
      accepted += MiB;
    }
    // two parts uploading and a third buffer full: the byte after 15 MiB has nowhere to go
    expect(accepted).toBe(15 * MiB);
    expect(gates).toHaveLength(2);
    hold = false;
    for (const open of gates.splice(0)) open();
    await stalled;
    for (let i = 16; i < 64; i++) await sink.write(new Uint8Array(MiB).fill(i));
    await sink.close();
    expect(most).toBe(2);
    expect(bodies.size).toBe(3);
    expect(await plain.head('ps/bounded.bin')).toMatchObject({ size: 64 * MiB });
  });

  it('a retried CompleteMultipartUpload whose first try landed still succeeds', async () => {
    let completes = 0;
    const { store, sent } = faulty(async (cmd, send) => {
      const res = await send(cmd);
      if (cmd.constructor.name === 'CompleteMultipartUploadCommand' && completes++ === 0) throw awsError('InternalError', 500);
      return res;
    });
    const body = new Uint8Array(11 * MiB).map((_, i) => i % 251);
    await store.put('mp/complete.bin', body);
    expect(sent.filter((n) => n === 'CompleteMultipartUploadCommand')).toHaveLength(2);
    expect(Buffer.compare(Buffer.from(await plain.get('mp/complete.bin')), Buffer.from(body))).toBe(0);
  });
});

describe.runIf(url)('S3Store configured from the env', () => {
  const env = process.env;
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  let closedPort = 0;
  beforeAll(async () => {
    // a port nobody listens on: bind, note, close
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closedPort = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
  });

  it.runIf(endpoint)('reads the endpoint from AWS_ENDPOINT_URL when AWS_ENDPOINT_URL_S3 is unset', async () => {
    const store = openStore(`${url}/env`, { env: { ...env, AWS_ENDPOINT_URL_S3: undefined, AWS_ENDPOINT_URL: endpoint } });
    await store.put('k', bytes('via AWS_ENDPOINT_URL'));
    expect(text(await store.get('k'))).toBe('via AWS_ENDPOINT_URL');
    await store.delete('k');
  });

  it('wrong credentials -> STORE_ACCESS_DENIED naming the operation', async () => {
    const store = openStore(url!, { env: { ...env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' } });
    await expect(store.get('k')).rejects.toMatchObject({ code: 'STORE_ACCESS_DENIED', details: { what: 'get k' } });
    await expect(store.head('k')).rejects.toMatchObject({ code: 'STORE_ACCESS_DENIED' });
  });

  it('a bucket that does not exist -> STORE_BUCKET_NOT_FOUND', async () => {
    const store = openStore('s3://lisa-no-such-bucket-4c1e/x', { env });
    await expect(store.get('k')).rejects.toMatchObject({ code: 'STORE_BUCKET_NOT_FOUND', details: { bucket: 'lisa-no-such-bucket-4c1e' } });
    await expect(store.put('k', bytes('x'))).rejects.toMatchObject({ code: 'STORE_BUCKET_NOT_FOUND' });
  });

  it.runIf(endpoint)('an unreachable endpoint fails after the configured attempts with STORE_REQUEST_FAILED', async () => {
    const store = openStore(url!, { env: { ...env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closedPort}` }, s3: { retry: { attempts: 3, baseMs: 1, capMs: 2 } } });
    const err = await store.get('k').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORE_REQUEST_FAILED' });
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(store.stats.requests).toBe(3);
  });
});
