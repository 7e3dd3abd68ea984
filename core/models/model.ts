/**
 * A model = its spec + one tf.Variable per HF tensor, and optionally LoRA adapters on its block
 * projections (./lora.ts), added where forwards call Params.linear / Params.conv1d. The trainer
 * picks what trains by passing a subset of `params` or `adapters` to tf.variableGrads / the
 * optimizer, so the forward never needs to know.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LisaError } from '../errors.ts';
import type { ModelSpec } from './config.ts';
import { gpt2Forward } from './gpt2.ts';
import { llamaForward } from './llama.ts';
import { adapterShapes, dropoutMask, loraA, loraB, loraModules, type LoraConfig, type TrainingPass } from './lora.ts';
import { conv1d, linear, maskedCrossEntropy, type KV, type Params } from './nn.ts';
import { canonicalName, tensorShapes } from './units.ts';
import { mulberry32 } from '../lisa/rng.ts';

export class WeightsError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('MODEL_WEIGHTS_INVALID', message, details);
  }
}

/** Incremental decoding: feed tokens, get the logits after the last one; keeps the KV cache. */
export interface Decoder {
  /** Positions consumed so far. */
  readonly pos: number;
  /** Consumes `ids` at positions pos.. and returns the logits [V] predicting the next token. */
  feed(ids: number[]): Float32Array;
  dispose(): void;
}

export interface Model {
  spec: ModelSpec;
  /** HF tensor name -> variable (float32, HF shape). */
  params: Map<string, tf.Variable>;
  /** LoRA adapter name (`{module}.lora_A.weight`, ...) -> variable; empty without LoRA. */
  adapters: Map<string, tf.Variable>;
  /**
   * tokens, targets int32 [B, T]; mask float32 [B, T] (1 = count the loss of predicting targets[b][t]). Mean masked CE.
   * With `pass` it is a training forward: LoRA dropout is on.
   */
  loss(tokens: tf.Tensor2D, targets: tf.Tensor2D, mask: tf.Tensor2D, pass?: TrainingPass): tf.Scalar;
  /** [B, T, V] */
  logits(tokens: tf.Tensor2D): tf.Tensor3D;
  decoder(): Decoder;
  dispose(): void;
}

type Forward = (spec: ModelSpec, params: Params, tokens: tf.Tensor2D, past?: KV[]) => { logits: tf.Tensor2D; present: KV[] };

const FORWARDS: Record<ModelSpec['arch'], Forward> = { llama: llamaForward, mistral: llamaForward, qwen2: llamaForward, phi3: llamaForward, gpt2: gpt2Forward };

/** Tensors HF checkpoints may carry that are not parameters (or duplicate a tied one). */
function ignorable(spec: ModelSpec, name: string): boolean {
  return (spec.tiedEmbeddings && name === 'lm_head.weight') || canonicalName(spec, name) === null;
}

function checkWeights(spec: ModelSpec, weights: Map<string, Float32Array>): Map<string, number[]> {
  const shapes = tensorShapes(spec);
  const missing = [...shapes.keys()].filter((n) => !weights.has(n));
  if (missing.length > 0) {
    throw new WeightsError(
      `weights lack ${missing.length} tensor(s) a ${spec.arch} model with this config needs: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
      { missing },
    );
  }
  const unknown = [...weights.keys()].filter((n) => !shapes.has(n) && !ignorable(spec, n));
  if (unknown.length > 0) {
    throw new WeightsError(`weights hold ${unknown.length} tensor(s) this ${spec.arch} config does not define: ${unknown.slice(0, 5).join(', ')}`, {
      unknown,
    });
  }
  for (const [name, shape] of shapes) {
    const n = shape.reduce((x, y) => x * y, 1);
    const got = weights.get(name)!.length;
    if (got !== n) {
      throw new WeightsError(`tensor ${name} has ${got} values; shape [${shape.join(', ')}] needs ${n}`, { name, shape, got });
    }
  }
  return shapes;
}

/**
 * Sees the input x [N, in] of every projection a forward runs through `Params` (inside the
 * forward's tidy: what it keeps, it tf.keep()s). `module` is the HF module name, `kind` tells the
 * weight's layout: 'linear' [out, in], 'conv1d' [in, out].
 */
export type ProjectionProbe = (x: tf.Tensor2D, module: string, kind: 'linear' | 'conv1d') => void;

export interface ModelOptions {
  probe?: ProjectionProbe;
  /** LoRA adapters on the block projections: their configuration and every adapter tensor */
  lora?: { config: LoraConfig; tensors: Map<string, Float32Array> };
}

function variables(shapes: Map<string, number[]>, data: Map<string, Float32Array>): Map<string, tf.Variable> {
  return new Map([...shapes].map(([name, shape]) => [name, tf.tidy(() => tf.variable(tf.tensor(data.get(name)!, shape, 'float32')))]));
}

export function createModel(spec: ModelSpec, weights: Map<string, Float32Array>, opts: ModelOptions = {}): Model {
  const params = variables(checkWeights(spec, weights), weights);
  const lora = opts.lora?.config;
  const adapters = opts.lora ? variables(checkAdapters(spec, opts.lora.config, opts.lora.tensors), opts.lora.tensors) : new Map<string, tf.Variable>();
  const adapted = new Set(lora ? loraModules(spec, lora.targets).map((m) => m.module) : []);
  const w = (name: string): tf.Variable => {
    const p = params.get(name);
    if (!p) throw new WeightsError(`no parameter named ${name}`, { name });
    return p;
  };
  /**
   * y [N, out] of a projection plus its adapter's ((dropout(x) · Aᵀ) · alpha/r) · Bᵀ, x [N, in].
   * PEFT scales the [N, out] product; scaling the [N, r] one is the same map with one [N, out]
   * tensor fewer on the gradient tape, where every intermediate lives until the backward ends.
   */
  const adapt = (x: tf.Tensor2D, y: tf.Tensor2D, module: string, pass?: TrainingPass): tf.Tensor2D => {
    if (!lora || !adapted.has(module)) return y;
    const [n, d] = x.shape;
    const xd = pass && lora.dropout > 0 ? tf.mul(x, tf.tensor2d(dropoutMask(lora, module, pass, n, d), [n, d])) : x;
    const low = tf.mul(linear(xd as tf.Tensor2D, adapters.get(loraA(module))!), lora.alpha / lora.rank) as tf.Tensor2D; // [N, r]
    return tf.add(y, linear(low, adapters.get(loraB(module))!));
  };
  const { probe } = opts;
  const paramsFor = (pass?: TrainingPass): Params => ({
    w,
    // A projection has a bias exactly when the spec gives it one (units.ts made the parameter).
    linear: (x, module) => {
      probe?.(x, module, 'linear');
      const y = linear(x, w(`${module}.weight`));
      const bias = params.get(`${module}.bias`);
      return adapt(x, bias ? tf.add(y, bias) : y, module, pass);
    },
    conv1d: (x, module) => {
      probe?.(x, module, 'conv1d');
      return adapt(x, conv1d(x, w(`${module}.weight`), w(`${module}.bias`)), module, pass);
    },
  });
  const inference = paramsFor();
  const forward = FORWARDS[spec.arch];

  return {
    spec,
    params,
    adapters,
    loss: (tokens, targets, mask, pass) =>
      tf.tidy(() =>
        maskedCrossEntropy(forward(spec, paramsFor(pass), tokens).logits, tf.reshape(targets, [-1]), tf.reshape(tf.cast(mask, 'float32'), [-1])),
      ),
    logits: (tokens) =>
      tf.tidy(() => tf.reshape(forward(spec, inference, tokens).logits, [tokens.shape[0], tokens.shape[1], spec.vocabSize])),
    decoder: () => createDecoder(spec, inference, forward),
    dispose: () => {
      for (const v of [...params.values(), ...adapters.values()]) v.dispose();
      params.clear();
      adapters.clear();
    },
  };
}

/** Adapter tensors must be exactly those of the configuration, each of its shape. */
function checkAdapters(spec: ModelSpec, lora: LoraConfig, tensors: Map<string, Float32Array>): Map<string, number[]> {
  const shapes = adapterShapes(spec, lora);
  const missing = [...shapes.keys()].filter((n) => !tensors.has(n));
  const unknown = [...tensors.keys()].filter((n) => !shapes.has(n));
  if (missing.length > 0 || unknown.length > 0) {
    throw new WeightsError(
      `LoRA adapters do not match rank ${lora.rank} on ${lora.targets.join(', ')}: missing [${missing.slice(0, 3).join(', ')}], unexpected [${unknown.slice(0, 3).join(', ')}]`,
      { missing, unknown },
    );
  }
  for (const [name, shape] of shapes) {
    const got = tensors.get(name)!.length;
    if (got !== shape[0] * shape[1]) throw new WeightsError(`adapter ${name} has ${got} values; shape [${shape.join(', ')}] needs ${shape[0] * shape[1]}`, { name, shape, got });
  }
  return shapes;
}

function createDecoder(spec: ModelSpec, p: Params, forward: Forward): Decoder {
  let past: KV[] | undefined;
  let pos = 0;
  const release = () => {
    for (const kv of past ?? []) tf.dispose([kv.k, kv.v]);
    past = undefined;
  };
  return {
    get pos() {
      return pos;
    },
    feed(ids) {
      if (ids.length === 0) throw new RangeError('Decoder.feed needs at least one token');
      const { last, present } = tf.tidy(() => {
        const out = forward(spec, p, tf.tensor2d(ids, [1, ids.length], 'int32'), past);
        const lastRow = tf.slice(out.logits, [ids.length - 1, 0], [1, spec.vocabSize]);
        return { last: lastRow, present: out.present.flatMap((kv) => [kv.k, kv.v]) };
      });
      release();
      past = [];
      for (let i = 0; i < present.length; i += 2) past.push({ k: present[i] as tf.Tensor4D, v: present[i + 1] as tf.Tensor4D });
      pos += ids.length;
      const logits = last.dataSync() as Float32Array;
      last.dispose();
      return logits;
    },
    dispose: release,
  };
}

/**
 * GPT-2/nanoGPT-style initialisation: N(0, 0.02) matrices, residual output projections scaled by
 * 1/sqrt(2 * layers), norm weights 1, biases 0.
 */
export function randomWeights(spec: ModelSpec, seed: number): Map<string, Float32Array> {
  // the seed's own mulberry32 stream (not a named one), so a seed gives the same weights as it always has
  const rand = mulberry32(seed).next;
  const normal = () => {
    const u = 1 - rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const residualStd = 0.02 / Math.sqrt(2 * spec.nLayers);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of tensorShapes(spec)) {
    const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (/(norm|ln_\d|ln_f)\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) {
      const std = /(o_proj|down_proj|c_proj)\.weight$/.test(name) ? residualStd : 0.02;
      for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    }
    out.set(name, data);
  }
  return out;
}
