/**
 * Storms: 32 concurrent chunk requests over HTTP, 8 on each of 4 runs, split across two `lisa
 * serve` processes that share one store. Within a process a run's chunks queue; across processes
 * they race for the exclusive create of the next manifest, and every loser must be a 409
 * CHUNK_CONFLICT naming the winning seq. Afterwards every chain is linear and gap-free (so no
 * global step is counted twice: each chunk starts at its parent's globalStep), each committed seq
 * was answered 201 exactly once, and every committed request sent with an Idempotency-Key, replayed
 * on the other server, returns its first answer and commits nothing.
 */
import { rm } from 'node:fs/promises';
import { tenantPrefix } from '../../core/runs/refs.ts';
import { PrefixedStore } from '../../core/store/prefixed.ts';
import { openStore } from '../../core/store/open.ts';
import { qaLines, writeData } from '../train/harness.ts';
import { checkRun } from './invariants.ts';
import { killGroup } from './processes.ts';
import { alphaToken, MODEL, serveLisa, type Served } from './serve.ts';

export interface StormResult {
  seed: number;
  requests: number;
  committed: number;
  conflicts: number;
  /** answers other than 201 and 409 CHUNK_CONFLICT, by status and code */
  other: Record<string, number>;
  chains: number[];
  linear: number;
  replays: number;
  seconds: number;
  ok: boolean;
  error?: string;
}

const RUNS = 4;
const PER_RUN = 8;

/** One storm over the store at `storeUrl` (a directory or s3:// prefix, fresh). */
export async function storm(storeUrl: string, seed: number): Promise<StormResult> {
  const result: StormResult = { seed, requests: RUNS * PER_RUN, committed: 0, conflicts: 0, other: {}, chains: [], linear: 0, replays: 0, seconds: 0, ok: false };
  const data = await writeData(qaLines(40));
  const dataDir = data.slice(0, data.lastIndexOf('/'));
  const auth = alphaToken();
  const servers: Served[] = [];
  try {
    servers.push(...(await Promise.all([0, 1].map(() => serveLisa(storeUrl, auth, dataDir)))));
    const ids: string[] = [];
    for (let r = 0; r < RUNS; r++) {
      const created = await servers[r % 2].request('POST', '/v1/runs', { base: MODEL, data, fields: ['question', 'answer'], seqLen: 48, activeLayers: 1, period: 2, steps: 200, batchSize: 2, seed: seed + r });
      if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
      ids.push(created.json.id as string);
    }
    const t0 = performance.now();
    // request i of a run goes to server i % 2; even requests carry an Idempotency-Key
    const sent = ids.flatMap((id) =>
      Array.from({ length: PER_RUN }, (_, i) => {
        const key = i % 2 === 0 ? `storm-${seed}-${id}-${i}` : undefined;
        const headers: Record<string, string> = key ? { 'idempotency-key': key } : {};
        return { id, i, key, answer: servers[i % 2].request('POST', `/v1/runs/${id}/chunks`, {}, headers) };
      }),
    );
    const answers = await Promise.all(sent.map(async (s) => ({ ...s, answer: await s.answer })));
    result.seconds = (performance.now() - t0) / 1000;

    const store = new PrefixedStore(openStore(storeUrl, { env: process.env }), tenantPrefix('alpha'));
    for (const id of ids) {
      const state = await checkRun(store, id);
      result.chains.push(state.seqs.length);
      const mine = answers.filter((a) => a.id === id);
      const won = mine.filter((a) => a.answer.status === 201).map((a) => a.answer.json.seq as number);
      result.committed += won.length;
      for (const a of mine) {
        const { status, json } = a.answer;
        const error = json.error as { code?: string; details?: { winningSeq?: number } } | undefined;
        if (status === 409 && error?.code === 'CHUNK_CONFLICT') {
          result.conflicts++;
          if (!state.seqs.includes(error.details?.winningSeq ?? -1)) throw new Error(`a 409 on run ${id} names seq ${error.details?.winningSeq}, which is not committed`);
        } else if (status !== 201) {
          const k = `${status} ${error?.code ?? ''}`;
          result.other[k] = (result.other[k] ?? 0) + 1;
        }
      }
      if (JSON.stringify([...won].sort((a, b) => a - b)) !== JSON.stringify(state.seqs)) throw new Error(`run ${id}: 201s for seqs ${won.join(',')}, the store holds ${state.seqs.join(',')}`);
      result.linear++;
    }
    // replays of the keyed requests that committed, each on the other server: the first answer
    // again, nothing new committed (a keyed request that lost is not recorded: its retry runs anew)
    for (const a of answers.filter((x) => x.key && x.answer.status === 201)) {
      const again = await servers[(a.i + 1) % 2].request('POST', `/v1/runs/${a.id}/chunks`, {}, { 'idempotency-key': a.key! });
      if (again.status !== 201 || JSON.stringify(again.json) !== JSON.stringify(a.answer.json)) {
        throw new Error(`replay of ${a.key} answered ${again.status} ${JSON.stringify(again.json)}, first 201 seq ${a.answer.json.seq}`);
      }
      result.replays++;
    }
    const after = await Promise.all(ids.map(async (id) => (await checkRun(store, id)).seqs.length));
    if (JSON.stringify(after) !== JSON.stringify(result.chains)) throw new Error(`replays committed chunks: ${result.chains.join(',')} -> ${after.join(',')}`);
    result.ok = true;
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  } finally {
    await Promise.all(servers.map((s) => killGroup(s.lisa)));
    await rm(dataDir, { recursive: true, force: true });
  }
  return result;
}
