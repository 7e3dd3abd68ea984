/**
 * Which units train in a sampling period (README.md "How a chunk works", step 4).
 *
 * Units are named as in core/models/units.ts: 'embed', 'layers.0' … 'layers.{N-1}', 'head'.
 * The draw for period p is a pure function of (cfg, p): a retried chunk re-derives the same units.
 *
 * embedHead:
 *   'always'  (paper default) embed and head train every period, plus γ blocks;
 *   'never'   only the γ blocks train;
 *   'sampled' embed and head join the candidate pool, γ units are drawn from all N + 2.
 * With tied embeddings embed and head share one tensor; the trainer trains it when either is drawn.
 *
 * Without probabilities the draw is uniform without replacement, so every candidate's inclusion
 * probability is exactly γ / (pool size). With probabilities (the paper's {p_ℓ}, any non-negative
 * weights) the draw is successive sampling: pick one candidate with chance proportional to its
 * weight, remove it, repeat γ times (numpy `choice(replace=False, p=...)`). Inclusion probabilities
 * then grow with the weight but are not proportional to it (unless all weights are equal);
 * a zero weight is never drawn.
 */
import { LisaError } from '../errors.ts';
import { checkUint32, rngFor, type Rng } from './rng.ts';

export type EmbedHeadMode = 'always' | 'never' | 'sampled';

export interface ScheduleConfig {
  nLayers: number;
  /** γ: units drawn per period (blocks, or blocks + embed/head when embedHead = 'sampled'). */
  activeLayers: number;
  embedHead: EmbedHeadMode;
  /**
   * Sampling weights, one per candidate in unit order: nLayers entries, or nLayers + 2
   * (embed, layers.0 …, head) when embedHead = 'sampled'. Omitted = uniform.
   */
  probabilities?: number[];
  seed: number;
}

/**
 * A sampling strategy. `sample(period)` must be a pure function of the strategy's construction
 * inputs and `period`; an adaptive strategy (e.g. weights from past gradient norms) must be
 * rebuilt from committed manifests, never from in-process history, or resume stops being exact.
 */
export interface Sampler {
  /** Units to train in `period`, in unit order (embed, layers ascending, head). */
  sample(period: number): string[];
}

export class ScheduleConfigError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('SCHEDULE_CONFIG_INVALID', message, details);
  }
}

/** The stream name under which periods draw from rngFor(seed, ·, period). */
export const SCHEDULE_STREAM = 'lisa.schedule';

const EMBED_HEAD_MODES: readonly EmbedHeadMode[] = ['always', 'never', 'sampled'];

export function layerUnit(i: number): string {
  return `layers.${i}`;
}

/** The units a period draws from, in unit order: the blocks, plus embed and head under 'sampled'. */
export function candidateUnits(nLayers: number, embedHead: EmbedHeadMode): string[] {
  const blocks = Array.from({ length: nLayers }, (_, i) => layerUnit(i));
  return embedHead === 'sampled' ? ['embed', ...blocks, 'head'] : blocks;
}

/** Validates cfg once and returns the sampler it describes. */
export function createSampler(cfg: ScheduleConfig): Sampler {
  const { nLayers, activeLayers: gamma, embedHead, probabilities, seed } = cfg;
  if (!Number.isInteger(nLayers) || nLayers < 1) {
    throw new ScheduleConfigError(`nLayers must be a positive integer, got ${nLayers}`, { nLayers });
  }
  if (!EMBED_HEAD_MODES.includes(embedHead)) {
    throw new ScheduleConfigError(`embedHead must be one of ${EMBED_HEAD_MODES.join(', ')}, got ${JSON.stringify(embedHead)}`, { embedHead });
  }
  try {
    checkUint32(seed, 'seed');
  } catch {
    throw new ScheduleConfigError(`seed must be an integer in [0, 2^32), got ${seed}`, { seed });
  }
  const sampled = embedHead === 'sampled';
  const candidates = candidateUnits(nLayers, embedHead);
  const what = sampled ? `the ${candidates.length} candidates (embed, ${nLayers} layers, head)` : `the ${nLayers} layers`;
  if (!Number.isInteger(gamma) || gamma < 0 || gamma > candidates.length) {
    throw new ScheduleConfigError(`activeLayers must be an integer between 0 and ${candidates.length} (${what}), got ${gamma}`, {
      activeLayers: gamma,
      candidates: candidates.length,
    });
  }
  if (gamma === 0 && embedHead !== 'always') {
    throw new ScheduleConfigError(`activeLayers is 0 with embedHead '${embedHead}': no unit would ever train`, { activeLayers: gamma, embedHead });
  }
  const weights = probabilities === undefined ? undefined : checkWeights(probabilities, candidates.length, gamma, sampled);
  const fixed = embedHead === 'always' ? { before: ['embed'], after: ['head'] } : { before: [], after: [] };

  return {
    sample(period: number): string[] {
      if (!Number.isInteger(period) || period < 0 || period >= 2 ** 32) {
        throw new ScheduleConfigError(`period must be an integer in [0, 2^32), got ${period}`, { period });
      }
      const rng = rngFor(seed, SCHEDULE_STREAM, period);
      const picked = weights === undefined ? drawUniform(candidates.length, gamma, rng) : drawWeighted(weights, gamma, rng);
      picked.sort((a, b) => a - b);
      return [...fixed.before, ...picked.map((i) => candidates[i]), ...fixed.after];
    },
  };
}

/** The units of `period` for cfg (validates cfg on every call; use createSampler in loops). */
export function sampleUnits(cfg: ScheduleConfig, period: number): string[] {
  return createSampler(cfg).sample(period);
}

function checkWeights(p: number[], n: number, gamma: number, sampled: boolean): number[] {
  if (!Array.isArray(p) || p.length !== n) {
    const order = sampled ? 'embed, layers.0 …, head' : 'layers.0 …';
    throw new ScheduleConfigError(`probabilities must have ${n} entries (${order}), got ${Array.isArray(p) ? p.length : typeof p}`, {
      expected: n,
    });
  }
  const bad = p.findIndex((w) => typeof w !== 'number' || !Number.isFinite(w) || w < 0);
  if (bad >= 0) {
    throw new ScheduleConfigError(`probabilities[${bad}] must be a finite non-negative number, got ${p[bad]}`, { index: bad });
  }
  const positive = p.filter((w) => w > 0).length;
  if (positive < gamma) {
    throw new ScheduleConfigError(`probabilities has ${positive} positive entries but activeLayers is ${gamma}: γ distinct units need at least γ positive weights`, {
      positive,
      activeLayers: gamma,
    });
  }
  return [...p];
}

/** γ distinct indices of 0..n-1, uniform: the first γ steps of a Fisher–Yates shuffle. */
function drawUniform(n: number, gamma: number, rng: Rng): number[] {
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < gamma; i++) {
    const j = i + rng.int(n - i);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.slice(0, gamma);
}

function drawWeighted(weights: number[], gamma: number, rng: Rng): number[] {
  const w = [...weights];
  const picked: number[] = [];
  for (let k = 0; k < gamma; k++) {
    // Summing afresh each round (rather than subtracting) keeps the draw exact and order-stable.
    let total = 0;
    for (const x of w) total += x;
    let u = rng.next() * total;
    let chosen = -1;
    for (let i = 0; i < w.length; i++) {
      if (w[i] === 0) continue;
      chosen = i;
      if (u < w[i]) break;
      u -= w[i];
    }
    // Rounding can leave u just above the last weight; `chosen` then is the last positive one.
    picked.push(chosen);
    w[chosen] = 0;
  }
  return picked;
}
