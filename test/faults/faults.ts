/**
 * `npm run faults`: the fault suite at full size, under a throwaway Ceph RGW (with-s3.sh).
 *
 *   kill-fs, kill-s3   kill -9 of a `lisa chunk` process group at a seeded stage and moment (kill.ts)
 *   drain              SIGTERM during a chunk under `lisa serve` (drain.ts)
 *   net                chunks through a fault-injecting proxy in front of RGW (network.ts)
 *   storm              32 concurrent chunk requests, 4 runs, two `lisa serve` on one RGW store (storm.ts);
 *                      `--storms` of them (default 5), each a minute of both cores
 *
 * Trial i of a suite has seed `--seed` + i (default 1), so `--seed N --trials 1 --only kill-s3`
 * replays one. Prints one line per trial and a table; writes bench/results/faults.json.
 * Exit 1 when any trial broke an invariant.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { killTrial, prepareKillTrials, type StoreKind } from './kill.ts';
import { drainTrial } from './drain.ts';
import { networkTrial, prepareNetworkTrials } from './network.ts';
import { storm } from './storm.ts';
import { clearPrefix } from './s3-inputs.ts';

// as bin/lisa.js does: the AWS SDK's notice about Node versions is noise here
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const SUITES = ['kill-fs', 'kill-s3', 'drain', 'net', 'storm'] as const;
type Suite = (typeof SUITES)[number];

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '20' },
    seed: { type: 'string', default: '1' },
    storms: { type: 'string', default: '5' },
    only: { type: 'string', default: SUITES.join(',') },
  },
});
const trials = Number(values.trials);
const first = Number(values.seed);
const only = values.only.split(',') as Suite[];
for (const s of only) if (!SUITES.includes(s)) throw new Error(`--only: unknown suite ${s} (${SUITES.join(', ')})`);
const allSeeds = Array.from({ length: trials }, (_, i) => first + i);

interface Summary {
  suite: Suite;
  trials: number;
  ok: number;
  seconds: number;
  /** what the trials hit, by outcome */
  outcomes: Record<string, number>;
  failed: Array<{ seed: number; error?: string }>;
}

const summaries: Summary[] = [];
const count = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

async function run<T extends { seed: number; ok: boolean; error?: string }>(suite: Suite, trial: (seed: number) => Promise<T>, outcome: (t: T) => string, seeds = allSeeds): Promise<void> {
  const t0 = Date.now();
  const s: Summary = { suite, trials: 0, ok: 0, seconds: 0, outcomes: {}, failed: [] };
  for (const seed of seeds) {
    const t = await trial(seed);
    s.trials++;
    if (t.ok) s.ok++;
    else s.failed.push({ seed, error: t.error });
    count(s.outcomes, outcome(t));
    console.log(`${suite} ${JSON.stringify(t)}`);
  }
  s.seconds = (Date.now() - t0) / 1000;
  summaries.push(s);
}

for (const kind of ['fs', 's3'] as StoreKind[]) {
  if (!only.includes(`kill-${kind}`)) continue;
  const setup = await prepareKillTrials(kind);
  try {
    await run(`kill-${kind}`, (seed) => killTrial(setup, seed), (t) => `${t.target}→${t.landed}`);
  } finally {
    await setup.close();
  }
}
if (only.includes('drain')) await run('drain', drainTrial, (t) => `grace ${t.graceSeconds}s: ${t.answer}, ${t.committed ? 'committed' : 'nothing'}`);
if (only.includes('net')) {
  const setup = await prepareNetworkTrials();
  try {
    await run('net', (seed) => networkTrial(setup, seed), (t) => `${t.committed}/${t.attempts} committed`);
  } finally {
    await setup.close();
  }
}

if (only.includes('storm')) {
  const root = `${process.env.LISA_TEST_S3!.replace(/\/?$/, '/')}faults-storm-${Date.now()}`;
  const stormSeeds = allSeeds.slice(0, Number(values.storms));
  await run('storm', (seed) => storm(`${root}/${seed}`, seed), (t) => `${t.linear}/4 linear, ${t.committed} committed, ${t.conflicts} × 409, ${t.replays} replays`, stormSeeds);
  await clearPrefix(root);
}

console.log('\nsuite     trials  ok    seconds  outcomes');
for (const s of summaries) {
  const outcomes = Object.entries(s.outcomes).map(([k, n]) => `${k} ×${n}`).join('; ');
  console.log(`${s.suite.padEnd(9)} ${String(s.trials).padStart(6)}  ${`${s.ok}/${s.trials}`.padEnd(5)} ${s.seconds.toFixed(0).padStart(7)}  ${outcomes}`);
  for (const f of s.failed) console.log(`  FAILED seed ${f.seed}: ${f.error}`);
}
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/faults.json', `${JSON.stringify({ date: new Date().toISOString(), seeds: { first, trials }, summaries }, null, 1)}\n`);
console.log('wrote bench/results/faults.json');
process.exitCode = summaries.every((s) => s.ok === s.trials) ? 0 : 1;
