import { trainingFrequency, type UnitFrequency } from '../lisa/samplers.ts';
import type { ChunkManifest } from '../store/manifest.ts';
import type { RunSpec } from '../store/run-spec.ts';
import { runUnits } from '../train/method.ts';

/**
 * A manifest without its unit map (object keys and hashes are the store's business, not a
 * caller's) or the grad-norm sampler's state; what a period drew from is null for lora and full
 * runs, which draw nothing, and in manifests written before samplers.
 */
export type ChunkSummary = Omit<ChunkManifest, 'version' | 'units' | 'probabilities' | 'unitGradNorms' | 'gradNormEma'> & {
  probabilities: number[] | null;
  unitGradNorms: Record<string, number> | null;
  /** optimizer steps this chunk trained */
  steps: number;
};

export interface RunTotals {
  steps: number;
  tokens: number;
  seconds: number;
  costUsd: number;
  bytes: { in: number; out: number };
}

/** A run as its owner sees it: the spec, the latest chunk, the running totals, whether it is done. */
export interface RunStatus extends RunSpec {
  head: ChunkSummary | null;
  totals: RunTotals;
  /** every configured step is trained */
  complete: boolean;
}

export function chunkSummary(m: ChunkManifest): ChunkSummary {
  return {
    runId: m.runId,
    seq: m.seq,
    createdAt: m.createdAt,
    method: m.method,
    period: m.period,
    activeUnits: m.activeUnits,
    probabilities: m.probabilities ?? null,
    unitGradNorms: m.unitGradNorms ?? null,
    startStep: m.startStep,
    globalStep: m.globalStep,
    steps: m.globalStep - m.startStep,
    losses: m.losses,
    learningRates: m.learningRates,
    tokens: m.tokens,
    heldOut: m.heldOut,
    stoppedBy: m.stoppedBy,
    cursor: m.cursor,
    seconds: m.seconds,
    bytes: m.bytes,
    costUsd: m.costUsd,
    totals: m.totals,
  };
}

export function runStatus(spec: RunSpec, head: ChunkManifest | null): RunStatus {
  const t = head?.totals ?? { steps: 0, tokens: 0, seconds: 0, costUsd: 0, bytesIn: 0, bytesOut: 0 };
  return {
    ...spec,
    head: head ? chunkSummary(head) : null,
    totals: { steps: t.steps, tokens: t.tokens, seconds: t.seconds, costUsd: t.costUsd, bytes: { in: t.bytesIn, out: t.bytesOut } },
    complete: (head?.globalStep ?? 0) >= spec.config.steps,
  };
}

/**
 * How often each unit the run trains from has trained (periods, steps), in unit order, from its
 * chunks in seq order; a LISA manifest's probabilities are in the same order.
 */
export function unitTraining(spec: RunSpec, chunks: readonly ChunkManifest[]): Record<string, UnitFrequency> {
  const frequency = trainingFrequency(chunks);
  return Object.fromEntries(runUnits(spec).map((u) => [u, frequency.get(u) ?? { periods: 0, steps: 0 }]));
}
