/**
 * Autoregressive generation with llama2.c run.c's semantics, so its reference outputs are
 * reproducible: `maxTokens` positions run through the model (BOS and prompt included, like -n),
 * each predicting the next token; generation stops early when the model emits a stop id (BOS, as
 * run.c does). Sampling mirrors run.c: xorshift64* RNG, temperature softmax in float32, top-p
 * with the (1 - p) / (n - 1) cutoff.
 */
import { contextLength } from './config.ts';
import { LisaError } from '../errors.ts';
import type { Model } from './model.ts';

export interface GenerateOptions {
  /** Positions to run through the model, BOS and prompt included (run.c -n); clamped to maxSeqLen. */
  maxTokens: number;
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Nucleus sampling mass in (0, 1); absent or >= 1 samples from the whole distribution. */
  topP?: number;
  /** RNG seed (run.c's rng_seed); default 1. */
  seed?: number;
  /** Token ids that end generation without being emitted; default [BOS]. */
  stopIds?: number[];
}

export class GenerateOptionsError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('GENERATE_OPTIONS_INVALID', message, details);
  }
}

const MASK64 = (1n << 64n) - 1n;

/** run.c's xorshift64* generator: random_u32 and random_f32. */
export class RunCRng {
  private state: bigint;

  constructor(seed: number) {
    this.state = BigInt.asUintN(64, BigInt(seed));
  }

  u32(): number {
    let s = this.state;
    s ^= s >> 12n;
    s ^= (s << 25n) & MASK64;
    s ^= s >> 27n;
    this.state = s;
    return Number(((s * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }

  /** [0, 1) with 24 random bits, as float32. */
  f32(): number {
    return Math.fround((this.u32() >>> 8) / 16777216);
  }
}

export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** softmax(logits / temperature) in float32 steps, like run.c. */
function probabilities(logits: Float32Array, temperature: number): Float32Array {
  const p = new Float32Array(logits.length);
  for (let i = 0; i < p.length; i++) p[i] = logits[i] / temperature;
  let max = p[0];
  for (let i = 1; i < p.length; i++) if (p[i] > max) max = p[i];
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    p[i] = Math.exp(p[i] - max);
    sum = Math.fround(sum + p[i]);
  }
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

function sampleMult(p: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf = Math.fround(cdf + p[i]);
    if (coin < cdf) return i;
  }
  return p.length - 1;
}

function sampleTopP(p: Float32Array, topP: number, coin: number): number {
  // Tokens below the cutoff cannot be in the nucleus; dropping them first keeps the sort short.
  const cutoff = Math.fround((1 - topP) / (p.length - 1));
  const idx: number[] = [];
  for (let i = 0; i < p.length; i++) if (p[i] >= cutoff) idx.push(i);
  idx.sort((a, b) => p[b] - p[a]);
  let cumulative = 0;
  let last = idx.length - 1;
  for (let i = 0; i < idx.length; i++) {
    cumulative = Math.fround(cumulative + p[idx[i]]);
    if (cumulative > topP) {
      last = i;
      break;
    }
  }
  const r = Math.fround(coin * cumulative);
  let cdf = 0;
  for (let i = 0; i <= last; i++) {
    cdf = Math.fround(cdf + p[idx[i]]);
    if (r < cdf) return idx[i];
  }
  return idx[last];
}

/** Picks the next token from logits [V] (run.c's sample()). */
export function sampleToken(logits: Float32Array, temperature: number, topP: number | undefined, rng: RunCRng): number {
  if (temperature === 0) return argmax(logits);
  const p = probabilities(logits, temperature);
  const coin = rng.f32();
  return topP === undefined || topP <= 0 || topP >= 1 ? sampleMult(p, coin) : sampleTopP(p, topP, coin);
}

/**
 * Returns the whole sequence (prompt, then generated ids); at most maxTokens + 1 ids, since the
 * last position's prediction is kept but not run. `promptIds` starts with BOS; empty means [BOS].
 * onToken sees each generated id as it is chosen.
 */
export function generate(model: Model, promptIds: number[], opts: GenerateOptions, onToken?: (id: number) => void): number[] {
  const { spec } = model;
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) {
    throw new GenerateOptionsError(`maxTokens must be a positive integer, got ${opts.maxTokens}`, { maxTokens: opts.maxTokens });
  }
  if (!(opts.temperature >= 0) || !Number.isFinite(opts.temperature)) {
    throw new GenerateOptionsError(`temperature must be a finite number >= 0, got ${opts.temperature}`, {
      temperature: opts.temperature,
    });
  }
  const bad = promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= spec.vocabSize);
  if (bad !== undefined) {
    throw new GenerateOptionsError(`prompt token ${bad} is outside the vocabulary [0, ${spec.vocabSize})`, { token: bad });
  }
  const positions = Math.min(opts.maxTokens, contextLength(spec));
  const prompt = promptIds.length > 0 ? promptIds : [spec.bosId];
  if (prompt.length > positions) return prompt.slice(0, positions + 1);

  const stop = new Set(opts.stopIds ?? [spec.bosId]);
  const rng = new RunCRng(opts.seed ?? 1);
  const seq = [...prompt];
  const decoder = model.decoder();
  try {
    let logits = decoder.feed(prompt);
    for (;;) {
      const next = sampleToken(logits, opts.temperature, opts.topP, rng);
      if (stop.has(next)) break;
      seq.push(next);
      onToken?.(next);
      if (decoder.pos >= positions) break;
      logits = decoder.feed([next]);
    }
  } finally {
    decoder.dispose();
  }
  return seq;
}
