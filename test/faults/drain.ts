/**
 * SIGTERM during a chunk under a real `lisa serve`: the server stops taking work, lets the running
 * chunk stop stepping and commit within its grace period, or exits when the grace runs out. Either
 * way the store holds the whole commit or none of it: the chain checks, gc removes only orphans,
 * and an answered 201 names the chunk the store holds.
 */
import { rm } from 'node:fs/promises';
import { mulberry32 } from '../../core/lisa/rng.ts';
import { tenantPrefix } from '../../core/runs/refs.ts';
import { openRuns } from '../../core/runs/open.ts';
import { PrefixedStore } from '../../core/store/prefixed.ts';
import { openStore } from '../../core/store/open.ts';
import { qaLines, tempDir, writeData } from '../train/harness.ts';
import { checkRun, unreferencedUnits } from './invariants.ts';
import { killGroup } from './processes.ts';
import { alphaToken, MODEL, serveLisa } from './serve.ts';

export interface DrainTrial {
  seed: number;
  graceSeconds: number;
  delayMs: number;
  /** what the client got: an HTTP status, or 'dropped' (the connection closed unanswered) */
  answer: number | 'dropped';
  committed: boolean;
  exitCode: number | null;
  orphans: number;
  ok: boolean;
  error?: string;
}

/** One trial: grace 0 s (odd seeds) or 20 s (even), SIGTERM at a seeded moment within the first ~4 s of the request. */
export async function drainTrial(seed: number): Promise<DrainTrial> {
  const rng = mulberry32(seed);
  const graceSeconds = seed % 2 === 1 ? 0 : 20;
  const delayMs = Math.floor(rng.next() * 4000);
  const trial: DrainTrial = { seed, graceSeconds, delayMs, answer: 'dropped', committed: false, exitCode: null, orphans: 0, ok: false };
  const dir = await tempDir('drain');
  const data = await writeData(qaLines(40));
  const dataDir = data.slice(0, data.lastIndexOf('/'));
  const server = await serveLisa(dir, alphaToken(), dataDir, { LISA_SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
  try {
    const created = await server.request('POST', '/v1/runs', { base: MODEL, data, fields: ['question', 'answer'], seqLen: 48, activeLayers: 2, period: 6, steps: 60, batchSize: 2, seed });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
    const id = created.json.id as string;
    const answer = server.request('POST', `/v1/runs/${id}/chunks`, {}).then(
      (r) => r,
      () => 'dropped' as const,
    );
    await new Promise((r) => setTimeout(r, delayMs));
    process.kill(server.lisa.pid, 'SIGTERM');
    const res = await answer;
    trial.exitCode = (await server.lisa.exited).code;
    trial.answer = res === 'dropped' ? res : res.status;

    const store = new PrefixedStore(openStore(dir), tenantPrefix('alpha'));
    const state = await checkRun(store, id);
    trial.committed = state.seqs.length === 1;
    if (state.seqs.length > 1) throw new Error(`${state.seqs.length} chunks committed for one request`);
    if (res !== 'dropped' && res.status === 201 && (!trial.committed || res.json.seq !== 0)) throw new Error(`answered 201 for seq ${res.json.seq}, the store holds ${state.seqs.join(',') || 'nothing'}`);
    if (res !== 'dropped' && res.status !== 201 && res.status !== 503) throw new Error(`answered ${res.status}: ${JSON.stringify(res.json)}`);
    // a request that arrived after the signal is refused (503 SERVER_SHUTTING_DOWN); one that started commits
    if (graceSeconds > 0 && !trial.committed && trial.answer !== 503) throw new Error(`the drain had 20 s to commit a stopped chunk and did not (answer ${trial.answer})`);
    // the grace-0 exit may cut between units and manifest: only orphans are left, and gc takes them
    const orphans = await unreferencedUnits(store, id, state);
    trial.orphans = orphans.length;
    const runs = (await openRuns(dir, { env: process.env })).forTenant('alpha');
    const gc = await runs.gc(id, { graceSeconds: 0 });
    if (JSON.stringify([...gc.deleted].sort()) !== JSON.stringify(orphans.sort())) throw new Error(`gc deleted ${gc.deleted.join(', ')}, orphans were ${orphans.join(', ')}`);
    await checkRun(store, id);
    trial.ok = true;
  } catch (err) {
    trial.error = err instanceof Error ? err.message : String(err);
  } finally {
    await killGroup(server.lisa);
    await rm(dir, { recursive: true, force: true });
    await rm(dataDir, { recursive: true, force: true });
  }
  return trial;
}
