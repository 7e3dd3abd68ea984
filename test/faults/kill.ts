/**
 * kill -9 trials: a `lisa chunk` process group is SIGKILLed at a moment its trial's seed chooses,
 * in one of four stages, and the store must show nothing of it but debris gc removes:
 *
 *   load    fs: a random moment after the engine started, within the base load's duration;
 *           S3: mid-body of the base's first model.safetensors read (the proxy cuts and kills)
 *   train   a random moment within the training steps (timed from the engine start, by the
 *           durations the uninterrupted reference chunk took)
 *   upload  fs: when the k-th unit's file appears in the store (polled every 5 ms);
 *           S3: after a random share of the k-th unit PUT's bytes reached RGW
 *   commit  fs: when the last unit object is in place (the commit's own temp file lives for
 *           microseconds, too short to poll for); S3: after a random share of the manifest PUT
 *           reached RGW, or after RGW answered it but before the answer reached the process
 *
 * Each trial is independent (its own store, a run with 0-2 chunks committed before), so any can
 * be replayed from its seed. After the kill: the chain is gap-free and every object of its head
 * verifies; gc (grace 0: the process is dead) deletes exactly the unreferenced unit objects and
 * sweeps exactly the temp files; the next chunk commits the next seq from the head, and the whole
 * chain equals, unit sha256 for unit sha256 and loss for loss, a run that was never killed.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { initEngine } from '../../core/engine/index.ts';
import { mulberry32 } from '../../core/lisa/rng.ts';
import { openRuns } from '../../core/runs/open.ts';
import type { Runs } from '../../core/runs/runs.ts';
import { listSeqs, type ChunkManifest } from '../../core/store/manifest.ts';
import { openStore } from '../../core/store/open.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import type { RunConfigInput } from '../../core/store/run-spec.ts';
import { s3ClientConfig } from '../../core/store/s3-store.ts';
import { qaLines, tempDir, tinyRun, writeData } from '../train/harness.ts';
import { checkRun, unreferencedUnits } from './invariants.ts';
import { killGroup, REPO, spawnLisa, type LisaProcess } from './processes.ts';
import { FaultProxy, type Fault, type ProxiedRequest } from './proxy.ts';
import { clearPrefix, s3Inputs } from './s3-inputs.ts';

export const STAGES = ['load', 'train', 'upload', 'commit'] as const;
export type Stage = (typeof STAGES)[number];
export type StoreKind = 'fs' | 's3';

const RUN = 'killed';
const MAX_PRE = 2;
const pad = (seq: number): string => String(seq).padStart(8, '0');

/** stories260K on 40 short questions: 3 steps a chunk, about 1 s of training on 2 busy cores. */
const config = (base: string, data: string): RunConfigInput => tinyRun(base, data, { period: 3, steps: 300, batchSize: 2, lr: 1e-3, warmupSteps: 0, seed: 11 });

export interface KillSetup {
  kind: StoreKind;
  config: RunConfigInput;
  /** the chain of a run never killed: what every trial's chain must equal */
  reference: ChunkManifest[];
  /** how long the reference's first chunk took to load and to train */
  timing: { loadMs: number; trainMs: number };
  /** a fresh, empty store for one trial */
  newStore(label: string): Promise<{ url: string; store: ObjectStore }>;
  /** RGW's address, for the proxy (S3 only) */
  upstream: { host: string; port: number } | null;
  close(): Promise<void>;
}

export interface KillTrial {
  kind: StoreKind;
  seed: number;
  target: Stage;
  /** chunks committed before the killed one */
  pre: number;
  /** where the kill landed, as the store shows it */
  landed: 'before upload' | 'upload' | 'commit' | 'after commit';
  killedAfterMs: number;
  /** what gc removed */
  deleted: number;
  swept: number;
  ok: boolean;
  error?: string;
}

async function localInputs(): Promise<{ base: string; data: string }> {
  return { base: join(REPO, 'models/stories260K'), data: await writeData(qaLines(40)) };
}

/** Inputs in place, the reference chain trained. S3 needs LISA_TEST_S3 and AWS_ENDPOINT_URL_S3 (infra/local-s3/with-s3.sh). */
export async function prepareKillTrials(kind: StoreKind): Promise<KillSetup> {
  await initEngine({ backend: 'wasm' });
  const local = await localInputs();
  const cleanups: Array<() => Promise<unknown>> = [() => rm(join(local.data, '..'), { recursive: true, force: true })];
  let refs = local;
  let newStore: KillSetup['newStore'];
  let upstream: KillSetup['upstream'] = null;
  if (kind === 's3') {
    const s3 = await s3Inputs('kill', await readFile(local.data));
    refs = s3;
    upstream = s3.upstream;
    let n = 0;
    newStore = async (label) => {
      const storeUrl = `${s3.prefix}/${label}-${n++}`;
      return { url: storeUrl, store: openStore(storeUrl, { env: process.env }) };
    };
    cleanups.push(() => clearPrefix(s3.prefix));
  } else {
    newStore = async (label) => {
      const dir = await tempDir(`kill-${label}`);
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return { url: dir, store: openStore(dir) };
    };
  }
  const cfg = config(refs.base, refs.data);
  const ref = await newStore('reference');
  const runs = await openRuns(ref.url, { env: process.env });
  await runs.create(cfg, { id: RUN });
  const reference: ChunkManifest[] = [];
  for (let i = 0; i < MAX_PRE + 2; i++) reference.push(await runs.chunk(RUN));
  const first = reference[0].seconds;
  return {
    kind,
    config: cfg,
    reference,
    timing: { loadMs: Math.max(100, first.load * 1000), trainMs: first.train * 1000 },
    newStore,
    upstream,
    async close() {
      for (const c of cleanups.reverse()) await c();
    },
  };
}

/** Temp files left in a directory store under `dir` (the oracle for gc's sweep). */
async function tempFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile() && e.name.startsWith('.lisa-tmp-')).map((e) => join(e.parentPath, e.name));
}

async function incompleteUploads(storeUrl: string): Promise<number> {
  const [, bucket, ...rest] = /^s3:\/\/([^/]+)\/?(.*)$/.exec(storeUrl) ?? [];
  const client = new S3Client(s3ClientConfig(process.env));
  try {
    const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${rest.join('/')}/` }));
    return res.Uploads?.length ?? 0;
  } finally {
    client.destroy();
  }
}

/** The units a chunk at `seq` has begun writing, and finished, as a directory store shows them. */
async function unitsWritten(dir: string, seq: number): Promise<{ units: number; complete: number; manifestTemp: boolean }> {
  const units = new Set<string>();
  let complete = 0;
  let manifestTemp = false;
  const entries = await readdir(join(dir, 'runs', RUN), { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const parent = e.parentPath.slice(join(dir, 'runs', RUN).length + 1);
    if (parent.startsWith('units/') && (e.name.startsWith(`${pad(seq)}-`) || e.name.startsWith('.lisa-tmp-'))) units.add(parent);
    if (parent.startsWith('units/') && e.name.startsWith(`${pad(seq)}-`)) complete++;
    if (parent === 'chunks' && e.name.startsWith('.lisa-tmp-')) manifestTemp = true;
  }
  return { units: units.size, complete, manifestTemp };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One trial (see the module doc); never throws: a broken invariant is `ok: false` with the reason. */
export async function killTrial(setup: KillSetup, seed: number): Promise<KillTrial> {
  const rng = mulberry32(seed);
  const target = STAGES[rng.int(STAGES.length)];
  const pre = rng.int(MAX_PRE + 1);
  const share = rng.next();
  const trial: KillTrial = { kind: setup.kind, seed, target, pre, landed: 'before upload', killedAfterMs: 0, deleted: 0, swept: 0, ok: false };
  const { url, store } = await setup.newStore(`trial-${seed}`);
  const runs = await openRuns(url, { env: process.env });
  let proxy: FaultProxy | null = null;
  let child: LisaProcess | null = null;
  try {
    await runs.create(setup.config, { id: RUN });
    for (let i = 0; i < pre; i++) await runs.chunk(RUN);
    const active = setup.reference[pre].activeUnits.length;
    const k = 1 + rng.int(active);
    let kill: (() => void) | null = null;
    const killed = new Promise<void>((resolve) => {
      kill = resolve;
    });

    let env: NodeJS.ProcessEnv = { ...process.env, LISA_BACKEND: 'wasm' };
    if (setup.kind === 's3') {
      proxy = new FaultProxy(setup.upstream!, s3Plan(target, share, k, () => kill!()));
      env = { ...env, AWS_ENDPOINT_URL_S3: await proxy.start() };
    }
    const t0 = Date.now();
    child = spawnLisa(['chunk', '--store', url, '--run', RUN], env);
    const proc = child;
    const timed = target === 'train' || (target === 'load' && setup.kind === 'fs');
    if (timed) {
      const { loadMs, trainMs } = setup.timing;
      const delay = target === 'load' ? share * loadMs : loadMs + (0.1 + 0.8 * share) * trainMs;
      void proc.line(/^engine: /).then(
        () => setTimeout(() => kill!(), delay),
        () => undefined,
      );
    } else if (setup.kind === 'fs') {
      void (async () => {
        for (let exited = false; !exited; ) {
          const w = await unitsWritten(url, pre);
          // the commit starts once every unit object is in place (its temp file lives for microseconds)
          if (target === 'upload' ? w.units >= k : w.complete >= active) return kill!();
          exited = await Promise.race([proc.exited.then(() => true), sleep(5).then(() => false)]);
        }
      })();
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 120_000)));
    const outcome = await Promise.race([killed.then(() => 'kill' as const), proc.exited.then(() => 'exit' as const), timeout]);
    clearTimeout(timer);
    trial.killedAfterMs = Date.now() - t0;
    await killGroup(proc);
    if (outcome !== 'kill') throw new Error(`the ${target} trigger never fired (${outcome}); stderr:\n${proc.stderr}`);

    // where it landed, as the store shows it
    const committed = (await listSeqs(store, RUN)).includes(pre);
    if (committed) trial.landed = 'after commit';
    else if (setup.kind === 'fs') {
      const w = await unitsWritten(url, pre);
      trial.landed = w.manifestTemp ? 'commit' : w.units > 0 ? 'upload' : 'before upload';
    } else {
      const puts = proxy!.requests.filter((r) => r.method === 'PUT');
      trial.landed = puts.some((r) => r.key.includes('/chunks/')) ? 'commit' : puts.some((r) => r.key.includes('/units/')) ? 'upload' : 'before upload';
    }

    await verifyAfterKill(setup, runs, store, url, trial);
    trial.ok = true;
  } catch (err) {
    trial.error = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
  } finally {
    if (child) await killGroup(child);
    await proxy?.close();
    if (setup.kind === 'fs') await rm(url, { recursive: true, force: true });
  }
  return trial;
}

/**
 * The S3 trigger: which request the proxy cuts, and how. The cut stalls the connection and kills
 * the process group at once, so the process never sees the rest of that request.
 */
function s3Plan(target: Stage, share: number, k: number, kill: () => void): (req: ProxiedRequest) => Fault | undefined {
  let unitPuts = 0;
  let fired = false;
  const once = (fault: Fault): Fault => {
    fired = true;
    return { ...fault, onCut: kill };
  };
  return (req) => {
    if (fired) return undefined;
    if (target === 'load' && req.method === 'GET' && req.key.endsWith('/model.safetensors')) {
      const [from, to] = (req.range ?? 'bytes=0-0').replace('bytes=', '').split('-').map(Number);
      return once({ response: { afterBytes: 300 + Math.floor(share * (to - from + 1)), then: 'stall' } });
    }
    if (target === 'upload' && req.method === 'PUT' && req.key.includes('/units/') && ++unitPuts === k) {
      return once({ request: { afterBytes: Math.floor(share * req.bytes), then: 'stall' } });
    }
    if (target === 'commit' && req.method === 'PUT' && req.key.includes('/chunks/')) {
      // half the time the commit lands and only its answer is lost
      return once(share < 0.5 ? { request: { afterBytes: Math.floor(2 * share * req.bytes), then: 'stall' } } : { response: { afterBytes: 0, then: 'stall' } });
    }
    return undefined;
  };
}

async function verifyAfterKill(setup: KillSetup, runs: Runs, store: ObjectStore, url: string, trial: KillTrial): Promise<void> {
  const { pre } = trial;
  const state = await checkRun(store, RUN);
  const expectSeqs = trial.landed === 'after commit' ? pre + 1 : pre;
  if (state.seqs.length !== expectSeqs) throw new Error(`chain has ${state.seqs.length} chunks, expected ${expectSeqs}`);

  // gc deletes exactly what no manifest refers to, and exactly the temp files / incomplete uploads
  const orphans = (await unreferencedUnits(store, RUN, state)).sort();
  const debris = setup.kind === 'fs' ? (await tempFiles(join(url, 'runs', RUN))).length : await incompleteUploads(url);
  const gc = await runs.gc(RUN, { graceSeconds: 0 });
  trial.deleted = gc.deleted.length;
  trial.swept = gc.swept.length;
  if (JSON.stringify([...gc.deleted].sort()) !== JSON.stringify(orphans)) throw new Error(`gc deleted ${gc.deleted.join(', ') || 'nothing'}, the orphans were ${orphans.join(', ') || 'none'}`);
  if (gc.swept.length !== debris) throw new Error(`gc swept ${gc.swept.length} left-overs, the store had ${debris}`);
  const units = new Set(await store.list(`runs/${RUN}/units/`));
  const missing = [...state.referenced].filter((k) => !units.has(k));
  if (missing.length > 0 || units.size !== state.referenced.size) throw new Error(`after gc: missing ${missing.join(', ')}; ${units.size} objects for ${state.referenced.size} referenced`);

  // the next chunk continues from the head, and the chain is the one a run never killed has
  const next = await runs.chunk(RUN);
  if (next.seq !== expectSeqs || next.startStep !== (state.head?.globalStep ?? 0)) throw new Error(`the next chunk is seq ${next.seq} from step ${next.startStep}`);
  const after = await checkRun(store, RUN);
  for (const seq of after.seqs) {
    const [ours, theirs] = [await runs.chunks(RUN, { from: seq, limit: 1 }).then((c) => c.chunks[0]), setup.reference[seq]];
    const sha = (m: ChunkManifest) => JSON.stringify(Object.entries(m.units).map(([u, r]) => [u, r.sha256]).sort());
    if (sha(ours) !== sha(theirs) || JSON.stringify(ours.losses) !== JSON.stringify(theirs.losses)) {
      throw new Error(`chunk ${seq} differs from the uninterrupted run's`);
    }
  }
  const again = await runs.gc(RUN, { graceSeconds: 0 });
  if (again.deleted.length + again.swept.length > 0) throw new Error(`a second gc still removed ${[...again.deleted, ...again.swept].join(', ')}`);
}
