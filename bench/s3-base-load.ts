/**
 * Loading a base from S3 and uploading a chunk's units to S3, against what the store moves raw in
 * the same run:
 *   (a) createSources().loadBase(s3://…) MiB/s vs a raw parallel GET of the same model.safetensors
 *       (same S3Store settings); also the disk cache (LISA_CACHE_DIR) filling and hitting;
 *   (b) runChunk's upload MiB/s (manifest.bytes.out / seconds.upload) vs raw PUTs of objects of the
 *       same sizes, as many in flight as runChunk uses;
 *   (c) time to the first training step: a cold process (new Sources and ResourceCache, base from
 *       S3) vs a warm one (same ResourceCache, next chunk), from runChunk's onStep.
 *
 *   bash infra/local-s3/with-s3.sh npx tsx bench/s3-base-load.ts
 *       prints a table, writes bench/results/s3-base-load.json. S3 location: $LISA_BENCH_S3, else
 *       $LISA_TEST_S3 (with-s3.sh: a throwaway Ceph RGW). LISA_BENCH_LAYERS (default 5: 137 MiB
 *       F32), LISA_BENCH_ROUNDS (default 7), LISA_BACKEND (default wasm).
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { initEngine } from '../core/engine/index.ts';
import type { ModelSpec } from '../core/models/config.ts';
import { randomWeights } from '../core/models/model.ts';
import { type LoadOptions, saveModelDir } from '../core/models/load.ts';
import { workerHasher } from '../core/tensors/hashing.ts';
import { decodeFloats } from '../core/tensors/dtypes.ts';
import { readHeader } from '../core/tensors/safetensors.ts';
import { fileSource } from '../core/tensors/source.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { openStore } from '../core/store/open.ts';
import { MiB } from '../core/store/s3-store.ts';
import { sha256Hex } from '../core/tensors/hashing.ts';
import { encodeUnitObject } from '../core/store/unit-object.ts';
import { tensorShapes, unitOf } from '../core/models/units.ts';
import { runChunk } from '../core/train/chunk.ts';
import { createRun } from '../core/train/create-run.ts';
import { ResourceCache } from '../core/train/resources.ts';
import { createSources, type Sources } from '../core/train/sources.ts';

const url = (process.env.LISA_BENCH_S3 ?? process.env.LISA_TEST_S3)?.replace(/\/?$/, '');
if (!url?.startsWith('s3://')) {
  console.log('no LISA_BENCH_S3 / LISA_TEST_S3: run under `bash infra/local-s3/with-s3.sh npx tsx bench/s3-base-load.ts`');
  process.exit(2);
}
const layers = Number(process.env.LISA_BENCH_LAYERS ?? 5);
const spec: ModelSpec = {
  arch: 'llama', vocabSize: 512, dim: 768, nLayers: layers, nHeads: 12, nKvHeads: 12, headDim: 64, hiddenDim: 2048,
  maxSeqLen: 64, normEps: 1e-5, ropeTheta: 10000, tiedEmbeddings: true, bosId: 1, eosId: 2,
};
const REPEATS = 3;
const ROUNDS = Number(process.env.LISA_BENCH_ROUNDS ?? 7);
const env = process.env;
const open = (u: string): ObjectStore => openStore(u, { env });
const mibps = (bytes: number, seconds: number) => bytes / MiB / seconds;
const best = async (n: number, f: () => Promise<number>) => {
  let t = Infinity;
  for (let i = 0; i < n; i++) t = Math.min(t, await f());
  return t;
};
const timed = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};

const backend = await initEngine({ backend: (env.LISA_BACKEND as 'wasm' | 'cpu' | undefined) ?? 'wasm' });
const work = await mkdtemp(join(tmpdir(), 'lisa-bench-s3load-'));
const dir = join(work, 'base');
await saveModelDir(dir, spec, randomWeights(spec, 1), { files: { 'tokenizer.bin': await readFile(new URL('../models/stories260K/tokenizer.bin', import.meta.url)) } });
const weightsFile = join(dir, 'model.safetensors');
const weightBytes = (await readFile(weightsFile)).length;
const prefix = `${url}/bench-base-load-${Date.now()}-${randomBytes(3).toString('hex')}`;
const root = open(prefix);
for (const name of await readdir(dir)) await root.put(`base/${name}`, new Uint8Array(await readFile(join(dir, name))));
const baseRef = `${prefix}/base`;
console.log(`base: llama dim ${spec.dim}, ${layers} layers, model.safetensors ${(weightBytes / MiB).toFixed(1)} MiB at ${baseRef}; backend ${backend}`);

// ---- (a) base load vs raw GET ---------------------------------------------------------------
// Interleaved rounds, so the machine's other load (2 cores shared with RGW and other jobs here)
// hits every variant alike; medians are the headline, bests are printed beside them.
const hashThread = workerHasher({ threads: 1, cache: null });
let loadBytesIn = 0;
const loadWith = (load?: LoadOptions) => async () => {
  const stores: ObjectStore[] = [];
  const sources = createSources(
    (u) => {
      const s = open(u);
      stores.push(s);
      return s;
    },
    { load },
  );
  await sources.loadBase(baseRef);
  loadBytesIn = stores.reduce((n, s) => n + s.stats.bytesIn, 0);
};
const variants: Record<string, () => Promise<unknown>> = {
  raw: () => open(prefix).get('base/model.safetensors'),
  load: loadWith(),
  // for the analysis: the sha256 on a worker thread (started once), and no sha256 at all
  hashThread: loadWith({ hasher: hashThread }),
  noHash: loadWith({ hasher: { stream: () => ({ update: async () => undefined, digest: async () => '' }) } }),
};
// wall seconds, and this process's CPU seconds (all its threads) in the same span
const samples: Record<string, Array<{ wall: number; cpu: number }>> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(variants)) {
    const cpu0 = process.cpuUsage();
    const wall = await timed(run);
    const cpu = process.cpuUsage(cpu0);
    samples[name].push({ wall, cpu: (cpu.user + cpu.system) / 1e6 });
  }
}
await hashThread.close();
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const stat = (name: string) => {
  const walls = samples[name].map((s) => s.wall);
  return {
    medianSeconds: median(walls),
    bestSeconds: Math.min(...walls),
    medianMiBps: mibps(weightBytes, median(walls)),
    bestMiBps: mibps(weightBytes, Math.min(...walls)),
    medianCpuSeconds: median(samples[name].map((s) => s.cpu)),
  };
};
const loadStats = Object.fromEntries(Object.keys(variants).map((k) => [k, stat(k)]));
// What the load does besides moving bytes, on this machine, from memory (one thread).
const fileBytes = new Uint8Array(await readFile(weightsFile));
const hashSeconds = await best(REPEATS, () => timed(async () => createHash('sha256').update(fileBytes).digest('hex')));
const { tensors } = await readHeader(fileSource(weightsFile));
const decodeSeconds = await best(REPEATS, () =>
  timed(async () => {
    for (const t of tensors.values()) decodeFloats(fileBytes.slice(t.begin, t.end), 'F32');
  }),
);
const cacheDir = join(work, 'cache');
const cacheFill = await timed(() => createSources(open, { cacheDir }).loadBase(baseRef));
const cacheHit = await best(REPEATS, () => timed(() => createSources(open, { cacheDir }).loadBase(baseRef)));

// ---- (b), (c) chunks on an S3 run store ------------------------------------------------------
const runs = open(`${prefix}/runs`);
// short lines: the point is the first step, not the data (GSM8K prompts overflow a 32-token window)
const data = join(work, 'qa.jsonl');
await writeFile(data, Array.from({ length: 64 }, (_, i) => `${JSON.stringify({ question: `${i} plus ${i}?`, answer: `${2 * i}` })}\n`).join(''));
const CHUNKS = 4;
const run = await createRun({
  store: runs,
  sources: createSources(open),
  cache: new ResourceCache(),
  input: { base: baseRef, data, fields: ['question', 'answer'], seqLen: 32, activeLayers: 1, period: 2, steps: 2 * CHUNKS, batchSize: 1, seed: 1 },
});
const chunk = async (sources: Sources, cache: ResourceCache) => {
  const t0 = Date.now();
  let firstStep = NaN;
  const manifest = await runChunk({ store: runs, run, sources, cache, onStep: (e) => (firstStep = e.stepInChunk === 1 ? Date.now() : firstStep) });
  return { manifest, firstStepSeconds: (firstStep - t0) / 1000 };
};
// raw PUTs of the sizes a chunk uploaded, all queued at once on runChunk's concurrency
const rawPut = async (objectSizes: number[]) =>
  best(REPEATS, async () => {
    const bodies = objectSizes.map((n) => randomFillSync(new Uint8Array(n)));
    const store = open(`${prefix}/raw`);
    const queue = new PQueue({ concurrency: 8 });
    const t = await timed(() => Promise.all(bodies.map((b, i) => queue.add(() => store.put(`put-${i}`, b)))));
    await Promise.all(bodies.map((_, i) => store.delete(`put-${i}`)));
    return t;
  });
// runChunk's upload phase starts with encoding the unit objects (weights, m, v read back from the
// engine into safetensors bodies, and their sha256s): timed here on arrays of the same shapes
const encodeSeconds = (units: string[]) =>
  best(REPEATS, async () => {
    const shapes = tensorShapes(spec);
    const objects = units.map((unit) => ({
      unit,
      adamStep: 1,
      tensors: [...shapes].filter(([n]) => unitOf(spec, n) === unit).map(([name, shape]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        return { name, shape, weight: new Float32Array(n).fill(0.5), m: new Float32Array(n).fill(0.25), v: new Float32Array(n).fill(0.125) };
      }),
    }));
    return timed(async () => {
      for (const o of objects) sha256Hex(await encodeUnitObject(o, { runId: 'bench' }));
    });
  });
// chunk 0 in a cold process (new Sources and ResourceCache: the base comes from S3), the others warm
const processSources = createSources(open);
const processCache = new ResourceCache();
const chunks = [];
for (let i = 0; i < CHUNKS; i++) {
  const { manifest: m, firstStepSeconds } = await chunk(processSources, processCache);
  const objectSizes = m.activeUnits.map((u) => m.units[u].bytes);
  const rawPutSeconds = await rawPut(objectSizes);
  const encode = await encodeSeconds(m.activeUnits);
  chunks.push({
    seq: m.seq,
    units: m.activeUnits,
    objectSizes,
    bytes: m.bytes.out,
    uploadSeconds: m.seconds.upload,
    uploadMiBps: mibps(m.bytes.out, m.seconds.upload),
    rawPutSeconds,
    rawPutMiBps: mibps(m.bytes.out, rawPutSeconds),
    ratio: rawPutSeconds / m.seconds.upload,
    encodeSeconds: encode,
    putOnlyRatio: rawPutSeconds / (m.seconds.upload - encode),
    firstStepSeconds,
    loadSeconds: m.seconds.load,
  });
}
const warmChunks = chunks.slice(1);

// ---- report ----------------------------------------------------------------------------------
const rows = {
  load: {
    bytes: weightBytes,
    bytesIn: loadBytesIn,
    rounds: ROUNDS,
    ...loadStats,
    ratio: loadStats.raw.medianSeconds / loadStats.load.medianSeconds,
    hashMiBps: mibps(weightBytes, hashSeconds),
    decodeMiBps: mibps(weightBytes, decodeSeconds),
    cacheFillSeconds: cacheFill,
    cacheHitSeconds: cacheHit,
  },
  chunks,
  upload: { medianRatio: median(chunks.map((c) => c.ratio)), medianPutOnlyRatio: median(chunks.map((c) => c.putOnlyRatio)) },
  firstStep: {
    coldSeconds: chunks[0].firstStepSeconds,
    coldLoadSeconds: chunks[0].loadSeconds,
    warmSeconds: median(warmChunks.map((c) => c.firstStepSeconds)),
    warmLoadSeconds: median(warmChunks.map((c) => c.loadSeconds)),
  },
};
const f = (x: number, d = 0) => x.toFixed(d).padStart(8);
console.log(`\n(a) base load, ${ROUNDS} interleaved rounds        median MiB/s (best)   median s   cpu s   vs raw`);
const row = (label: string, k: string, goal = '') => {
  const r = loadStats[k];
  const vs = k === 'raw' ? '' : `${(100 * (loadStats.raw.medianSeconds / r.medianSeconds)).toFixed(0)}%${goal}`;
  console.log(`${label.padEnd(43)}${f(r.medianMiBps)} ${`(${r.bestMiBps.toFixed(0)})`.padStart(7)}   ${f(r.medianSeconds, 2)}${f(r.medianCpuSeconds, 2)}   ${vs}`);
};
row('raw parallel GET of model.safetensors', 'raw');
row('createSources().loadBase(s3://…)', 'load', ' (goal >= 80%)');
row('  the same, sha256 on a worker thread', 'hashThread');
row('  the same, no sha256 (analysis only)', 'noHash');
console.log(`  sha256, one thread, from memory          ${f(rows.load.hashMiBps)}`);
console.log(`  decode F32, from memory                  ${f(rows.load.decodeMiBps)}`);
console.log(`  with LISA_CACHE_DIR: filling it          ${f(mibps(weightBytes, cacheFill))}           ${f(cacheFill, 2)}`);
console.log(`  with LISA_CACHE_DIR: hit (1 HEAD)        ${f(mibps(weightBytes, cacheHit))}           ${f(cacheHit, 2)}`);
console.log(`\n(b) chunk upload (seconds.upload: encode + PUTs)   MiB/s   seconds   raw PUTs, same sizes, 8 in flight   encode+sha256 est.`);
for (const c of chunks) {
  console.log(
    `chunk ${c.seq} (${c.units.join(', ')}) ${c.objectSizes.map((n) => (n / MiB).toFixed(1)).join('+')} MiB`.padEnd(48) +
      `${f(c.uploadMiBps)}  ${f(c.uploadSeconds, 2)}   ${f(c.rawPutMiBps)} MiB/s = ${(100 * c.ratio).toFixed(0).padStart(3)}% (goal >= 80%)   ${f(c.encodeSeconds, 2)} s -> PUTs ${(100 * c.putOnlyRatio).toFixed(0)}% of raw`,
  );
}
console.log(`median over chunks: upload ${(100 * rows.upload.medianRatio).toFixed(0)}% of raw PUT; without the encoding ${(100 * rows.upload.medianPutOnlyRatio).toFixed(0)}%`);
console.log(`\n(c) time to first step                      seconds  (of which loading)`);
console.log(`cold process (base from S3)                ${f(rows.firstStep.coldSeconds, 2)}  ${f(rows.firstStep.coldLoadSeconds, 2)}`);
console.log(`warm process (ResourceCache, next chunks) ${f(rows.firstStep.warmSeconds, 2)}  ${f(rows.firstStep.warmLoadSeconds, 2)}   (median of ${warmChunks.length})`);

await mkdir(new URL('results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('results/s3-base-load.json', import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, backend, spec, store: prefix, ...rows }, null, 2)}\n`,
);
for (const key of await root.list('')) await root.delete(key);
await rm(work, { recursive: true, force: true });
