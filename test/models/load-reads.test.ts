import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ModelSpec } from '../../core/models/config.ts';
import { randomWeights } from '../../core/models/model.ts';
import { tensorShapes } from '../../core/models/units.ts';
import { loadBase, loadBaseDir, type ModelFileOpener, readGroups, saveModelDir } from '../../core/models/load.ts';
import { encodeSafetensors, readHeader } from '../../core/tensors/safetensors.ts';
import { type ByteSource, bufferSource } from '../../core/tensors/source.ts';
import { tempDir } from '../train/harness.ts';

const spec: ModelSpec = {
  arch: 'llama', vocabSize: 32, dim: 16, nLayers: 3, nHeads: 2, nKvHeads: 1, headDim: 8, hiddenDim: 24,
  maxSeqLen: 16, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false, bosId: 1, eosId: 2,
};

interface Read {
  file: string;
  offset: number;
  length: number;
  start: number;
  end?: number;
}

/** A model directory's files in memory behind an opener that logs every read (and delays it). */
async function loggedOpener(dir: string, delayMs = 0, files?: Map<string, Uint8Array>) {
  const contents = files ?? new Map<string, Uint8Array>();
  if (!files) for (const name of await readdir(dir)) contents.set(name, new Uint8Array(await readFile(join(dir, name))));
  const reads: Read[] = [];
  let clock = 0;
  const open: ModelFileOpener = async (name) => {
    const bytes = contents.get(name);
    if (!bytes) return undefined;
    const inner = bufferSource(bytes, name);
    const src: ByteSource = {
      name,
      size: () => inner.size(),
      async read(offset, length) {
        const r: Read = { file: name, offset, length, start: clock++ };
        reads.push(r);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        r.end = clock++;
        return inner.read(offset, length);
      },
    };
    return src;
  };
  return { open, reads };
}

describe('loadBase reads', () => {
  it('cut the file at tensor boundaries into reads of up to readBytes, a bigger tensor alone', async () => {
    const file = await encodeSafetensors([
      { name: 'a', dtype: 'U8', shape: [100], data: new Uint8Array(100) },
      { name: 'b', dtype: 'U8', shape: [100], data: new Uint8Array(100) },
      { name: 'c', dtype: 'U8', shape: [300], data: new Uint8Array(300) },
      { name: 'd', dtype: 'U8', shape: [50], data: new Uint8Array(50) },
      { name: 'e', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
    ]);
    const header = await readHeader(bufferSource(file));
    const groups = readGroups(header, header.dataStart + 200);
    expect(groups.map((g) => [g.offset, g.length, g.tensors.map((t) => t.name).join('')])).toEqual([
      [0, header.dataStart + 200, 'ab'],
      [header.dataStart + 200, 350, 'cde'],
    ]);
    expect(readGroups(header, 150).map((g) => [g.offset, g.length, g.tensors.map((t) => t.name).join('')])).toEqual([
      [0, header.dataStart, ''],
      [header.dataStart, 100, 'a'],
      [header.dataStart + 100, 100, 'b'],
      [header.dataStart + 200, 300, 'c'],
      [header.dataStart + 500, 50, 'de'],
    ]);
  });

  it('load the same weights and identity as loadBaseDir, in a few large reads', async () => {
    const dir = join(await tempDir('reads'), 'm');
    await saveModelDir(dir, spec, randomWeights(spec, 5));
    const local = await loadBaseDir(dir);
    for (const readBytes of [1, 4096, 1 << 20]) {
      const { open, reads } = await loggedOpener(dir);
      const base = await loadBase(open, dir, { readBytes });
      expect(base.sha256).toBe(local.sha256);
      expect(base.weights).toEqual(local.weights);
      const header = await readHeader(bufferSource(new Uint8Array(await readFile(join(dir, 'model.safetensors')))));
      const groups = readGroups(header, readBytes);
      const weightReads = reads.filter((r) => r.file === 'model.safetensors');
      // the header (8 bytes, then the JSON), then one read per group
      expect(weightReads.map((r) => [r.offset, r.length])).toEqual([[0, 8], [8, header.dataStart - 8], ...groups.map((g) => [g.offset, g.length])]);
    }
  });

  it('keep readWindow reads in flight, across shard boundaries', async () => {
    const dir = join(await tempDir('reads'), 'm');
    await saveModelDir(dir, spec, randomWeights(spec, 6));
    const local = await loadBaseDir(dir);
    const names = [...tensorShapes(spec).keys()];
    const half = Math.ceil(names.length / 2);
    const [first, second] = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const shard = (ns: string[]) => encodeSafetensors(ns.map((name) => ({ name, dtype: 'F32' as const, shape: tensorShapes(spec).get(name)!, data: local.weights.get(name)! })));
    const files = new Map<string, Uint8Array>([
      ['config.json', new Uint8Array(await readFile(join(dir, 'config.json')))],
      [first, await shard(names.slice(0, half))],
      [second, await shard(names.slice(half))],
      ['model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: Object.fromEntries(names.map((n, i) => [n, i < half ? first : second])) }))],
    ]);
    const { open, reads } = await loggedOpener(dir, 2, files);
    const base = await loadBase(open, dir, { readBytes: 1, readWindow: 4 });
    expect(base.weights).toEqual(local.weights);
    const data = reads.filter((r) => r.file.endsWith('.safetensors') && r.length > 8 && r.offset > 0 && !(r.offset === 8));
    const inFlight = (t: number) => data.filter((r) => r.start <= t && t < r.end!).length;
    expect(Math.max(...data.map((r) => inFlight(r.start)))).toBe(4);
    // the second file's first tensor read starts before the first file's last one is done
    const lastOfFirst = data.filter((r) => r.file === first).at(-1)!;
    const firstOfSecond = data.find((r) => r.file === second && r.offset > 8)!;
    expect(firstOfSecond.start).toBeLessThan(lastOfFirst.end!);
  });

  it("report config.json's error before the weights", async () => {
    const dir = join(await tempDir('reads'), 'm');
    await saveModelDir(dir, spec, randomWeights(spec, 7));
    const { open } = await loggedOpener(dir);
    const failing: ModelFileOpener = async (name) => (name === 'model.safetensors' ? Promise.reject(new Error('weights unreachable')) : open(name));
    const broken: ModelFileOpener = async (name) => (name === 'config.json' ? bufferSource(new TextEncoder().encode('{'), 'config.json') : failing(name));
    await expect(loadBase(broken, dir)).rejects.toMatchObject({ code: 'MODEL_FILE_INVALID' });
    await expect(loadBase(failing, dir)).rejects.toThrow('weights unreachable');
  });

  it('start no more reads after the load failed', async () => {
    const dir = join(await tempDir('reads'), 'm');
    await saveModelDir(dir, spec, randomWeights(spec, 8));
    const files = new Map<string, Uint8Array>();
    for (const name of await readdir(dir)) files.set(name, new Uint8Array(await readFile(join(dir, name))));
    // a config of another width: the headers are read, the tensor reads start, then the check fails
    files.set('config.json', new TextEncoder().encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(files.get('config.json'))), hidden_size: 32 })));
    const { open, reads } = await loggedOpener(dir, 1, files);
    const err = await loadBase(open, dir, { readBytes: 1, readWindow: 2 }).catch((e) => e);
    expect(err.code).toBe('MODEL_TENSORS_MISMATCH');
    const count = reads.length;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(reads.length).toBe(count);
    // the header's two reads, then at most 2 x window tensor reads ahead
    expect(count).toBeLessThanOrEqual(2 + 2 * 2 + 1);
  });

  it('hand out weights as views into a read only when the read holds nothing else', async () => {
    const dir = join(await tempDir('reads'), 'm');
    const weights = randomWeights(spec, 9);
    await saveModelDir(dir, spec, weights);
    const config = new Uint8Array(await readFile(join(dir, 'config.json')));
    const entries = [...tensorShapes(spec)].map(([name, shape]) => ({ name, dtype: 'F32' as const, shape, data: weights.get(name)! }));
    const load = async (extra: boolean) => {
      const tensors = extra ? [...entries, { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32' as const, shape: [4], data: new Float32Array(4) }] : entries;
      const files = new Map([['config.json', config], ['model.safetensors', await encodeSafetensors(tensors)]]);
      const { open } = await loggedOpener(dir, 0, files);
      return (await loadBase(open, dir, { readBytes: 1 << 30 })).weights;
    };
    const shared = await load(false);
    expect(shared).toEqual(weights);
    for (const w of shared.values()) expect(w.buffer.byteLength).toBeGreaterThan(w.byteLength);
    // a buffer the model does not use (old LLaMA checkpoints carry rotary inv_freq) is in the read
    const copied = await load(true);
    expect(copied).toEqual(weights);
    for (const w of copied.values()) expect(w.buffer.byteLength).toBe(w.byteLength);
  });
});
