import type { ChunkManifest } from '../store/manifest.ts';
import type { RunSpec } from '../store/run-spec.ts';

/** A manifest without its unit map: object keys and hashes are the store's business, not a caller's. */
export type ChunkSummary = Omit<ChunkManifest, 'version' | 'units'> & {
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
    period: m.period,
    activeUnits: m.activeUnits,
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
