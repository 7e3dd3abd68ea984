/**
 * `npm run soak`: `--chunks` (default 50) consecutive chunks of one run in one `lisa serve`
 * process over a directory store, and after each: the engine's tensor count and bytes (from
 * /metrics, lisa_engine_tensors / lisa_engine_bytes), the process's RSS and open file descriptors
 * (/proc/{pid}). Goals: tensors and fds flat, RSS growth < 10% from chunk 5 to the last. Prints
 * the curve and writes bench/results/soak.json; exit 1 when a goal is missed.
 *
 * `--heap-mib N` caps the server's V8 old space (--max-old-space-size): V8 grows its heap lazily
 * while memory is free, so an uncapped RSS curve climbs and falls with collection; under a cap it
 * shows whether what is live grows (a leak exhausts the cap; lazy growth plateaus).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { qaLines, tempDir, writeData } from '../train/harness.ts';
import { killGroup } from './processes.ts';
import { alphaToken, MODEL, serveLisa } from './serve.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { values } = parseArgs({ options: { chunks: { type: 'string', default: '50' }, 'heap-mib': { type: 'string' } } });
const chunks = Number(values.chunks);

const dir = await tempDir('soak');
const data = await writeData(qaLines(64));
const dataDir = data.slice(0, data.lastIndexOf('/'));
const heap = values['heap-mib'];
const server = await serveLisa(dir, alphaToken(), dataDir, heap ? { NODE_OPTIONS: `--max-old-space-size=${heap}` } : {});
const metric = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
const rows: Array<{ chunk: number; seq: number; seconds: number; tensors: number; engineBytes: number; rssMiB: number; fds: number }> = [];
try {
  const created = await server.request('POST', '/v1/runs', { base: MODEL, data, fields: ['question', 'answer'], seqLen: 48, activeLayers: 2, period: 2, steps: 2 * chunks, batchSize: 2, seed: 3 });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.json)}`);
  const id = created.json.id as string;
  console.log('chunk  seq  seconds  tensors  engine KiB  RSS MiB  fds');
  for (let i = 1; i <= chunks; i++) {
    const t0 = performance.now();
    const res = await server.request('POST', `/v1/runs/${id}/chunks`, {});
    if (res.status !== 201) throw new Error(`chunk ${i}: ${res.status} ${JSON.stringify(res.json)}`);
    const seconds = (performance.now() - t0) / 1000;
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const { rssKiB, fds } = await server.usage();
    const row = { chunk: i, seq: res.json.seq as number, seconds, tensors: metric(metrics, 'lisa_engine_tensors'), engineBytes: metric(metrics, 'lisa_engine_bytes'), rssMiB: rssKiB / 1024, fds };
    rows.push(row);
    console.log(
      `${String(i).padStart(5)} ${String(row.seq).padStart(4)} ${seconds.toFixed(2).padStart(8)} ${String(row.tensors).padStart(8)} ${(row.engineBytes / 1024).toFixed(0).padStart(11)} ${row.rssMiB.toFixed(1).padStart(8)} ${String(fds).padStart(4)}`,
    );
  }
} finally {
  await killGroup(server.lisa);
  await rm(dir, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
}
const after5 = rows.slice(4);
const [first, last] = [after5[0], after5.at(-1)!];
const rssGrowth = (last.rssMiB - first.rssMiB) / first.rssMiB;
const maxRssGrowth = Math.max(...after5.map((r) => (r.rssMiB - first.rssMiB) / first.rssMiB));
const tensorsFlat = after5.every((r) => r.tensors === first.tensors);
const fdsFlat = after5.every((r) => r.fds <= first.fds);
const summary = { chunks, heapMiB: heap ? Number(heap) : null, tensors: first.tensors, tensorsFlat, fds: [first.fds, Math.max(...after5.map((r) => r.fds))], fdsFlat, rssMiB: [first.rssMiB, last.rssMiB], rssGrowth, maxRssGrowth };
console.log(
  `\nfrom chunk 5 to ${chunks}: tensors ${tensorsFlat ? `flat at ${first.tensors}` : 'NOT flat'}; fds ${fdsFlat ? `flat (${first.fds}, max ${summary.fds[1]})` : `grew to ${summary.fds[1]}`}; RSS ${first.rssMiB.toFixed(1)} -> ${last.rssMiB.toFixed(1)} MiB (${(100 * rssGrowth).toFixed(1)}%, max ${(100 * maxRssGrowth).toFixed(1)}%)`,
);
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/soak.json', `${JSON.stringify({ date: new Date().toISOString(), summary, rows }, null, 1)}\n`);
console.log('wrote bench/results/soak.json');
process.exitCode = tensorsFlat && fdsFlat && maxRssGrowth < 0.1 ? 0 : 1;
