import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configJson, type ModelSpec } from '../../core/models/config.ts';
import { loadBaseDir, saveModelDir } from '../../core/models/load.ts';
import { tensorShapes } from '../../core/models/units.ts';
import { encodeSafetensors, type TensorEntry } from '../../core/tensors/safetensors.ts';

const stories = new URL('../../models/stories260K/', import.meta.url).pathname;
const tmp = () => mkdtempSync(join(tmpdir(), 'lisa-load-'));
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

const tiny: ModelSpec = {
  arch: 'llama', vocabSize: 16, dim: 8, nLayers: 2, nHeads: 2, nKvHeads: 1, headDim: 4, hiddenDim: 12,
  maxSeqLen: 32, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: false, bosId: 1, eosId: 2,
};

function tinyWeights(): Map<string, Float32Array> {
  let k = 0;
  return new Map([...tensorShapes(tiny)].map(([name, shape]) => [name, Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => (k++ % 97) / 97 - 0.5)]));
}

const entries = (w: Map<string, Float32Array>, names: string[]): TensorEntry[] =>
  names.map((name) => ({ name, dtype: 'F32', shape: tensorShapes(tiny).get(name) ?? [w.get(name)!.length], data: w.get(name)! }));

/** A sharded copy of `tiny`: tensors split over two files plus the index. */
async function shardedDir(mutate?: (index: { weight_map: Record<string, string> }, shards: Record<string, TensorEntry[]>) => void): Promise<string> {
  const dir = tmp();
  const w = tinyWeights();
  const names = [...w.keys()];
  const shards: Record<string, TensorEntry[]> = {
    'model-00001-of-00002.safetensors': entries(w, names.slice(0, 9)),
    'model-00002-of-00002.safetensors': entries(w, names.slice(9)),
  };
  const index = { metadata: { total_size: 0 }, weight_map: {} as Record<string, string> };
  for (const [file, es] of Object.entries(shards)) for (const e of es) index.weight_map[e.name] = file;
  mutate?.(index, shards);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson(tiny)));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
  for (const [file, es] of Object.entries(shards)) writeFileSync(join(dir, file), await encodeSafetensors(es));
  return dir;
}

describe('loadBaseDir', () => {
  it('loads the bundled stories260K with its file sha256 as identity', async () => {
    const base = await loadBaseDir(stories);
    expect(base.spec.dim).toBe(64);
    expect(base.spec.tiedEmbeddings).toBe(true);
    expect(base.weights.size).toBe(47);
    expect(base.weights.get('model.embed_tokens.weight')!.length).toBe(512 * 64);
    expect(base.sha256).toBe(sha(readFileSync(join(stories, 'model.safetensors'))));
    expect(base.dir).toBe(stories);
  });

  it('round-trips saveModelDir', async () => {
    const dir = join(tmp(), 'm');
    const w = tinyWeights();
    const saved = await saveModelDir(dir, tiny, w, { files: { 'NOTE.txt': 'hi' } });
    const base = await loadBaseDir(dir);
    expect(base.spec).toEqual(tiny);
    expect(base.weights).toEqual(w);
    expect(base.sha256).toBe(saved.sha256);
    expect(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8'))).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    expect(readFileSync(join(dir, 'NOTE.txt'), 'utf8')).toBe('hi');
  });

  it('loads shards through the index; identity is the sha256 of the shard digests in name order', async () => {
    const dir = await shardedDir();
    const base = await loadBaseDir(dir);
    expect(base.weights).toEqual(tinyWeights());
    const d1 = sha(readFileSync(join(dir, 'model-00001-of-00002.safetensors')));
    const d2 = sha(readFileSync(join(dir, 'model-00002-of-00002.safetensors')));
    expect(base.sha256).toBe(sha(d1 + d2));
  });

  it('names what is missing, unexpected or misshapen', async () => {
    const dir = join(tmp(), 'm');
    await saveModelDir(dir, tiny, tinyWeights());
    const w = tinyWeights();
    const write = (es: TensorEntry[]) => encodeSafetensors(es).then((b) => writeFileSync(join(dir, 'model.safetensors'), b));

    await write(entries(w, [...w.keys()].filter((n) => n !== 'model.norm.weight')));
    await expect(loadBaseDir(dir)).rejects.toThrow(`${dir}: missing 1 tensor(s) of the llama architecture in config.json: "model.norm.weight"`);

    w.set('model.layers.2.mlp.up_proj.weight', new Float32Array(96));
    await write(entries(w, [...w.keys()]));
    await expect(loadBaseDir(dir)).rejects.toThrow(`${dir}: 1 tensor(s) not part of the architecture in config.json: "model.layers.2.mlp.up_proj.weight"`);

    const bad = tinyWeights();
    await write([...entries(bad, [...bad.keys()].filter((n) => n !== 'model.norm.weight')), { name: 'model.norm.weight', dtype: 'F32', shape: [2, 4], data: bad.get('model.norm.weight')! }]);
    await expect(loadBaseDir(dir)).rejects.toThrow(`${join(dir, 'model.safetensors')}: tensor "model.norm.weight" has shape [2,4]; config.json implies [8]`);
  });

  it('explains an lm_head.weight next to tied embeddings', async () => {
    const dir = join(tmp(), 'm');
    await saveModelDir(dir, tiny, tinyWeights());
    writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson({ ...tiny, tiedEmbeddings: true })));
    await expect(loadBaseDir(dir)).rejects.toThrow('(config.json ties the word embeddings, so there is no lm_head.weight)');
  });

  it('validates the shard index', async () => {
    const missingShard = await shardedDir((index) => {
      index.weight_map['model.norm.weight'] = 'model-00003-of-00002.safetensors';
    });
    await expect(loadBaseDir(missingShard)).rejects.toThrow(`${join(missingShard, 'model.safetensors.index.json')}: shard model-00003-of-00002.safetensors does not exist`);

    const notInShard = await shardedDir((index) => {
      index.weight_map['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    });
    await expect(loadBaseDir(notInShard)).rejects.toThrow(
      `${join(notInShard, 'model.safetensors.index.json')}: puts tensor "model.norm.weight" in model-00001-of-00002.safetensors, which does not hold it`,
    );

    const unlisted = await shardedDir((index) => {
      delete index.weight_map['model.norm.weight'];
    });
    await expect(loadBaseDir(unlisted)).rejects.toThrow(
      `${join(unlisted, 'model-00002-of-00002.safetensors')}: holds tensor "model.norm.weight", which model.safetensors.index.json does not list for this shard`,
    );

    const traversal = await shardedDir((index) => {
      index.weight_map['model.norm.weight'] = '../elsewhere.safetensors';
    });
    await expect(loadBaseDir(traversal)).rejects.toThrow('tensor "model.norm.weight" maps to "../elsewhere.safetensors"; expected a .safetensors file name in the same directory');
  });

  it('reports missing files', async () => {
    const empty = tmp();
    await expect(loadBaseDir(empty)).rejects.toThrow(`${empty}: no config.json; expected a Hugging Face model directory`);
    writeFileSync(join(empty, 'config.json'), JSON.stringify(configJson(tiny)));
    await expect(loadBaseDir(empty)).rejects.toThrow(`${empty}: no model.safetensors and no model.safetensors.index.json`);
    writeFileSync(join(empty, 'config.json'), '{"architectures": ');
    await expect(loadBaseDir(empty)).rejects.toThrow(new RegExp(`^${join(empty, 'config.json')}: is not valid JSON: `));
  });

  it('refuses to save over a non-empty directory or with wrong weights', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'sub'));
    await expect(saveModelDir(dir, tiny, tinyWeights())).rejects.toThrow(`${dir}: output directory is not empty (holds sub); choose a new directory`);
    rmSync(join(dir, 'sub'), { recursive: true });
    const w = tinyWeights();
    w.set('model.norm.weight', new Float32Array(3));
    await expect(saveModelDir(dir, tiny, w)).rejects.toThrow('tensor "model.norm.weight" has shape [3]; the spec implies [8]');
  });
});
