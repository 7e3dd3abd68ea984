/**
 * Exports through S3: base, runs and outputs in a bucket. Needs LISA_TEST_S3 (see
 * test/store/s3-env.ts): `bash infra/local-s3/with-s3.sh npx vitest run test/merge/`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, exportRun } from '../../core/merge/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { openStore } from '../../core/store/open.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { FsStore } from '../../core/store/fs-store.ts';
import { s3TestUrl } from '../store/s3-env.ts';
import { makeBase, makeRun, tempDir } from './helpers.ts';

const url = s3TestUrl('merge');

if (url) {
  const open = (u: string): ObjectStore => openStore(u, { env: process.env });
  let root: string;
  let cleanup: () => Promise<void>;
  let history: Map<string, Float32Array>[];
  let localExportSha: string;

  /** Copies every object under `prefix` into a fresh local directory. */
  async function download(prefix: string): Promise<string> {
    const s3 = open(prefix);
    const dir = join(root, `dl-${Math.random().toString(16).slice(2)}`);
    const local = new FsStore(dir);
    for (const key of await s3.list('')) await local.put(key, await s3.get(key));
    return dir;
  }

  beforeAll(async () => {
    ({ path: root, cleanup } = await tempDir());
    const baseDir = join(root, 'base');
    const base = await makeBase(baseDir);
    const s3Base = open(`${url}/base`);
    for (const name of await readdir(baseDir)) await s3Base.put(name, new Uint8Array(await readFile(join(baseDir, name))));
    history = await makeRun(open(`${url}/store`), 'r1', `${url}/base`, base, [{ units: ['embed', 'layers.1'] }, { units: ['head'] }]);
    localExportSha = (await exportRun({ store: open(`${url}/store`), runId: 'r1', out: join(root, 'local'), openStore: open })).sha256s['model.safetensors'];
  }, 120_000);
  afterAll(() => cleanup?.());

  describe('export to and from S3', () => {
    it('round-trips a model with an S3 base, run store and output', async () => {
      const summary = await exportRun({ store: open(`${url}/store`), runId: 'r1', out: `${url}/out`, openStore: open });
      expect(summary.out).toBe(`${url}/out`);
      expect(summary.sha256s['model.safetensors']).toBe(localExportSha);
      const dir = await download(`${url}/out`);
      expect((await readdir(dir)).sort()).toEqual([...summary.files].sort());
      const loaded = await loadBaseDir(dir);
      for (const [name, w] of history[1]) expect(loaded.weights.get(name), name).toEqual(w);
      await expect(exportRun({ store: open(`${url}/store`), runId: 'r1', out: `${url}/out`, openStore: open })).rejects.toMatchObject({
        code: 'EXPORT_OUTPUT_EXISTS',
      });
    });

    it('writes shards, and a delta package that applies from S3', async () => {
      const sharded = await exportRun({ store: open(`${url}/store`), runId: 'r1', out: `${url}/sharded`, shardSize: 4000, openStore: open });
      expect(sharded.files).toContain('model.safetensors.index.json');
      const loaded = await loadBaseDir(await download(`${url}/sharded`));
      for (const [name, w] of history[1]) expect(loaded.weights.get(name), name).toEqual(w);

      await exportRun({ store: open(`${url}/store`), runId: 'r1', out: `${url}/deltas/r1.safetensors`, delta: true, openStore: open });
      const applied = await applyDelta({ base: `${url}/base`, delta: `${url}/deltas/r1.safetensors`, out: join(root, 'applied'), openStore: open });
      expect(applied.sha256s['model.safetensors']).toBe(localExportSha);
    });
  });
}
