/**
 * llama2.c checkpoints (the legacy "version 0" .bin that run.c reads) -> Hugging Face LLaMA layout.
 *
 * Layout: seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * negative vocab_size means an unshared classifier), then float32 arrays: token_embedding,
 * rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, the RoPE cos/sin tables
 * (seq_len x head_size/2 each, recomputed by everyone, skipped here), and wcls when unshared.
 * Matrices are [out, in] like nn.Linear weights, which is what HF stores too.
 */
import { LisaError } from '../errors.ts';
import { llama2cToHfTokenizer, parseLlama2cTokenizer, TokenizerConversionError } from '../tokenizers/index.ts';
import type { ModelSpec } from './config.ts';
import { saveModelDir } from './load.ts';

export class Llama2cCheckpointError extends LisaError {
  constructor(file: string, what: string) {
    super('LLAMA2C_CHECKPOINT_INVALID', `${file}: ${what}`, { file });
  }
}

const HEADER_INTS = 7;
const HEADER_BYTES = HEADER_INTS * 4;
/** llama2.c's export.py versions 1+ start with this magic ("ak42"); run.c reads only version 0. */
const EXPORT_MAGIC = 0x616b3432;

export interface Llama2cCheckpoint {
  spec: ModelSpec;
  /** HF tensor name -> F32 data, q/k rows already permuted for HF's rotate_half RoPE. */
  weights: Map<string, Float32Array>;
}

export function parseLlama2cCheckpoint(bytes: Uint8Array, file = 'model.bin'): Llama2cCheckpoint {
  const fail = (what: string): never => {
    throw new Llama2cCheckpointError(file, what);
  };
  if (bytes.byteLength < HEADER_BYTES) fail(`${bytes.byteLength} bytes is too short for the 28-byte header (7 int32)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = Array.from({ length: HEADER_INTS }, (_, i) => view.getInt32(i * 4, true));
  if (header[0] === EXPORT_MAGIC) {
    fail(`is a llama2.c export version ${header[1]} file (magic "ak42"); only the legacy version 0 format that run.c reads is supported (export with --version 0)`);
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = header;
  const names = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  header.forEach((v, i) => {
    if ((i === 5 ? Math.abs(v) : v) <= 0) fail(`header field ${names[i]} (byte offset ${i * 4}) is ${v}; expected a positive integer`);
  });
  if (dim % nHeads !== 0) fail(`dim ${dim} is not a multiple of n_heads ${nHeads}`);
  if (nHeads % nKvHeads !== 0) fail(`n_heads ${nHeads} is not a multiple of n_kv_heads ${nKvHeads}`);
  const headDim = dim / nHeads;
  if (headDim % 2 !== 0) fail(`head size ${headDim} (dim / n_heads) must be even for rotary embeddings`);
  const vocabSize = Math.abs(signedVocab);
  const shared = signedVocab > 0;
  const kvDim = nKvHeads * headDim;
  const L = nLayers;

  const arrays: Array<[string, number]> = [
    ['token_embedding', vocabSize * dim],
    ['rms_att', L * dim],
    ['wq', L * dim * dim],
    ['wk', L * kvDim * dim],
    ['wv', L * kvDim * dim],
    ['wo', L * dim * dim],
    ['rms_ffn', L * dim],
    ['w1', L * hiddenDim * dim],
    ['w2', L * dim * hiddenDim],
    ['w3', L * hiddenDim * dim],
    ['rms_final', dim],
    ['freq_cis_real', (seqLen * headDim) / 2],
    ['freq_cis_imag', (seqLen * headDim) / 2],
    ...(shared ? [] : ([['wcls', vocabSize * dim]] as Array<[string, number]>)),
  ];
  const expectedBytes = HEADER_BYTES + 4 * arrays.reduce((n, [, count]) => n + count, 0);
  if (bytes.byteLength !== expectedBytes) {
    const cfg = `dim=${dim} hidden_dim=${hiddenDim} n_layers=${nLayers} n_heads=${nHeads} n_kv_heads=${nKvHeads} vocab_size=${signedVocab} seq_len=${seqLen}`;
    fail(
      bytes.byteLength < expectedBytes
        ? `truncated: the header (${cfg}) implies ${expectedBytes} bytes, the file has ${bytes.byteLength}`
        : `the header (${cfg}) implies ${expectedBytes} bytes, the file has ${bytes.byteLength - expectedBytes} more`,
    );
  }

  const raw = new Map<string, Float32Array>();
  let offset = HEADER_BYTES;
  for (const [name, count] of arrays) {
    // Copy out (little-endian decode) so the weights never alias the caller's buffer.
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, true);
    raw.set(name, out);
    offset += 4 * count;
  }
  const get = (name: string) => raw.get(name) as Float32Array;
  const layer = (name: string, i: number, size: number) => get(name).slice(i * size, (i + 1) * size);

  const weights = new Map<string, Float32Array>();
  weights.set('model.embed_tokens.weight', get('token_embedding'));
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    weights.set(`${p}input_layernorm.weight`, layer('rms_att', i, dim));
    weights.set(`${p}self_attn.q_proj.weight`, permuteRotary(layer('wq', i, dim * dim), nHeads, headDim, dim));
    weights.set(`${p}self_attn.k_proj.weight`, permuteRotary(layer('wk', i, kvDim * dim), nKvHeads, headDim, dim));
    weights.set(`${p}self_attn.v_proj.weight`, layer('wv', i, kvDim * dim));
    weights.set(`${p}self_attn.o_proj.weight`, layer('wo', i, dim * dim));
    weights.set(`${p}post_attention_layernorm.weight`, layer('rms_ffn', i, dim));
    weights.set(`${p}mlp.gate_proj.weight`, layer('w1', i, hiddenDim * dim));
    weights.set(`${p}mlp.down_proj.weight`, layer('w2', i, dim * hiddenDim));
    weights.set(`${p}mlp.up_proj.weight`, layer('w3', i, hiddenDim * dim));
  }
  weights.set('model.norm.weight', get('rms_final'));
  if (!shared) weights.set('lm_head.weight', get('wcls'));

  const spec: ModelSpec = {
    arch: 'llama',
    vocabSize,
    dim,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    hiddenDim,
    maxSeqLen: seqLen,
    // run.c's constants.
    normEps: 1e-5,
    ropeTheta: 10000,
    tiedEmbeddings: shared,
    bosId: 1,
    eosId: 2,
  };
  return { spec, weights };
}

/**
 * llama2.c rotates interleaved pairs (2j, 2j+1) of each head; HF's rotate_half rotates (j, j+d/2).
 * Reordering each head's rows from [pair j, element t] to [element t, pair j] makes HF's RoPE
 * compute exactly llama2.c's attention: w.reshape(heads, d/2, 2, in).transpose(0, 2, 1, 3).
 */
export function permuteRotary(w: Float32Array, heads: number, headDim: number, inDim: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) {
        const from = (h * headDim + 2 * j + t) * inDim;
        const to = (h * headDim + t * half + j) * inDim;
        out.set(w.subarray(from, from + inDim), to);
      }
    }
  }
  return out;
}

export interface ConvertResult {
  spec: ModelSpec;
  /** sha256 of the written model.safetensors (the base identity loadBaseDir reports). */
  sha256: string;
  files: string[];
  warnings: string[];
}

/**
 * Converts a llama2.c model + tokenizer into an HF directory: config.json, generation_config.json,
 * model.safetensors, tokenizer.bin (the original, which loadTokenizerDir prefers), and the
 * equivalent tokenizer.json / tokenizer_config.json / special_tokens_map.json for HF tools.
 */
export async function convertLlama2c(
  model: { bytes: Uint8Array; file: string },
  tokenizer: { bytes: Uint8Array; file: string },
  outDir: string,
): Promise<ConvertResult> {
  const { spec, weights } = parseLlama2cCheckpoint(model.bytes, model.file);
  const vocab = parseLlama2cTokenizer(tokenizer.bytes, { file: tokenizer.file, vocabSize: spec.vocabSize });
  const files: Record<string, Uint8Array | string> = { 'tokenizer.bin': tokenizer.bytes };
  const warnings: string[] = [];
  try {
    const hf = llama2cToHfTokenizer(vocab, spec.maxSeqLen);
    for (const [name, value] of Object.entries(hf)) files[name] = `${JSON.stringify(value, null, 2)}\n`;
  } catch (err) {
    // The model is still usable here (tokenizer.bin); only HF tools lose their tokenizer.
    if (!(err instanceof TokenizerConversionError)) throw err;
    warnings.push(`${err.message}; wrote tokenizer.bin only`);
  }
  const { sha256 } = await saveModelDir(outDir, spec, weights, { files });
  return { spec, sha256, files: ['config.json', 'generation_config.json', 'model.safetensors', ...Object.keys(files)], warnings };
}
