/**
 * Network faults between lisa-fn and S3: chunks run in this process against Ceph RGW through the
 * fault proxy (proxy.ts), with a 1 s socket timeout so a stall is cut in seconds. A trial's seed
 * decides, request by request, whether to pass it or inject one fault: a delay, a reset of the
 * request or of the response, a truncated response, or a request or response stalled past the
 * socket timeout.
 *
 * Every chunk attempt must either commit (and its manifest be the one stored) or fail with a
 * coded LisaError; after each, the chain read through a clean connection is gap-free and every
 * object its head names verifies, so no manifest points at a partial object. No request is tried
 * more than the store's 6 attempts within one chunk, and no attempt hangs.
 */
import { initEngine } from '../../core/engine/index.ts';
import { LisaError } from '../../core/errors.ts';
import { mulberry32, type Rng } from '../../core/lisa/rng.ts';
import { openRuns } from '../../core/runs/open.ts';
import { openStore } from '../../core/store/open.ts';
import type { ChunkManifest } from '../../core/store/manifest.ts';
import { checkRun, unreferencedUnits } from './invariants.ts';
import { FaultProxy, type Fault, type ProxiedRequest } from './proxy.ts';
import { clearPrefix, s3Inputs, type S3Inputs } from './s3-inputs.ts';
import { qaLines } from '../train/harness.ts';

const RUN = 'netfault';
/** the store's attempts per request (S3Store's default) */
export const MAX_TRIES = 6;
const SOCKET_TIMEOUT_SECONDS = 1;

export const FAULTS = ['delay', 'reset-request', 'reset-response', 'truncate-response', 'stall-request', 'stall-response'] as const;
export type FaultKind = (typeof FAULTS)[number];

/** One random fault for `req`: cuts fall at a uniformly random byte of the request or response. */
export function randomFault(kind: FaultKind, req: ProxiedRequest, rng: Rng): Fault {
  const responseBytes = 200 + rng.int(2000);
  switch (kind) {
    case 'delay':
      return { delayMs: rng.int(800) };
    case 'reset-request':
      return { request: { afterBytes: rng.int(req.bytes + 1), then: 'reset' } };
    case 'reset-response':
      return { response: { afterBytes: rng.int(responseBytes), then: 'reset' } };
    case 'truncate-response':
      return { response: { afterBytes: rng.int(responseBytes), then: 'close' } };
    case 'stall-request':
      return { request: { afterBytes: rng.int(req.bytes + 1), then: 'stall' } };
    case 'stall-response':
      return { response: { afterBytes: rng.int(responseBytes), then: 'stall' } };
  }
}

export interface NetworkTrial {
  seed: number;
  attempts: number;
  committed: number;
  /** error code -> attempts that failed with it */
  errors: Record<string, number>;
  faults: Record<FaultKind, number>;
  requests: number;
  /** the most tries any one request (method, key, range) took within one chunk */
  maxTries: number;
  /** the longest chunk attempt */
  maxAttemptSeconds: number;
  ok: boolean;
  error?: string;
}

export interface NetworkSetup extends S3Inputs {
  close(): Promise<void>;
}

export async function prepareNetworkTrials(): Promise<NetworkSetup> {
  await initEngine({ backend: 'wasm' });
  const inputs = await s3Inputs('net', new TextEncoder().encode(`${qaLines(40).join('\n')}\n`));
  return { ...inputs, close: () => clearPrefix(inputs.prefix) };
}

/** `attempts` chunks of one fresh run through a proxy that faults each request with probability `p`. */
export async function networkTrial(setup: NetworkSetup, seed: number, opts: { attempts?: number; p?: number } = {}): Promise<NetworkTrial> {
  const attempts = opts.attempts ?? 4;
  const p = opts.p ?? 0.25;
  const rng = mulberry32(seed);
  const trial: NetworkTrial = {
    seed,
    attempts,
    committed: 0,
    errors: {},
    faults: Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<FaultKind, number>,
    requests: 0,
    maxTries: 0,
    maxAttemptSeconds: 0,
    ok: false,
  };
  const storeUrl = `${setup.prefix}/trial-${seed}`;
  const proxy = new FaultProxy(setup.upstream, (req) => {
    if (rng.next() >= p) return undefined;
    const kind = FAULTS[rng.int(FAULTS.length)];
    trial.faults[kind]++;
    return randomFault(kind, req, rng);
  });
  const env = { ...process.env, AWS_ENDPOINT_URL_S3: await proxy.start(), LISA_S3_SOCKET_TIMEOUT_SECONDS: String(SOCKET_TIMEOUT_SECONDS) };
  try {
    const clean = await openRuns(storeUrl, { env: process.env });
    await clean.create({ base: setup.base, data: setup.data, fields: ['question', 'answer'], seqLen: 48, activeLayers: 2, period: 2, steps: 100, batchSize: 2, seed }, { id: RUN });
    const faulty = await openRuns(storeUrl, { env });
    const store = openStore(storeUrl, { env: process.env });
    for (let i = 0; i < attempts; i++) {
      const before = await checkRun(store, RUN);
      const first = proxy.requests.length;
      const t0 = Date.now();
      const outcome: ChunkManifest | Error = await faulty.chunk(RUN).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      trial.maxAttemptSeconds = Math.max(trial.maxAttemptSeconds, (Date.now() - t0) / 1000);
      const tries = new Map<string, number>();
      for (const r of proxy.requests.slice(first)) {
        const sig = `${r.method} ${r.key} ${r.range ?? ''} ${r.target.split('?')[1] ?? ''}`;
        tries.set(sig, (tries.get(sig) ?? 0) + 1);
      }
      trial.maxTries = Math.max(trial.maxTries, ...tries.values());
      const after = await checkRun(store, RUN);
      if (outcome instanceof Error) {
        if (!(outcome instanceof LisaError)) throw new Error(`chunk ${i} failed without a code: ${outcome.stack}`);
        trial.errors[outcome.code] = (trial.errors[outcome.code] ?? 0) + 1;
        // a commit that landed while its answer was lost is still a commit: one more chunk, or none
        if (after.seqs.length - before.seqs.length > 1) throw new Error(`a failed chunk added ${after.seqs.length - before.seqs.length} chunks`);
      } else {
        trial.committed++;
        if (after.head?.seq !== outcome.seq || after.head?.globalStep !== outcome.globalStep) throw new Error(`chunk ${i} returned seq ${outcome.seq}, the store's head is ${after.head?.seq}`);
      }
    }
    trial.requests = proxy.requests.length;
    if (trial.maxTries > MAX_TRIES) throw new Error(`a request was tried ${trial.maxTries} times in one chunk (at most ${MAX_TRIES})`);
    const state = await checkRun(store, RUN);
    const orphans = await unreferencedUnits(store, RUN, state);
    const gc = await clean.gc(RUN, { graceSeconds: 0 });
    if (JSON.stringify([...gc.deleted].sort()) !== JSON.stringify(orphans.sort())) throw new Error(`gc deleted ${gc.deleted.length} objects, ${orphans.length} were orphans`);
    await checkRun(store, RUN);
    trial.ok = true;
  } catch (err) {
    trial.error = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
  } finally {
    await proxy.close();
  }
  return trial;
}
