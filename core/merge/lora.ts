/**
 * What a LoRA run's units mean outside training: merged into the base, a block's weights are
 * W + (alpha/r)·B·A (core/models/lora.ts foldAdapter); exported as an adapter, they are the files
 * Hugging Face PEFT's `PeftModel.from_pretrained` reads (peft/utils/save_and_load.py and
 * peft/config.py, read for this):
 *   adapter_config.json        LoraConfig fields: peft_type "LORA", task_type "CAUSAL_LM", r,
 *                              lora_alpha, lora_dropout, target_modules, fan_in_fan_out (true for
 *                              GPT-2's Conv1D), bias "none", ...
 *   adapter_model.safetensors  `base_model.model.{module}.lora_A.weight` [r, in] and
 *                              `.lora_B.weight` [out, r] (the state dict without the adapter
 *                              name), metadata format "pt".
 */
import { LisaError } from '../errors.ts';
import type { ModelSpec } from '../models/config.ts';
import { foldAdapter, initAdapters, loraA, loraB, loraModules, type LoraConfig } from '../models/lora.ts';
import type { ChunkManifest } from '../store/manifest.ts';
import type { ObjectStore } from '../store/object-store.ts';
import type { RunSpec } from '../store/run-spec.ts';
import { readTensorF32, writeSafetensors, type TensorEntry } from '../tensors/safetensors.ts';
import type { Dtype } from '../tensors/dtypes.ts';
import type { BaseLayout } from './base-files.ts';
import type { Destination } from './destination.ts';
import { sha256Hex, type Hasher } from '../tensors/hashing.ts';
import { readUnitWeights } from './unit-weights.ts';
import { OverrideMismatchError, type ExportSummary } from './writer.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PeftModelForCausalLM's prefix: PeftModel.base_model (LoraModel) .model (the HF model). */
export const PEFT_PREFIX = 'base_model.model.';

/** `lisa export --adapter` on a run that has no adapters. */
export class NotALoraRunError extends LisaError {
  constructor(runId: string, method: string) {
    super('EXPORT_RUN_NOT_LORA', `run '${runId}' was trained with method ${method}; adapter exports need a method lora run (export its merged model or a delta instead)`, {
      runId,
      method,
    });
  }
}

/** A LoRA unit's base tensors with its adapters folded in; every other tensor of the unit as the base has it. */
export async function foldUnit(base: BaseLayout, unit: string, adapters: Map<string, Float32Array>, lora: LoraConfig): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of base.tensors) if (t.unit === unit) out.set(name, await readTensorF32(t.source, t.info));
  for (const m of loraModules(base.spec, lora.targets).filter((x) => x.unit === unit)) {
    const [a, b] = [adapters.get(loraA(m.module)), adapters.get(loraB(m.module))];
    if (a?.length !== lora.rank * m.inFeatures || b?.length !== m.outFeatures * lora.rank) {
      throw new OverrideMismatchError(unit, `adapters of ${m.module} are missing or not of rank ${lora.rank}`);
    }
    const name = `${m.module}.weight`;
    out.set(name, foldAdapter(out.get(name)!, a, b, m, lora));
  }
  return out;
}

/** adapter_config.json for PEFT's LoraConfig. */
export function adapterConfig(spec: ModelSpec, lora: LoraConfig, baseRef: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseRef,
    revision: null,
    inference_mode: true,
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [...lora.targets],
    fan_in_fan_out: spec.arch === 'gpt2',
    bias: 'none',
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

export interface WriteAdapterOptions {
  store: ObjectStore;
  run: RunSpec;
  manifest: ChunkManifest | null;
  spec: ModelSpec;
  lora: LoraConfig;
  dest: Destination;
  dtype: Dtype;
  /** a check running alongside (the base's sha256): the adapter is committed only if it resolves */
  verify: Promise<void>;
  hasher: Hasher;
  /** provenance written beside the adapter as lisa-export.json */
  provenance: Record<string, unknown>;
  now?: () => number;
}

/**
 * Writes the run's adapters at `manifest` (fresh ones, from the run's seed, for blocks no chunk
 * has trained yet) in PEFT's layout and commits the destination once every unit object matched
 * its sha256 and `verify` resolved.
 */
export async function writeAdapter(opts: WriteAdapterOptions): Promise<ExportSummary> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const { spec, lora, dest } = opts;
  const files: string[] = [];
  const sha256s: Record<string, string> = {};
  let bytes = 0;
  const record = (name: string, size: number, sha: string) => {
    files.push(name);
    sha256s[name] = sha;
    bytes += size;
  };
  const json = (x: unknown) => new TextEncoder().encode(`${JSON.stringify(x, null, 2)}\n`);
  try {
    const adapters = initAdapters(spec, lora);
    const checks: Promise<void>[] = [];
    for (const [unit, ref] of Object.entries(opts.manifest?.units ?? {})) {
      const stored = await readUnitWeights(opts.store, ref, { unit, hasher: opts.hasher });
      checks.push(stored.verified);
      for (const [name, data] of stored.tensors) {
        if (adapters.get(name)?.length !== data.length) throw new OverrideMismatchError(unit, `tensor ${name} is not an adapter of this run's rank ${lora.rank}`);
        adapters.set(name, data);
      }
    }
    const tensors: TensorEntry[] = loraModules(spec, lora.targets).flatMap((m) => [
      { name: PEFT_PREFIX + loraA(m.module), dtype: opts.dtype, shape: [lora.rank, m.inFeatures], data: adapters.get(loraA(m.module))! },
      { name: PEFT_PREFIX + loraB(m.module), dtype: opts.dtype, shape: [m.outFeatures, lora.rank], data: adapters.get(loraB(m.module))! },
    ]);
    const written = await writeSafetensors(dest.sink(ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' }, { hash: opts.hasher.stream() });
    await opts.verify;
    await Promise.all(checks);
    record(ADAPTER_WEIGHTS_FILE, written.bytes, written.sha256);
    for (const [name, body] of [
      ['lisa-export.json', json({ ...opts.provenance, files: { ...sha256s } })],
      [ADAPTER_CONFIG_FILE, json(adapterConfig(spec, lora, opts.run.config.base))],
    ] as const) {
      await dest.put(name, body);
      record(name, body.byteLength, sha256Hex(body));
    }
    await dest.commit();
  } catch (err) {
    await dest.abort().catch(() => undefined);
    throw err;
  }
  return { out: dest.url, files, bytes, sha256s, seconds: (now() - t0) / 1000 };
}
