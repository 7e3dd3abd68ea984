/**
 * Export throughput and memory on a synthetic 75M-parameter llama (300 MB of F32), with one run
 * that trained embed, two middle blocks and head (written straight into a directory store).
 *
 *   npx tsx bench/export.ts [--reps 3]
 *   bash infra/local-s3/with-s3.sh npx tsx bench/export.ts      adds S3 destination rows
 *
 * Reports, per export kind: MB/s of the export next to a raw write of the same number of bytes
 * to the same destination (fileSink with fsync at close, like the export; S3: putStream) and a
 * plain copy of the base file (read + write, no checks), and the peak rss and arrayBuffers
 * sampled every 10 ms during the exports, against the model's size. Directory exports run twice
 * per rep: "uncached" hashes every byte it reads, as the first export of a base in a process
 * does (the CLI); "cached" finds the base's and the unit objects' sha256s in the process's
 * FileDigestCache, as a long-lived process (the HTTP function) exporting the same base again
 * does. One unmeasured export first warms the JIT. With LISA_TEST_S3 set (an s3:// prefix and the
 * AWS_* endpoint env), rows "s3" (streamed multipart upload) show peak memory of S3 exports. Goals: export >= 70% of raw write; peak rss <= 1.2 x model
 * size. Prints a table and writes bench/results/export.json. The synthetic base is built once and
 * cached in the temp directory; it and every measurement run in child processes, so one's memory
 * never counts for another.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportRun, type ExportDtype } from '../core/merge/index.ts';
import { fileDigests, sha256Hex } from '../core/tensors/hashing.ts';
import type { ModelSpec } from '../core/models/config.ts';
import { randomWeights } from '../core/models/model.ts';
import { saveModelDir } from '../core/models/load.ts';
import { tensorShapes, unitOf } from '../core/models/units.ts';
import { FsStore } from '../core/store/fs-store.ts';
import { commitManifest, type ChunkManifest, type UnitRef } from '../core/store/manifest.ts';
import { parseRunConfig, putRunSpec } from '../core/store/run-spec.ts';
import { encodeUnitObject } from '../core/store/unit-object.ts';
import { unitKey } from '../core/store/keys.ts';
import { fileSink, fileSource } from '../core/tensors/source.ts';

// Proportions of a small modern LM (GQA, 16 blocks): a LISA run with γ=2 that also trains embed
// and head touches about a third of it, as on such models (on 7B models it is nearer a tenth).
const SPEC: ModelSpec = {
  arch: 'llama',
  vocabSize: 16000,
  dim: 576,
  nLayers: 16,
  nHeads: 9,
  nKvHeads: 3,
  headDim: 64,
  hiddenDim: 1536,
  maxSeqLen: 2048,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: false,
  bosId: 1,
  eosId: 2,
};
const TOUCHED = ['embed', 'layers.3', 'layers.11', 'head'];
const RUN = 'bench';

const params = [...tensorShapes(SPEC).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
const cacheDir = join(tmpdir(), `lisa-bench-export-${params}`);

/** Child process: the base and the run, built once. */
async function setup(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const weights = randomWeights(SPEC, 1);
  const { sha256 } = await saveModelDir(join(dir, 'base'), SPEC, weights);
  const store = new FsStore(join(dir, 'store'));
  await putRunSpec(store, {
    version: 1,
    id: RUN,
    createdAt: new Date(0).toISOString(),
    config: parseRunConfig({ base: join(dir, 'base'), data: 'unused.jsonl' }),
    base: { sha256, arch: SPEC.arch, nLayers: SPEC.nLayers },
    data: { sha256: '0'.repeat(64), examples: 0, heldOut: 0 },
  });
  const units: Record<string, UnitRef> = {};
  for (const unit of TOUCHED) {
    const tensors = [...tensorShapes(SPEC)].filter(([n]) => unitOf(SPEC, n) === unit).map(([name, shape]) => {
      const w = weights.get(name)!.map((x, i) => x + ((i % 7) - 3) * 1e-4);
      return { name, shape, weight: w, m: new Float32Array(w.length), v: new Float32Array(w.length) };
    });
    const body = await encodeUnitObject({ unit, adamStep: 1, tensors }, { runId: RUN, seq: '0' });
    const key = unitKey(RUN, unit, 0, 'bench');
    await store.put(key, body);
    units[unit] = { key, sha256: sha256Hex(body), bytes: body.length, seq: 0, step: 1, adamStep: 1 };
  }
  const zero = { wall: 0, load: 0, train: 0, upload: 0, accelerator: 0 };
  const manifest: ChunkManifest = {
    version: 1, runId: RUN, seq: 0, createdAt: new Date(0).toISOString(), method: 'lisa', period: 0, activeUnits: TOUCHED, units,
    cursor: { epoch: 0, index: 0 }, startStep: 0, globalStep: 1, losses: [0], learningRates: [0], tokens: 0, heldOut: null,
    stoppedBy: 'period', seconds: zero, bytes: { in: 0, out: 0 }, costUsd: 0,
    totals: { steps: 1, tokens: 0, seconds: 0, costUsd: 0, bytesIn: 0, bytesOut: 0 },
  };
  await commitManifest(store, manifest);
  await writeFile(join(dir, 'ready'), '');
}

interface Peak {
  rss: number;
  arrayBuffers: number;
}

/** Samples memory every 10 ms while `fn` runs. */
async function sampled<T>(fn: () => Promise<T>): Promise<{ value: T; peak: Peak }> {
  const peak: Peak = { rss: 0, arrayBuffers: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
  };
  sample();
  const timer = setInterval(sample, 10);
  try {
    const value = await fn();
    sample();
    return { value, peak };
  } finally {
    clearInterval(timer);
  }
}

const RAW_CHUNK = new Uint8Array(16 << 20).fill(7);

async function rawWrite(sink: { write(c: Uint8Array): Promise<void>; close(): Promise<void> }, bytes: number): Promise<number> {
  const t0 = performance.now();
  for (let left = bytes; left > 0; left -= RAW_CHUNK.length) await sink.write(left >= RAW_CHUNK.length ? RAW_CHUNK : RAW_CHUNK.subarray(0, left));
  await sink.close();
  return (performance.now() - t0) / 1000;
}

/** A plain copy of the base file to the same destination: read 16 MB, write it, fsync at close. */
async function rawCopy(from: string, to: string): Promise<{ seconds: number; bytes: number }> {
  const src = fileSource(from);
  const size = await src.size();
  const t0 = performance.now();
  const sink = fileSink(to);
  for (let at = 0; at < size; at += 16 << 20) await sink.write(await src.read(at, Math.min(16 << 20, size - at)));
  await sink.close();
  return { seconds: (performance.now() - t0) / 1000, bytes: size };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (b: number) => b / 1e6;

type Target = 'dir' | 's3';

interface Measured {
  dtype: ExportDtype;
  target: Target;
  bytes: number;
  /** every byte read hashed (digest cache cleared); directory only */
  uncachedSeconds: number[];
  /** base and unit-object digests from the process's cache */
  exportSeconds: number[];
  rawSeconds: number[];
  copyMBps: number[];
  rssBefore: number;
  peak: Peak;
}


/** Child process: a warm-up export, then `reps` of (uncached export, cached export, raw write, copy). */
async function measure(dtype: ExportDtype, target: Target, reps: number): Promise<Measured> {
  const store = new FsStore(join(cacheDir, 'store'));
  const outRoot = join(cacheDir, 'out');
  await rm(outRoot, { recursive: true, force: true });
  await mkdir(outRoot);
  const s3Root = target === 'dir' ? '' : `${process.env.LISA_TEST_S3!.replace(/\/+$/, '')}/bench-export-${process.pid}`;
  // Imported for S3 rows only: the S3 client's modules would add tens of MB to the directory rows' rss.
  const { openStore } = target === 'dir' ? { openStore: null } : await import('../core/store/open.ts');
  const s3 = (u: string) => openStore!(u, { env: process.env });
  let n = 0;
  const exportOnce = async () => {
    const name = `export-${n++}`;
    const out = target === 'dir' ? join(outRoot, name) : `${s3Root}/${name}`;
    const r = await sampled(() => exportRun({ store, runId: RUN, out, dtype, openStore: s3 }));
    m.bytes = r.value.bytes;
    m.peak = { rss: Math.max(m.peak.rss, r.peak.rss), arrayBuffers: Math.max(m.peak.arrayBuffers, r.peak.arrayBuffers) };
    if (target === 'dir') {
      await rm(out, { recursive: true, force: true });
    } else {
      const s = s3(out);
      for (const key of await s.list('')) await s.delete(key);
    }
    return r.value.seconds;
  };
  const m: Measured = { dtype, target, bytes: 0, uncachedSeconds: [], exportSeconds: [], rawSeconds: [], copyMBps: [], rssBefore: process.memoryUsage().rss, peak: { rss: 0, arrayBuffers: 0 } };
  await exportOnce();
  for (let i = 0; i < reps; i++) {
    if (target === 'dir') {
      fileDigests.clear();
      m.uncachedSeconds.push(await exportOnce());
    }
    m.exportSeconds.push(await exportOnce());
    if (target === 'dir') {
      const raw = join(outRoot, `raw-${i}`);
      m.rawSeconds.push(await rawWrite(fileSink(raw), m.bytes));
      await rm(raw, { force: true });
      const copy = await rawCopy(join(cacheDir, 'base', 'model.safetensors'), raw);
      m.copyMBps.push(mb(copy.bytes) / copy.seconds);
      await rm(raw, { force: true });
    } else {
      const root = s3(s3Root);
      m.rawSeconds.push(await rawWrite(root.putStream!(`raw-${i}`), m.bytes));
      await root.delete(`raw-${i}`);
    }
  }
  await rm(outRoot, { recursive: true, force: true });
  return m;
}

function child(args: string[]): string {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child ${args.join(' ')} failed with status ${r.status}`);
  return r.stdout;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--setup') return setup(cacheDir);
  if (args[0] === '--measure') {
    process.stdout.write(JSON.stringify(await measure(args[1] as ExportDtype, args[2] as Target, Number(args[3]))));
    return;
  }
  const reps = Number(args[args.indexOf('--reps') + 1]) || 3;

  if (!existsSync(join(cacheDir, 'ready'))) {
    await rm(cacheDir, { recursive: true, force: true });
    await mkdir(cacheDir, { recursive: true });
    process.stderr.write(`building the ${(params / 1e6).toFixed(1)}M-parameter base and run in ${cacheDir} ...\n`);
    child(['--setup']);
  }
  const touchedParams = [...tensorShapes(SPEC)].filter(([n]) => TOUCHED.includes(unitOf(SPEC, n))).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
  const configs: [ExportDtype, Target][] = [['base', 'dir'], ['bf16', 'dir']];
  if (process.env.LISA_TEST_S3) configs.push(['base', 's3'], ['bf16', 's3']);
  const rows = configs.map(([dtype, target]) => {
    const m = JSON.parse(child(['--measure', dtype, target, String(reps)])) as Measured;
    const exportMBps = mb(m.bytes) / median(m.exportSeconds);
    const rawMBps = mb(m.bytes) / median(m.rawSeconds);
    const uncachedMBps = m.uncachedSeconds.length ? mb(m.bytes) / median(m.uncachedSeconds) : null;
    return {
      dtype,
      target,
      outputBytes: m.bytes,
      uncachedExportSeconds: m.uncachedSeconds,
      exportSeconds: m.exportSeconds,
      rawWriteSeconds: m.rawSeconds,
      uncachedExportMBps: uncachedMBps,
      exportMBps,
      rawWriteMBps: rawMBps,
      baseCopyMBps: m.copyMBps.length ? median(m.copyMBps) : null,
      uncachedThroughputRatio: uncachedMBps === null ? null : uncachedMBps / rawMBps,
      throughputRatio: exportMBps / rawMBps,
      rssBeforeBytes: m.rssBefore,
      peakRssBytes: m.peak.rss,
      peakArrayBuffersBytes: m.peak.arrayBuffers,
      peakRssOverModel: m.peak.rss / (params * 4),
      peakRssGrowthOverModel: (m.peak.rss - m.rssBefore) / (params * 4),
    };
  });

  const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(0)}%`);
  const num = (x: number | null) => (x === null ? '-' : x.toFixed(0));
  const header = ['dtype', 'target', 'output MB', 'raw write MB/s', 'uncached MB/s', 'ratio', 'cached MB/s', 'ratio', 'base copy MB/s', 'rss before MB', 'peak rss MB', 'peak arrayBuffers MB', 'peak rss / model', 'growth / model'];
  const table = rows.map((r) => [
    r.dtype,
    r.target,
    mb(r.outputBytes).toFixed(0),
    r.rawWriteMBps.toFixed(0),
    num(r.uncachedExportMBps),
    pct(r.uncachedThroughputRatio),
    r.exportMBps.toFixed(0),
    pct(r.throughputRatio),
    num(r.baseCopyMBps),
    mb(r.rssBeforeBytes).toFixed(0),
    mb(r.peakRssBytes).toFixed(0),
    mb(r.peakArrayBuffersBytes).toFixed(0),
    `${r.peakRssOverModel.toFixed(2)}x`,
    `${r.peakRssGrowthOverModel.toFixed(2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  process.stdout.write(
    `export of a ${(params / 1e6).toFixed(1)}M-parameter llama (${mb(params * 4).toFixed(0)} MB F32); the run trained ${TOUCHED.join(', ')} ` +
      `(${((100 * touchedParams) / params).toFixed(0)}% of the parameters); median of ${reps}; ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}\n`,
  );
  process.stdout.write(`${[line(header), ...table.map(line)].join('\n')}\n`);
  process.stdout.write('goals: export >= 70% of raw write; peak rss <= 1.2x the model\n');

  const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  await mkdir(resultsDir, { recursive: true });
  const result = { bench: 'export', date: new Date().toISOString(), node: process.version, cores: cpus().length, load: loadavg(), spec: SPEC, params, touched: TOUCHED, touchedParams, reps, rows };
  await writeFile(join(resultsDir, 'export.json'), `${JSON.stringify(result, null, 2)}\n`);
}

await main();
