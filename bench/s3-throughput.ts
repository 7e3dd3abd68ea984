/**
 * Raw object-store throughput: one object of N bytes put (S3: parallel multipart parts) and got
 * back (S3: parallel ranged GETs) through an ObjectStore, no tensors involved. The chunk and
 * base-load benchmarks compare their bytes/second against these numbers, via measureRaw.
 *
 *   bash infra/local-s3/with-s3.sh npx tsx bench/s3-throughput.ts
 *       prints a table, writes bench/results/s3-throughput.json. S3 location: $LISA_BENCH_S3, else
 *       $LISA_TEST_S3 (with-s3.sh sets it to a throwaway Ceph RGW); the endpoint from AWS_* env.
 *   LISA_BENCH_MIB=256 to change the object size (default 64).
 */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import { FsStore } from '../core/store/fs-store.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { parseStoreUrl } from '../core/store/open.ts';
import { MiB, S3Store, s3ClientConfig } from '../core/store/s3-store.ts';

export interface RawThroughput {
  store: string;
  bytes: number;
  /** best of `repeats`, in seconds and MiB/s */
  putSeconds: number;
  getSeconds: number;
  putMiBps: number;
  getMiBps: number;
  /** requests one put and one get took */
  putRequests: number;
  getRequests: number;
}

/**
 * Puts `bytes` random bytes under `key`, gets them back (checked by sha256), `repeats` times; the
 * best time of each counts (the others absorb warm-up: connections, JIT). Deletes the object.
 */
export async function measureRaw(store: ObjectStore, bytes: number, opts: { key?: string; repeats?: number } = {}): Promise<RawThroughput> {
  const key = opts.key ?? `bench/raw-${bytes}.bin`;
  const repeats = opts.repeats ?? 3;
  const body = randomFillSync(new Uint8Array(bytes));
  const want = createHash('sha256').update(body).digest('hex');
  let putSeconds = Infinity;
  let getSeconds = Infinity;
  let putRequests = 0;
  let getRequests = 0;
  try {
    for (let i = 0; i < repeats; i++) {
      let r0 = store.stats.requests;
      let t0 = performance.now();
      await store.put(key, body);
      putSeconds = Math.min(putSeconds, (performance.now() - t0) / 1000);
      putRequests = store.stats.requests - r0;
      r0 = store.stats.requests;
      t0 = performance.now();
      const got = await store.get(key);
      getSeconds = Math.min(getSeconds, (performance.now() - t0) / 1000);
      getRequests = store.stats.requests - r0;
      if (createHash('sha256').update(got).digest('hex') !== want) throw new Error(`${store.url}/${key}: read back different bytes`);
    }
  } finally {
    await store.delete(key);
  }
  return { store: store.url, bytes, putSeconds, getSeconds, putMiBps: bytes / MiB / putSeconds, getMiBps: bytes / MiB / getSeconds, putRequests, getRequests };
}

async function main(): Promise<void> {
  const bytes = Number(process.env.LISA_BENCH_MIB ?? 64) * MiB;
  const url = process.env.LISA_BENCH_S3 ?? process.env.LISA_TEST_S3;
  const rows: Array<RawThroughput & { config: string }> = [];

  const dir = await mkdtemp(join(tmpdir(), 'lisa-bench-fs-'));
  rows.push({ config: 'directory (tmp), baseline', ...(await measureRaw(new FsStore(dir), bytes)) });
  await rm(dir, { recursive: true, force: true });

  if (url) {
    const loc = parseStoreUrl(url);
    if (loc.kind !== 's3') throw new Error(`LISA_BENCH_S3 must be s3://..., got ${url}`);
    const configs = [
      { partMiB: 8, concurrency: 1 },
      { partMiB: 8, concurrency: 4 },
      { partMiB: 8, concurrency: 8 },
      { partMiB: 8, concurrency: 16 },
      { partMiB: 16, concurrency: 8 },
      { partMiB: 64, concurrency: 1 },
    ];
    for (const { partMiB, concurrency } of configs) {
      const client = new S3Client(s3ClientConfig(process.env));
      const store = new S3Store({ client, bucket: loc.bucket, prefix: loc.prefix, partSize: partMiB * MiB, concurrency });
      rows.push({ config: `S3, ${partMiB} MiB parts, ${concurrency} in flight`, ...(await measureRaw(store, bytes)) });
      client.destroy();
    }
    // the SDK's default request checksums (CRC32 over every PutObject/UploadPart body) are CPU
    const client = new S3Client({ ...s3ClientConfig(process.env), requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    const store = new S3Store({ client, bucket: loc.bucket, prefix: loc.prefix });
    rows.push({ config: 'S3, 8 MiB parts, 8 in flight, no SDK checksums', ...(await measureRaw(store, bytes)) });
    client.destroy();
  } else {
    console.log('no LISA_BENCH_S3 / LISA_TEST_S3: only the directory baseline (run under infra/local-s3/with-s3.sh for S3)');
  }

  console.log(`raw store throughput, ${bytes / MiB} MiB object, best of 3`);
  console.log('config                                          put MiB/s  get MiB/s  put req  get req');
  for (const r of rows) {
    console.log(`${r.config.padEnd(48)}${r.putMiBps.toFixed(0).padStart(9)}${r.getMiBps.toFixed(0).padStart(11)}${String(r.putRequests).padStart(9)}${String(r.getRequests).padStart(9)}`);
  }
  const out = new URL('./results/', import.meta.url);
  await mkdir(out, { recursive: true });
  await writeFile(new URL('s3-throughput.json', out), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, bytes, rows }, null, 2)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
