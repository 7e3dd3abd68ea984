import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { openStore } from '../../core/store/open.ts';
import { storeSource } from '../../core/store/object-store.ts';
import { encodeSafetensors, readHeader, readTensorF32 } from '../../core/tensors/safetensors.ts';
import { createRun } from '../../core/train/create-run.ts';
import { runChunk } from '../../core/train/chunk.ts';
import { materialize } from '../../core/train/run-state.ts';
import { s3TestUrl } from '../store/s3-env.ts';
import { bytesOf, fsStore, newSources, qaLines, smallLlama, writeBase, writeData } from './harness.ts';

const s3 = s3TestUrl('refs');

if (s3) {
  describe('bases and data on S3', () => {
    let baseDir: string;
    let dataFile: string;
    beforeAll(async () => {
      await initEngine({ backend: 'cpu' });
      baseDir = await writeBase(smallLlama, 3);
      dataFile = await writeData(qaLines(20));
      const store = openStore(s3, { env: process.env });
      for (const name of await readdir(baseDir)) await store.put(`base/${name}`, new Uint8Array(await readFile(join(baseDir, name))));
      await store.put('data.jsonl', new Uint8Array(await readFile(dataFile)));
    });

    it('a run on s3:// refs loads the same base (same sha256) and trains bitwise like one on local files', async () => {
      const input = { fields: ['question', 'answer'], seqLen: 48, activeLayers: 1, period: 2, steps: 4, batchSize: 2, seed: 9 };
      const remote = await fsStore('refs');
      const local = await fsStore('refs');
      const a = await createRun({ store: remote, input: { ...input, base: `${s3}/base`, data: `${s3}/data.jsonl` }, ...newSources() });
      const b = await createRun({ store: local, input: { ...input, base: baseDir, data: dataFile }, ...newSources() });
      expect(a.base.sha256).toBe(b.base.sha256);
      expect(a.data.sha256).toBe(b.data.sha256);
      const ma = await runChunk({ store: remote, run: a, ...newSources() });
      const mb = await runChunk({ store: local, run: b, ...newSources() });
      expect(ma.losses).toEqual(mb.losses);
      const base = await loadBaseDir(baseDir);
      const wa = await materialize(remote, smallLlama, base.weights, ma, new Set());
      const wb = await materialize(local, smallLlama, base.weights, mb, new Set());
      for (const [name, w] of wb.weights) expect(bytesOf(wa.weights.get(name)!).equals(bytesOf(w)), name).toBe(true);
    });

    it('reading one tensor of a large safetensors object on S3 fetches only the header and its byte range', async () => {
      const store = openStore(`${s3}/ranged`, { env: process.env });
      const big = (seed: number) => Float32Array.from({ length: 1 << 20 }, (_, i) => Math.sin(i + seed));
      const bytes = await encodeSafetensors(['a', 'b', 'c'].map((name, i) => ({ name, dtype: 'F32' as const, shape: [1024, 1024], data: big(i) })));
      await store.put('model.safetensors', bytes);
      const before = store.stats.bytesIn;
      const src = storeSource(store, 'model.safetensors');
      const header = await readHeader(src);
      const b = await readTensorF32(src, header.tensors.get('b')!);
      expect(bytesOf(b).equals(bytesOf(big(1)))).toBe(true);
      expect(store.stats.bytesIn - before).toBe(8 + header.headerBytes + 4 * (1 << 20));
      expect(bytes.length).toBeGreaterThan(3 * 4 * (1 << 20));
    });

    it('a missing S3 base names the prefix', async () => {
      const err = await createRun({ store: await fsStore('refs'), input: { base: `${s3}/nothing-here`, data: dataFile }, ...newSources() }).catch((e) => e);
      expect(err.code).toBe('MODEL_FILE_MISSING');
      expect(err.message).toBe(`${s3}/nothing-here: no config.json; expected a Hugging Face model directory`);
    });
  });
}
