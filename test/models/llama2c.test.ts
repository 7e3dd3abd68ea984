import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertLlama2c, parseLlama2cCheckpoint, permuteRotary } from '../../core/models/llama2c.ts';
import { loadBaseDir } from '../../core/models/load.ts';

const fixtures = new URL('../fixtures/stories260K/', import.meta.url);
const modelBin = new Uint8Array(readFileSync(new URL('stories260K.bin', fixtures)));
const tokBin = new Uint8Array(readFileSync(new URL('tok512.bin', fixtures)));
const committed = new URL('../../models/stories260K/', import.meta.url);
const tmp = () => mkdtempSync(join(tmpdir(), 'lisa-l2c-'));

function convertError(bytes: Uint8Array): string {
  try {
    parseLlama2cCheckpoint(bytes, 'm.bin');
  } catch (e) {
    expect((e as { code: string }).code).toBe('LLAMA2C_CHECKPOINT_INVALID');
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('llama2.c checkpoint', () => {
  it('reads the stories260K header into a spec', () => {
    const { spec, weights } = parseLlama2cCheckpoint(modelBin);
    expect(spec).toEqual({
      arch: 'llama', vocabSize: 512, dim: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, headDim: 8, hiddenDim: 172,
      maxSeqLen: 512, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true, bosId: 1, eosId: 2,
    });
    expect(weights.size).toBe(47);
    expect(weights.has('lm_head.weight')).toBe(false);
    // token_embedding is the first array after the 28-byte header.
    expect(weights.get('model.embed_tokens.weight')![0]).toBe(new DataView(modelBin.buffer, modelBin.byteOffset).getFloat32(28, true));
    expect(weights.get('model.layers.4.mlp.down_proj.weight')!.length).toBe(64 * 172);
  });

  it('converts to a directory whose files equal the committed models/stories260K', async () => {
    const out = join(tmp(), 'stories');
    const result = await convertLlama2c({ bytes: modelBin, file: 'stories260K.bin' }, { bytes: tokBin, file: 'tok512.bin' }, out);
    expect(result.warnings).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.bin', 'tokenizer.json', 'tokenizer_config.json'],
    );
    for (const name of readdirSync(out)) {
      expect(Buffer.compare(readFileSync(join(out, name)), readFileSync(new URL(name, committed))), name).toBe(0);
    }
    const sha = createHash('sha256').update(readFileSync(join(out, 'model.safetensors'))).digest('hex');
    expect(result.sha256).toBe(sha);
    expect(sha).toBe('7fe20d74ed0c9325c818c61ad972080a09b1d862dea4d4868f25afdff0ac6f98');
    const base = await loadBaseDir(out);
    expect(base.sha256).toBe(sha);
    expect(base.weights.get('model.layers.2.self_attn.q_proj.weight')).toEqual(parseLlama2cCheckpoint(modelBin).weights.get('model.layers.2.self_attn.q_proj.weight'));
  });

  it('reports a truncated file with the size its header implies', () => {
    expect(convertError(modelBin.slice(0, 1000))).toBe(
      'm.bin: truncated: the header (dim=64 hidden_dim=172 n_layers=5 n_heads=8 n_kv_heads=4 vocab_size=512 seq_len=512) implies 1056540 bytes, the file has 1000',
    );
    expect(convertError(modelBin.slice(0, 10))).toBe('m.bin: 10 bytes is too short for the 28-byte header (7 int32)');
    const longer = new Uint8Array(modelBin.length + 4);
    longer.set(modelBin);
    expect(convertError(longer)).toMatch(/implies 1056540 bytes, the file has 4 more$/);
  });

  it('rejects impossible headers and the newer export format', () => {
    const withHeader = (i: number, v: number) => {
      const b = modelBin.slice();
      new DataView(b.buffer).setInt32(i * 4, v, true);
      return b;
    };
    expect(convertError(withHeader(3, 0))).toBe('m.bin: header field n_heads (byte offset 12) is 0; expected a positive integer');
    expect(convertError(withHeader(4, 3))).toBe('m.bin: n_heads 8 is not a multiple of n_kv_heads 3');
    expect(convertError(withHeader(3, 7))).toBe('m.bin: dim 64 is not a multiple of n_heads 7');
    expect(convertError(withHeader(0, 0x616b3432))).toMatch(/^m\.bin: is a llama2\.c export version 172 file \(magic "ak42"\)/);
  });

  it('checks the tokenizer against the checkpoint and refuses a non-empty output directory', async () => {
    // Walk the entries (score, length, piece) to drop the last token.
    const view = new DataView(tokBin.buffer, tokBin.byteOffset);
    let end = 4;
    for (let id = 0; id < 511; id++) end += 8 + view.getInt32(end + 4, true);
    const short = tokBin.slice(0, end);
    await expect(convertLlama2c({ bytes: modelBin, file: 'm.bin' }, { bytes: short, file: 't.bin' }, join(tmp(), 'x'))).rejects.toThrow(
      "t.bin: holds 511 tokens but the model's vocab_size is 512",
    );
    const used = tmp();
    writeFileSync(join(used, 'keep.txt'), 'x');
    await expect(convertLlama2c({ bytes: modelBin, file: 'm.bin' }, { bytes: tokBin, file: 't.bin' }, used)).rejects.toThrow(
      `${used}: output directory is not empty (holds keep.txt); choose a new directory`,
    );
  });
});

describe('q/k row permutation', () => {
  it('reorders each head from interleaved pairs to halves', () => {
    // 2 heads of size 4, 1 input column: rows (h, 2j + t) -> (h, t * 2 + j).
    expect(Array.from(permuteRotary(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 2, 4, 1))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(Array.from(permuteRotary(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 1, 4, 2))).toEqual([0, 1, 4, 5, 2, 3, 6, 7]);
  });

  it("makes HF's rotate_half RoPE give llama2.c's interleaved-RoPE attention scores", () => {
    const heads = 2;
    const hd = 8;
    const inDim = 5;
    let seed = 1;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const wq = Float32Array.from({ length: heads * hd * inDim }, rand);
    const wk = Float32Array.from({ length: heads * hd * inDim }, rand);
    const x1 = Array.from({ length: inDim }, rand);
    const x2 = Array.from({ length: inDim }, rand);
    const matvec = (w: Float32Array, x: number[]) => Array.from({ length: w.length / inDim }, (_, r) => x.reduce((a, xi, c) => a + w[r * inDim + c] * xi, 0));
    const rope = (v: number[], pos: number, pair: (h: number, j: number) => [number, number]) => {
      const out = v.slice();
      for (let h = 0; h < heads; h++) {
        for (let j = 0; j < hd / 2; j++) {
          const f = pos / 10000 ** ((2 * j) / hd);
          const [a, b] = pair(h, j);
          out[a] = v[a] * Math.cos(f) - v[b] * Math.sin(f);
          out[b] = v[a] * Math.sin(f) + v[b] * Math.cos(f);
        }
      }
      return out;
    };
    const interleaved = (h: number, j: number): [number, number] => [h * hd + 2 * j, h * hd + 2 * j + 1];
    const halves = (h: number, j: number): [number, number] => [h * hd + j, h * hd + j + hd / 2];
    const score = (q: number[], k: number[], h: number) => q.slice(h * hd, (h + 1) * hd).reduce((a, qi, i) => a + qi * k[h * hd + i], 0);
    const pq = permuteRotary(wq, heads, hd, inDim);
    const pk = permuteRotary(wk, heads, hd, inDim);
    for (let h = 0; h < heads; h++) {
      const llama2c = score(rope(matvec(wq, x1), 7, interleaved), rope(matvec(wk, x2), 3, interleaved), h);
      const hf = score(rope(matvec(pq, x1), 7, halves), rope(matvec(pk, x2), 3, halves), h);
      const unpermuted = score(rope(matvec(wq, x1), 7, halves), rope(matvec(wk, x2), 3, halves), h);
      expect(hf).toBeCloseTo(llama2c, 5);
      expect(Math.abs(unpermuted - llama2c)).toBeGreaterThan(1e-3);
    }
  });
});
