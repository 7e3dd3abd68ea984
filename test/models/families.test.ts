/**
 * Each llama-shaped family (Llama 3 with rope_scaling llama3 and a tied head, Qwen2 with q/k/v
 * biases in BF16, Mistral with GQA 4:1, an explicit head_dim and a sliding window, Phi-3 with
 * fused projections) against the PyTorch implementation in test/fixtures/families/make.py:
 * logits, loss and every parameter's gradient of one masked step.
 *
 * Tolerance: max |ours - torch| / max |torch| <= 1e-4 per tensor, in float32 (measured ~1e-6 on
 * cpu and wasm; the two implementations sum in different orders).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { createModel } from '../../core/models/model.ts';
import { readHeader, readTensorBytes, readTensorF32 } from '../../core/tensors/safetensors.ts';
import { fileSource } from '../../core/tensors/source.ts';
import { tensorShapes, unitNames, unitOf } from '../../core/models/units.ts';
import { FAMILIES, familyDir } from './families.ts';


const TOLERANCE = 1e-4;

async function reference(family: string) {
  const src = fileSource(new URL(`../fixtures/families/${family}/reference.safetensors`, import.meta.url).pathname);
  const header = await readHeader(src);
  const info = (name: string) => header.tensors.get(name)!;
  const ints = async (name: string) => {
    const bytes = await readTensorBytes(src, info(name));
    const flat = Array.from(new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    const [b, t] = info(name).shape;
    return Array.from({ length: b }, (_, i) => flat.slice(i * t, (i + 1) * t));
  };
  const grads = new Map<string, Float32Array>();
  for (const name of header.tensors.keys()) if (name.startsWith('grad.')) grads.set(name.slice(5), await readTensorF32(src, info(name)));
  return {
    tokens: await ints('tokens'),
    targets: await ints('targets'),
    mask: await readTensorF32(src, info('mask')),
    logits: await readTensorF32(src, info('logits')),
    loss: (await readTensorF32(src, info('loss')))[0],
    grads,
  };
}

function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

describe.each(['cpu', 'wasm'])('families against the PyTorch reference on %s', (backend) => {
  it.each(FAMILIES)('%s: logits, loss and every gradient', async (family) => {
    await tf.setBackend(backend);
    const base = await loadBaseDir(familyDir(family));
    const ref = await reference(family);
    const model = createModel(base.spec, base.weights);
    const tokens = tf.tensor2d(ref.tokens, undefined, 'int32');
    model.logits(tokens).dispose(); // builds the per-head-size rotation matrix the model caches
    const before = tf.memory().numTensors;
    const targets = tf.tensor2d(ref.targets, undefined, 'int32');
    const mask = tf.tensor2d(ref.mask, [ref.tokens.length, ref.tokens[0].length]);
    const logits = model.logits(tokens);
    expect(relError(logits.dataSync(), ref.logits)).toBeLessThan(TOLERANCE);
    const { value, grads } = tf.variableGrads(() => model.loss(tokens, targets, mask), [...model.params.values()]);
    expect(Math.abs(value.dataSync()[0] - ref.loss) / ref.loss).toBeLessThan(TOLERANCE);
    const names = new Map([...model.params].map(([n, v]) => [v.name, n]));
    const got = new Map(Object.entries(grads).map(([v, g]) => [names.get(v)!, g.dataSync()]));
    expect([...got.keys()].sort()).toEqual([...ref.grads.keys()].sort());
    for (const [name, want] of ref.grads) expect(relError(got.get(name)!, want), name).toBeLessThan(TOLERANCE);
    tf.dispose([targets, mask, logits, value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    tokens.dispose();
    model.dispose();
  });
});

describe('what each variant changes is what makes the match', () => {
  it('llama 3 rope scaling, qwen2 biases and phi3 fusion all move the logits far past the tolerance', async () => {
    await tf.setBackend('cpu');
    const logitsOf = (spec: Parameters<typeof createModel>[0], weights: Map<string, Float32Array>, tokens: number[][]) => {
      const model = createModel(spec, weights);
      const out = tf.tidy(() => model.logits(tf.tensor2d(tokens, undefined, 'int32')).dataSync());
      model.dispose();
      return out;
    };
    const llama3 = await loadBaseDir(familyDir('llama3'));
    const ref = await reference('llama3');
    const { ropeScaling: _, ...unscaled } = llama3.spec;
    expect(relError(logitsOf(unscaled, llama3.weights, ref.tokens), ref.logits)).toBeGreaterThan(1e-2);

    const qwen = await loadBaseDir(familyDir('qwen2'));
    const qwenRef = await reference('qwen2');
    const zeroBiases = new Map([...qwen.weights].map(([n, w]) => [n, n.endsWith('.bias') ? new Float32Array(w.length) : w]));
    expect(relError(logitsOf(qwen.spec, zeroBiases, qwenRef.tokens), qwenRef.logits)).toBeGreaterThan(1e-2);
  });

  it('a sequence longer than the sliding window is refused, naming the window', async () => {
    await tf.setBackend('cpu');
    const base = await loadBaseDir(familyDir('mistral'));
    expect(base.spec.slidingWindow).toBe(16);
    const model = createModel(base.spec, base.weights);
    expect(() => model.logits(tf.tensor2d([Array.from({ length: 17 }, (_, i) => i)], undefined, 'int32'))).toThrow(
      "17 positions exceed the model's sliding attention window of 16 (sliding_window; longer sequences are not supported)",
    );
    const dec = model.decoder();
    dec.feed(Array.from({ length: 16 }, (_, i) => i));
    expect(() => dec.feed([1])).toThrow(/17 positions exceed/);
    dec.dispose();
    model.dispose();
  });
});

describe('units of every family', () => {
  it.each(FAMILIES)('%s: every checkpoint tensor belongs to exactly one unit, and every unit has tensors', async (family) => {
    const base = await loadBaseDir(familyDir(family));
    const names = [...tensorShapes(base.spec).keys()];
    expect(names.sort()).toEqual([...base.weights.keys()].sort());
    const byUnit = new Map<string, string[]>();
    for (const n of names) byUnit.set(unitOf(base.spec, n), [...(byUnit.get(unitOf(base.spec, n)) ?? []), n]);
    expect([...byUnit.keys()].sort()).toEqual(unitNames(base.spec).sort());
    expect([...byUnit.values()].flat().sort()).toEqual(names.sort());
  });
});
