/**
 * Fuzz targets: every parser of outside input, fed hostile input by fast-check. The property is
 * the same for all: the call returns, or throws a LisaError (a coded, typed error); anything else
 * (a TypeError, a RangeError from a huge allocation, a hang caught by the runner's timeout) is a
 * bug. Inputs are mutations of real files (the bundled stories260K model, a real manifest) as well
 * as arbitrary bytes and JSON, so the cases reach past the first check.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { LisaError } from '../../core/errors.ts';
import { prepareDataset } from '../../core/data/dataset.ts';
import { parseConfig } from '../../core/models/config.ts';
import { parseLlama2cCheckpoint } from '../../core/models/llama2c.ts';
import { readManifest, type ChunkManifest } from '../../core/store/manifest.ts';
import { manifestKey, runSpecKey } from '../../core/store/keys.ts';
import { FsStore } from '../../core/store/fs-store.ts';
import { encodeRecord } from '../../core/store/records.ts';
import { readRunSpec } from '../../core/store/run-spec.ts';
import { readHeader, readTensorF32 } from '../../core/tensors/safetensors.ts';
import { bufferSource } from '../../core/tensors/source.ts';
import { loadHfTokenizer, loadLlama2cTokenizer } from '../../core/tokenizers/index.ts';
import { REPO } from './processes.ts';
import { BACKENDS, harness, MODEL_DIR } from '../functions/harness.ts';

export interface FuzzTarget {
  name: string;
  /** one case: resolves, or rejects with a LisaError */
  property: fc.IAsyncProperty<[unknown]>;
}

/** Runs `work`; a LisaError is an answer, anything else is rethrown for fast-check to report. */
async function typedOnly(work: () => unknown): Promise<boolean> {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof LisaError)) throw err;
  }
  return true;
}

/** Byte-level mutations of `bytes`: flips, cuts, splices of random bytes, and whole random buffers. */
function mutatedBytes(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  const at = fc.nat({ max: Math.max(0, bytes.length - 1) });
  return fc.oneof(
    fc.tuple(at, fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const out = Uint8Array.from(bytes);
      out[i] ^= x;
      return out;
    }),
    at.map((n) => bytes.subarray(0, n)),
    fc.tuple(at, fc.uint8Array({ maxLength: 64 })).map(([i, junk]) => {
      const out = Uint8Array.from(bytes);
      out.set(junk.subarray(0, out.length - i), i);
      return out;
    }),
    fc.uint8Array({ maxLength: 512 }),
  );
}

/** A JSON object with one field replaced by arbitrary JSON, dropped, or a field added. */
function mutatedJson(obj: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(obj);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), fc.jsonValue()).map(([k, v]) => ({ ...obj, [k]: v })),
    fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(obj).filter(([x]) => x !== k))),
    fc.tuple(fc.string(), fc.jsonValue()).map(([k, v]) => ({ ...obj, [k]: v })),
    fc.jsonValue(),
  );
}

/** A safetensors file: an 8-byte length (possibly a lie, possibly huge) and a header of tensors with arbitrary shapes and offsets. */
const hostileSafetensors: fc.Arbitrary<Uint8Array> = fc
  .record({
    lie: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: undefined }),
    tensors: fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.record({
        dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'BF16', 'I32', 'U8', 'F64', 'BOOL'), fc.string({ maxLength: 4 })),
        shape: fc.array(fc.oneof(fc.nat({ max: 8 }), fc.constant(2 ** 53), fc.integer()), { maxLength: 4 }),
        data_offsets: fc.tuple(fc.oneof(fc.nat({ max: 64 }), fc.constant(2 ** 62)), fc.oneof(fc.nat({ max: 64 }), fc.constant(2 ** 62))),
      }),
      { maxKeys: 4 },
    ),
    data: fc.uint8Array({ maxLength: 64 }),
  })
  .map(({ lie, tensors, data }) => {
    const header = new TextEncoder().encode(JSON.stringify(tensors));
    const out = new Uint8Array(8 + header.length + data.length);
    new DataView(out.buffer).setBigUint64(0, lie ?? BigInt(header.length), true);
    out.set(header, 8);
    out.set(data, 8 + header.length);
    return out;
  });

async function readAll(bytes: Uint8Array): Promise<void> {
  const src = bufferSource(bytes, 'fuzz.safetensors');
  const header = await readHeader(src);
  for (const info of header.tensors.values()) await readTensorF32(src, info);
}

/** A llama2.c checkpoint header (7 int32s) with arbitrary values, and a short body. */
const hostileCheckpoint: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.array(fc.oneof(fc.integer({ min: -4, max: 64 }), fc.integer()), { minLength: 7, maxLength: 7 }), fc.uint8Array({ maxLength: 256 }))
  .map(([ints, body]) => {
    const out = new Uint8Array(28 + body.length);
    const view = new DataView(out.buffer);
    ints.forEach((v, i) => view.setInt32(4 * i, v, true));
    out.set(body, 28);
    return out;
  });

/** The targets, over files read once. `scratch` is a directory the store targets may write to. */
export async function fuzzTargets(scratch: string): Promise<FuzzTarget[]> {
  const model = (name: string) => readFile(join(REPO, 'models/stories260K', name));
  const safetensors = new Uint8Array(await model('model.safetensors')).subarray(0, 64 * 1024);
  const config = JSON.parse((await model('config.json')).toString()) as Record<string, unknown>;
  const tokenizerJson = JSON.parse((await model('tokenizer.json')).toString()) as Record<string, unknown>;
  const tok512 = new Uint8Array(await model('tokenizer.bin'));
  const tokenizer = loadLlama2cTokenizer(tok512);
  const store = new FsStore(scratch);
  const manifest: ChunkManifest = {
    version: 2,
    runId: 'fuzz',
    seq: 0,
    createdAt: '2026-01-01T00:00:00.000Z',
    method: 'lisa',
    period: 0,
    activeUnits: ['layer0'],
    units: { layer0: { key: 'runs/fuzz/units/layer0/00000000-a.safetensors', sha256: 'a'.repeat(64), bytes: 10, seq: 0, step: 2, adamStep: 2 } },
    cursor: { epoch: 0, index: 4 },
    startStep: 0,
    globalStep: 2,
    losses: [5, 4],
    learningRates: [0.001, 0.001],
    tokens: 128,
    heldOut: null,
    stoppedBy: 'period',
    seconds: { wall: 1, load: 0.1, train: 0.8, upload: 0.1, accelerator: 0 },
    bytes: { in: 1, out: 1 },
    costUsd: 0,
    totals: { steps: 2, tokens: 128, seconds: 1, costUsd: 0, bytesIn: 1, bytesOut: 1 },
  };
  const manifestBytes = encodeRecord(manifest, 1);
  const record = fc.oneof(
    mutatedBytes(manifestBytes),
    mutatedJson(manifest as unknown as Record<string, unknown>).map((m) => encodeRecord(m !== null && typeof m === 'object' ? m : { m })),
  );
  const jsonlLine = fc.oneof(
    fc.record({ question: fc.oneof(fc.string(), fc.jsonValue()), answer: fc.oneof(fc.string(), fc.jsonValue()) }).map((o) => JSON.stringify(o)),
    fc.string(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
  );

  const targets: Array<[string, fc.Arbitrary<unknown>, (x: never) => unknown]> = [
    ['safetensors header', fc.oneof(hostileSafetensors, mutatedBytes(safetensors)), (b: Uint8Array) => readAll(b)],
    ['config.json', mutatedJson(config), (c: unknown) => parseConfig(c, 'config.json')],
    ['tokenizer.json', mutatedJson(tokenizerJson), (t: unknown) => loadHfTokenizer(t, {}, { file: 'tokenizer.json' }).encode('Once upon a time')],
    ['tok512.bin', mutatedBytes(tok512), (b: Uint8Array) => loadLlama2cTokenizer(b, { vocabSize: 512 }).encode('Once upon a time')],
    ['llama2.c checkpoint', hostileCheckpoint, (b: Uint8Array) => parseLlama2cCheckpoint(b, 'fuzz.bin')],
    [
      'JSONL data',
      fc.array(jsonlLine, { maxLength: 8 }).map((lines) => lines.join('\n')),
      (text: string) => prepareDataset(text, { source: 'fuzz.jsonl', format: 'jsonl', fields: ['question', 'answer'], maxSeqLen: 64, seed: 1, tokenizer }),
    ],
    [
      'manifest',
      record,
      async (b: Uint8Array) => {
        await store.put(manifestKey('fuzz', 0), b);
        return readManifest(store, 'fuzz', 0);
      },
    ],
    [
      'run.json',
      fc.oneof(mutatedBytes(manifestBytes), fc.jsonValue().map((v) => encodeRecord({ id: 'fuzz', version: 2, config: v }))),
      async (b: Uint8Array) => {
        await store.put(runSpecKey('fuzz'), b);
        return readRunSpec(store, 'fuzz');
      },
    ],
  ];
  return targets.map(([name, arb, run]) => ({ name, property: fc.asyncProperty(arb, (x) => typedOnly(() => run(x as never))) }));
}

/** A scratch directory for the store targets. */
export async function scratchDir(): Promise<{ dir: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lisa-fuzz-'));
  return { dir, close: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Every HTTP body and query, in process (app.request: the same hono app the server runs): an
 * answer below 500 with a coded JSON error, or a success. Run ids are random, so no body trains.
 */
export async function httpTarget(): Promise<{ target: FuzzTarget; close(): Promise<void> }> {
  const h = await harness(BACKENDS[0]);
  const server = await h.start();
  const auth = { authorization: `Bearer ${h.tokens.alpha}`, 'content-type': 'application/json' };
  const body = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string(),
    fc
      .record(
        {
          base: fc.oneof(fc.constant(MODEL_DIR), fc.string()),
          data: fc.oneof(fc.constant(h.data), fc.string()),
          period: fc.jsonValue(),
          steps: fc.jsonValue(),
          seqLen: fc.jsonValue(),
          deadlineSeconds: fc.jsonValue(),
          out: fc.string(),
          runs: fc.jsonValue(),
          at: fc.jsonValue(),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  );
  const query = fc.dictionary(fc.constantFrom('from', 'limit', 'at', 'x'), fc.oneof(fc.string(), fc.integer().map(String)), { maxKeys: 3 });
  const id = fc.oneof(fc.constant('no-such-run'), fc.string({ minLength: 1, maxLength: 80 }).map(encodeURIComponent));
  const route = fc.oneof(
    fc.tuple(fc.constant('POST'), fc.constant('/v1/runs')),
    fc.tuple(fc.constant('POST'), id.map((i) => `/v1/runs/${i}/chunks`)),
    fc.tuple(fc.constant('POST'), id.map((i) => `/v1/runs/${i}/exports`)),
    fc.tuple(fc.constant('POST'), fc.constant('/v1/compositions')),
    fc.tuple(fc.constant('GET'), id.map((i) => `/v1/runs/${i}`)),
    fc.tuple(fc.constant('GET'), id.map((i) => `/v1/runs/${i}/chunks`)),
  );
  const property = fc.asyncProperty(fc.tuple(route, body, query), async ([[method, path], text, q]) => {
    const search = new URLSearchParams(q).toString();
    const res = await server.lisa.app.request(`${path}${search ? `?${search}` : ''}`, { method, headers: auth, body: method === 'POST' ? text : undefined });
    const answer = await res.text();
    if (res.status >= 500) throw new Error(`${method} ${path}?${search} ${text}: ${res.status} ${answer}`);
    if (res.status >= 400 && typeof (JSON.parse(answer) as { error?: { code?: unknown } }).error?.code !== 'string') throw new Error(`${res.status} without a code: ${answer}`);
    return true;
  });
  return { target: { name: 'HTTP bodies and queries', property: property as unknown as fc.IAsyncProperty<[unknown]> }, close: () => h.close() };
}
