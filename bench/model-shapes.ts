/** The exact shapes (from each model's config.json) of the bases bench/models.ts measures. */
import type { ModelSpec } from '../core/models/config.ts';

export const SMOLLM2_135M: ModelSpec = {
  arch: 'llama', vocabSize: 49152, dim: 576, nLayers: 30, nHeads: 9, nKvHeads: 3, headDim: 64, hiddenDim: 1536,
  maxSeqLen: 8192, normEps: 1e-5, ropeTheta: 100000, tiedEmbeddings: true, bosId: 1, eosId: 2,
};

export const QWEN25_05B: ModelSpec = {
  arch: 'qwen2', vocabSize: 151936, dim: 896, nLayers: 24, nHeads: 14, nKvHeads: 2, headDim: 64, hiddenDim: 4864,
  maxSeqLen: 32768, normEps: 1e-6, ropeTheta: 1000000, tiedEmbeddings: true, bosId: 151643, eosId: 151643,
  biases: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'],
};

export const LLAMA_32_1B: ModelSpec = {
  arch: 'llama', vocabSize: 128256, dim: 2048, nLayers: 16, nHeads: 32, nKvHeads: 8, headDim: 64, hiddenDim: 8192,
  maxSeqLen: 131072, normEps: 1e-5, ropeTheta: 500000, tiedEmbeddings: true, bosId: 128000, eosId: 128001,
  ropeScaling: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
};
