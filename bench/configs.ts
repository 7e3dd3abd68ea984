/**
 * The model shapes the speed benchmarks train (bench/train-step.ts, bench/peers/), and what a
 * step of each costs in FLOPs.
 */
import type { ModelSpec } from '../core/models/config.ts';
import { tensorShapes } from '../core/models/units.ts';

export interface StepConfig {
  name: string;
  spec: ModelSpec;
  batch: number;
  seq: number;
  /** Layers that train (LISA's sampled blocks); all when absent. Embed and head always train. */
  layers?: number[];
}

const llama = (o: Partial<ModelSpec>): ModelSpec => ({
  arch: 'llama',
  vocabSize: 512,
  dim: 64,
  nLayers: 5,
  nHeads: 8,
  nKvHeads: 4,
  headDim: 8,
  hiddenDim: 172,
  maxSeqLen: 512,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: true,
  bosId: 1,
  eosId: 2,
  ...o,
});

// dim 256, 6 layers, llama2.c's hidden size rule (8/3 dim rounded up to 32): 4.95M parameters.
const llama5M = llama({ dim: 256, nLayers: 6, nHeads: 8, nKvHeads: 8, headDim: 32, hiddenDim: 704, maxSeqLen: 256 });

export const CONFIGS: StepConfig[] = [
  // stories260K's shape; its sequences are up to 512 long, 4 x 256 = 1024 tokens a step.
  { name: 'stories260K-shaped', spec: llama({}), batch: 4, seq: 256 },
  { name: 'llama-5M', spec: llama5M, batch: 4, seq: 64 },
  // What a LISA step trains: embed + head + 2 sampled blocks. Frozen weights get no gradient.
  { name: 'llama-5M LISA 2/6', spec: llama5M, batch: 4, seq: 64, layers: [1, 4] },
  // The other architecture at the same width and depth (4.9M parameters with learned positions).
  { name: 'gpt2-5M', spec: { ...llama5M, arch: 'gpt2', hiddenDim: 1024, ropeTheta: 0, bosId: 0, eosId: 0 }, batch: 4, seq: 64 },
];

export function paramCount(spec: ModelSpec): number {
  return [...tensorShapes(spec).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** Whether HF tensor `name` trains in config `c`. */
export function trains(c: StepConfig, name: string): boolean {
  const layer = /^(?:model\.layers|transformer\.h)\.(\d+)\./.exec(name);
  return !layer || !c.layers || c.layers.includes(Number(layer[1]));
}

/**
 * 2N forward + 2N activation gradients + 2 x (trained params) weight gradients per token, plus
 * attention; with everything trained that is nanoGPT's 6N + 12 L H hd T (its estimate_mfu).
 */
export function flopsPerStep(c: StepConfig, trained: number): number {
  const tokens = c.batch * c.seq;
  const { nLayers, nHeads, headDim } = c.spec;
  return (4 * paramCount(c.spec) + 2 * trained) * tokens + 12 * nLayers * nHeads * headDim * c.seq * tokens;
}
