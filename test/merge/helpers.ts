import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec } from '../../core/models/config.ts';
import { randomWeights } from '../../core/models/model.ts';
import { saveModelDir } from '../../core/models/load.ts';
import { tensorShapes, unitOf } from '../../core/models/units.ts';
import { FsStore } from '../../core/store/fs-store.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { commitManifest, type ChunkManifest, type UnitRef } from '../../core/store/manifest.ts';
import { sha256Hex } from '../../core/tensors/hashing.ts';
import { parseRunConfig, putRunSpec, type RunSpec } from '../../core/store/run-spec.ts';
import { encodeUnitObject } from '../../core/store/unit-object.ts';
import { unitKey } from '../../core/store/keys.ts';
import { mulberry32 } from '../../core/lisa/rng.ts';
import { adapterShapes, adapterUnit, LORA_TARGETS, type LoraConfig } from '../../core/models/lora.ts';

/** Untied llama, so 'head' holds lm_head.weight as well as the final norm. */
export const TINY: ModelSpec = {
  arch: 'llama',
  vocabSize: 32,
  dim: 16,
  nLayers: 3,
  nHeads: 2,
  nKvHeads: 1,
  headDim: 8,
  hiddenDim: 24,
  maxSeqLen: 16,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: false,
  bosId: 1,
  eosId: 2,
};

export async function tempDir(prefix = 'lisa-merge-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export const TOKENIZER_BYTES = new TextEncoder().encode('{"not":"a real tokenizer, copied verbatim"}\n');

/** A base directory with random weights, a tokenizer file and generation_config.json; returns its sha256. */
export async function makeBase(dir: string, spec: ModelSpec = TINY, seed = 1): Promise<{ sha256: string; weights: Map<string, Float32Array> }> {
  const weights = randomWeights(spec, seed);
  const { sha256 } = await saveModelDir(dir, spec, weights, { files: { 'tokenizer.json': TOKENIZER_BYTES } });
  return { sha256, weights };
}

export interface FakeChunk {
  units: string[];
}

/**
 * A run written straight into the store with the lead's modules (run.json, unit objects,
 * manifests): chunk k moves every tensor of its units by small seeded noise. Returns the run's
 * weights after each seq, computed independently of the store.
 */
export async function makeRun(
  store: ObjectStore,
  runId: string,
  baseDir: string,
  base: { sha256: string; weights: Map<string, Float32Array> },
  chunks: FakeChunk[],
  spec: ModelSpec = TINY,
  seed = 7,
): Promise<Map<string, Float32Array>[]> {
  const run: RunSpec = {
    version: 1,
    id: runId,
    createdAt: '2025-01-01T00:00:00.000Z',
    config: parseRunConfig({ base: baseDir, data: 'unused.jsonl' }),
    base: { sha256: base.sha256, arch: spec.arch, nLayers: spec.nLayers },
    data: { sha256: '0'.repeat(64), examples: 0, heldOut: 0 },
  };
  await putRunSpec(store, run);
  const rng = mulberry32(seed);
  let weights = new Map(base.weights);
  const history: Map<string, Float32Array>[] = [];
  const units: Record<string, UnitRef> = {};
  for (const [seq, chunk] of chunks.entries()) {
    weights = new Map(weights);
    for (const unit of chunk.units) {
      const tensors = [...weights.keys()].filter((n) => unitOf(spec, n) === unit).map((name) => {
        const w = Float32Array.from(weights.get(name)!, (x) => x + (rng.next() - 0.5) * 0.01);
        weights.set(name, w);
        const shape = tensorShapes(spec).get(name)!;
        return { name, shape, weight: w, m: w.map((x) => x * 0.1), v: w.map((x) => x * x) };
      });
      const body = await encodeUnitObject({ unit, adamStep: seq + 1, tensors }, { runId, seq: String(seq) });
      const key = unitKey(runId, unit, seq, 'test');
      await store.put(key, body);
      units[unit] = { key, sha256: sha256Hex(body), bytes: body.length, seq, step: (seq + 1) * 2, adamStep: seq + 1 };
    }
    await commitManifest(store, manifest(runId, seq, chunk.units, { ...units }));
    history.push(weights);
  }
  return history;
}

/**
 * A LoRA run written straight into the store: one chunk whose unit objects hold seeded adapters
 * (A and B both non-zero) of every block. Returns the run's adapters by name.
 */
export async function makeLoraRun(
  store: ObjectStore,
  runId: string,
  baseDir: string,
  base: { sha256: string },
  spec: ModelSpec,
  lora: Pick<LoraConfig, 'rank' | 'alpha'> & { targets?: string[] },
  seed = 9,
): Promise<Map<string, Float32Array>> {
  const targets = lora.targets ?? [...LORA_TARGETS[spec.arch]];
  const config = parseRunConfig({ base: baseDir, data: 'unused.jsonl', method: 'lora', loraRank: lora.rank, loraAlpha: lora.alpha, loraTargets: targets });
  await putRunSpec(store, { version: 1, id: runId, createdAt: '2025-01-01T00:00:00.000Z', config, base: { sha256: base.sha256, arch: spec.arch, nLayers: spec.nLayers }, data: { sha256: '0'.repeat(64), examples: 0, heldOut: 0 } });
  const rng = mulberry32(seed);
  const adapters = new Map<string, Float32Array>();
  const byUnit = new Map<string, Array<{ name: string; shape: number[]; weight: Float32Array; m: Float32Array; v: Float32Array }>>();
  for (const [name, shape] of adapterShapes(spec, { ...lora, targets, dropout: 0, seed: 0 })) {
    const weight = Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.next() - 0.5) * 0.5);
    adapters.set(name, weight);
    const unit = adapterUnit(spec, name);
    byUnit.set(unit, [...(byUnit.get(unit) ?? []), { name, shape, weight, m: weight.map((x) => x * 0.1), v: weight.map((x) => x * x) }]);
  }
  const units: Record<string, UnitRef> = {};
  for (const [unit, tensors] of byUnit) {
    const body = await encodeUnitObject({ unit, adamStep: 1, tensors }, { runId, seq: '0' });
    const key = unitKey(runId, unit, 0, 'test');
    await store.put(key, body);
    units[unit] = { key, sha256: sha256Hex(body), bytes: body.length, seq: 0, step: 2, adamStep: 1 };
  }
  await commitManifest(store, { ...manifest(runId, 0, [...byUnit.keys()], units), method: 'lora' });
  return adapters;
}

function manifest(runId: string, seq: number, active: string[], units: Record<string, UnitRef>): ChunkManifest {
  const zeroSeconds = { wall: 0, load: 0, train: 0, upload: 0, accelerator: 0 };
  return {
    version: 1,
    runId,
    seq,
    createdAt: '2025-01-01T00:00:00.000Z',
    method: 'lisa',
    period: seq,
    activeUnits: active,
    units,
    cursor: { epoch: 0, index: 0 },
    startStep: seq * 2,
    globalStep: (seq + 1) * 2,
    losses: [1, 1],
    learningRates: [0, 0],
    tokens: 0,
    heldOut: null,
    stoppedBy: 'period',
    seconds: zeroSeconds,
    bytes: { in: 0, out: 0 },
    costUsd: 0,
    totals: { steps: (seq + 1) * 2, tokens: 0, seconds: 0, costUsd: 0, bytesIn: 0, bytesOut: 0 },
  };
}

export const fsStore = (dir: string): FsStore => new FsStore(dir);
