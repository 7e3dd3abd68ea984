/**
 * `npm run fuzz`: each target (fuzz-targets.ts) for `--runs` cases (default 10,000) from seed
 * `--seed` (default 1), each case bounded by a 5 s timeout (a hang fails). Prints cases/s per
 * target and writes bench/results/fuzz.json; exit 1 on any counterexample (fast-check prints it
 * with the seed and path to replay).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { fuzzTargets, httpTarget, scratchDir } from './fuzz-targets.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, only: { type: 'string' } } });
const numRuns = Number(values.runs);
const seed = Number(values.seed);
const scratch = await scratchDir();
const http = await httpTarget();
const rows: Array<{ target: string; cases: number; seconds: number; perSecond: number; failure: string | null }> = [];
try {
  for (const t of [...(await fuzzTargets(scratch.dir)), http.target]) {
    if (values.only && !t.name.includes(values.only)) continue;
    const t0 = performance.now();
    const out = await fc.check(t.property, { numRuns, seed, timeout: 5000 });
    const seconds = (performance.now() - t0) / 1000;
    const failure = out.failed ? fc.defaultReportMessage(out) ?? 'failed' : null;
    rows.push({ target: t.name, cases: out.numRuns, seconds, perSecond: out.numRuns / seconds, failure });
    console.log(`${t.name.padEnd(24)} ${String(out.numRuns).padStart(6)} cases ${seconds.toFixed(1).padStart(7)} s ${(out.numRuns / seconds).toFixed(0).padStart(7)} cases/s  ${failure ? 'FAILED' : 'ok'}`);
    if (failure) console.log(failure);
  }
} finally {
  await http.close();
  await scratch.close();
}
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/fuzz.json', `${JSON.stringify({ date: new Date().toISOString(), seed, numRuns, rows }, null, 1)}\n`);
console.log('wrote bench/results/fuzz.json');
process.exitCode = rows.every((r) => r.failure === null) ? 0 : 1;
