/**
 * The corruption matrix: every object type lisa-fn reads back (run.json, a chunk manifest, a unit
 * object, the base's weight shard, a delta package, an idempotency record) damaged four ways (a
 * flipped byte, truncation to half, an empty object, well-formed content with the wrong types).
 * Each damage must be refused by the operation that reads the object with an integrity-kind error
 * naming it (details.key in the store, details.files / details.delta outside it), and leave the
 * store as it was: no chunk committed on bad state, no export written from bad weights.
 */
import { cp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { LisaError } from '../../core/errors.ts';
import { applyDelta } from '../../core/merge/export.ts';
import { openRuns } from '../../core/runs/open.ts';
import type { Runs } from '../../core/runs/runs.ts';
import { keyHash, requestHash } from '../../core/runs/idempotency.ts';
import { manifestKey, runSpecKey } from '../../core/store/keys.ts';
import { listSeqs, readManifest } from '../../core/store/manifest.ts';
import { openStore } from '../../core/store/open.ts';
import { tempDir, tinyRun, writeTinyRunInputs } from '../train/harness.ts';

const RUN = 'damaged';
const IDEM_KEY = 'retry-me';

export const DAMAGES = ['flip', 'truncate', 'empty', 'wrong-types'] as const;
type Damage = (typeof DAMAGES)[number];

/** The damaged bytes; `wrongTypes` rewrites the object as well-formed content of the wrong types. */
function damage(bytes: Uint8Array, how: Damage, wrongTypes: (b: Uint8Array) => Uint8Array): Uint8Array {
  switch (how) {
    case 'flip': {
      const out = Uint8Array.from(bytes);
      // a byte in the middle: inside a JSON value, or inside a tensor's data
      out[Math.floor(out.length / 2)] ^= 0x01;
      return out;
    }
    case 'truncate':
      return bytes.subarray(0, Math.floor(bytes.length / 2));
    case 'empty':
      return new Uint8Array(0);
    case 'wrong-types':
      return wrongTypes(bytes);
  }
}

/** Every number of a JSON record becomes a string, and its checksum is kept (or recomputed by nobody). */
function jsonWrongTypes(bytes: Uint8Array): Uint8Array {
  const swap = (v: unknown): unknown =>
    typeof v === 'number' ? String(v) : Array.isArray(v) ? v.map(swap) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === 'checksum' ? x : swap(x)])) : v;
  return new TextEncoder().encode(JSON.stringify(swap(JSON.parse(new TextDecoder().decode(bytes)))));
}

/** A safetensors file whose header claims other dtypes (F32 -> I32), everything else unchanged. */
function safetensorsWrongTypes(bytes: Uint8Array): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n)).replaceAll('"F32"', '"I32"');
  const out = Uint8Array.from(bytes);
  out.set(new TextEncoder().encode(header), 8);
  return out;
}

let work: string;
let pristine: string;
let baseDir: string;
let dataFile: string;
let delta: string;
let unitKey: string;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  ({ baseDir, dataFile } = await writeTinyRunInputs());
  work = await tempDir('corruption');
  pristine = join(work, 'pristine');
  const runs = await openRuns(pristine, { env: {} });
  await runs.create(tinyRun(baseDir, dataFile), { id: RUN });
  await runs.chunk(RUN);
  const head = await runs.chunk(RUN);
  unitKey = head.units[head.activeUnits[0]].key;
  const claim = await runs.claimIdempotencyKey(RUN, IDEM_KEY, requestHash({}), 60);
  if (claim.kind !== 'claimed') throw new Error('expected a fresh claim');
  await claim.complete({ status: 201, body: { seq: 1 } });
  delta = join(work, 'run.delta.safetensors');
  await runs.export(RUN, { out: delta, delta: true });
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(join(baseDir, '..'), { recursive: true, force: true });
  await rm(join(dataFile, '..'), { recursive: true, force: true });
});

/** Every file under `dir` with its size: what "the store as it was" compares. */
async function snapshot(dir: string): Promise<Record<string, number>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  return Object.fromEntries(await Promise.all(files.map(async (f) => [f.slice(dir.length), (await stat(f)).size] as const)));
}

interface Target {
  /** the file damaged, and what the error must name */
  file: (store: string) => string;
  names: (err: LisaError, store: string) => boolean;
  wrongTypes: (b: Uint8Array) => Uint8Array;
  /** the operations that read it; each must fail */
  ops: Record<string, (runs: Runs, store: string) => Promise<unknown>>;
}

const inStore = (key: string): Pick<Target, 'file' | 'names'> => ({ file: (s) => join(s, key), names: (err) => err.details?.key === key });
const chunkAndExport: Target['ops'] = {
  chunk: (runs) => runs.chunk(RUN),
  export: (runs, store) => runs.export(RUN, { out: join(store, '..', 'out') }),
};

const TARGETS: Record<string, () => Target> = {
  'run.json': () => ({ ...inStore(runSpecKey(RUN)), wrongTypes: jsonWrongTypes, ops: { status: (runs) => runs.status(RUN), ...chunkAndExport } }),
  manifest: () => ({ ...inStore(manifestKey(RUN, 1)), wrongTypes: jsonWrongTypes, ops: { status: (runs) => runs.status(RUN), ...chunkAndExport } }),
  'unit object': () => ({ ...inStore(unitKey), wrongTypes: safetensorsWrongTypes, ops: chunkAndExport }),
  'idempotency record': () => ({
    ...inStore(`runs/${RUN}/idempotency/${keyHash(IDEM_KEY)}/result.json`),
    wrongTypes: jsonWrongTypes,
    ops: { replay: (runs) => runs.claimIdempotencyKey(RUN, IDEM_KEY, requestHash({}), 60) },
  }),
  'base shard': () => ({
    file: () => join(baseDir, 'model.safetensors'),
    names: (err) => Array.isArray(err.details?.files) ? (err.details.files as string[]).includes('model.safetensors') : String(err.details?.ref) === baseDir,
    wrongTypes: safetensorsWrongTypes,
    ops: chunkAndExport,
  }),
  'delta package': () => ({
    file: () => delta,
    names: (err) => err.details?.delta === delta || err.details?.key === delta,
    wrongTypes: safetensorsWrongTypes,
    ops: { apply: (_runs, store) => applyDelta({ base: baseDir, delta, out: join(store, '..', 'applied') }) },
  }),
};

/**
 * Damage not detected today, said out loud: a delta package has no checksum of its tensor data (it
 * is streamed header first, so the header cannot hold one); a flipped data byte applies silently.
 * Its sha256 is in the export's summary, for whoever moves it to check.
 */
const KNOWN_GAPS = new Set(['delta package: flip']);

describe('corruption matrix: each damage is an integrity error naming the object, and changes nothing', () => {
  for (const [type, target] of Object.entries(TARGETS)) {
    for (const how of DAMAGES) {
      const name = `${type}: ${how}`;
      (KNOWN_GAPS.has(name) ? it.skip : it)(name, async () => {
        const t = target();
        const case_ = join(work, `${type}-${how}`.replaceAll(' ', '-'));
        const store = join(case_, 'store');
        await cp(pristine, store, { recursive: true });
        const file = t.file(store);
        const original = await readFile(file);
        await writeFile(file, damage(original, how, t.wrongTypes));
        try {
          const before = await snapshot(store);
          const runs = await openRuns(store, { env: {} });
          for (const [opName, op] of Object.entries(t.ops)) {
            const err = await op(runs, store).then(
              () => null,
              (e: unknown) => e,
            );
            expect(err, `${opName} succeeded on a damaged ${type}`).toBeInstanceOf(LisaError);
            const e = err as LisaError;
            expect({ op: opName, kind: e.kind, named: t.names(e, store) }, `${e.code}: ${e.message}`).toEqual({ op: opName, kind: 'integrity', named: true });
          }
          // nothing committed, nothing written: the store as it was, no export, no applied model
          expect(await snapshot(store)).toEqual(before);
          expect(await listSeqs(openStore(store), RUN)).toEqual([0, 1]);
          expect(await readdir(case_)).toEqual(['store']);
        } finally {
          // the base and the delta are shared by every case
          await writeFile(file, original);
          await rm(case_, { recursive: true, force: true });
        }
      });
    }
  }

  it('the undamaged store reads back whole', async () => {
    const store = openStore(pristine);
    expect((await readManifest(store, RUN, 1)).seq).toBe(1);
  });
});
