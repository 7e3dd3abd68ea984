/**
 * A fault suite's area on the test RGW (infra/local-s3/with-s3.sh): a fresh prefix under
 * LISA_TEST_S3 holding the bundled stories260K and a JSONL file as the runs' inputs, and RGW's
 * address for the fault proxy to stand in front of.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore } from '../../core/store/open.ts';
import { REPO } from './processes.ts';

export interface S3Inputs {
  prefix: string;
  base: string;
  data: string;
  upstream: { host: string; port: number };
}

/** Deletes every object under `url` (a suite's prefix, after it). */
export async function clearPrefix(url: string): Promise<void> {
  const store = openStore(url, { env: process.env });
  await Promise.all((await store.list('')).map((k) => store.delete(k)));
}

export async function s3Inputs(label: string, jsonl: Uint8Array): Promise<S3Inputs> {
  const root = process.env.LISA_TEST_S3;
  const endpoint = process.env.AWS_ENDPOINT_URL_S3;
  if (!root || !endpoint) throw new Error(`${label} trials need LISA_TEST_S3 and AWS_ENDPOINT_URL_S3: run them through infra/local-s3/with-s3.sh`);
  const prefix = `${root.replace(/\/?$/, '/')}faults-${label}-${Date.now()}`;
  const inputs = openStore(`${prefix}/inputs`, { env: process.env });
  const model = join(REPO, 'models/stories260K');
  for (const name of await readdir(model)) await inputs.put(`stories260K/${name}`, await readFile(join(model, name)));
  await inputs.put('qa.jsonl', jsonl);
  const url = new URL(endpoint);
  return { prefix, base: `${prefix}/inputs/stories260K`, data: `${prefix}/inputs/qa.jsonl`, upstream: { host: url.hostname, port: Number(url.port) } };
}
