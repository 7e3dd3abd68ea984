/**
 * Calibration of the `outlier` sampler at run creation: the run's first training batches (epoch 0
 * order, the examples its first steps will see) go through the base once, forward only; a probe on
 * the model's projections sums x_j² per input feature over the real token positions (padding
 * excluded), giving ‖X_j‖; then each block's outlier ratio D_ℓ (core/lisa/outlier.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { epochOrder, makeBatch, type Example, type PreparedDataset } from '../data/index.ts';
import type { ModelSpec } from '../models/config.ts';
import { createModel, type ProjectionProbe } from '../models/model.ts';
import { tensorShapes, unitOf } from '../models/units.ts';
import { outlierRatio, type Projection } from '../lisa/outlier.ts';
import type { OutlierCalibration } from '../store/run-spec.ts';

interface Base {
  spec: ModelSpec;
  weights: Map<string, Float32Array>;
}

export interface CalibrationOptions {
  /** batches of `batchSize` examples; fewer when the data holds fewer examples */
  batches: number;
  batchSize: number;
  /** M */
  threshold: number;
  now?: () => number;
}

/** Per projection module (HF name without `.weight`): its weight layout and ‖X_j‖ over the examples. */
export type InputNorms = Map<string, { kind: 'linear' | 'conv1d'; norms: Float64Array }>;

/** Runs `examples` through the model, batchSize at a time, and returns every projection's ‖X_j‖. */
export function projectionInputNorms(base: Base, examples: readonly Example[], batchSize: number): InputNorms {
  const sums = new Map<string, { kind: 'linear' | 'conv1d'; sq: tf.Tensor }>(); // Σ x_j² [1, in]
  let real: tf.Tensor2D | undefined; // [1, N]: 1 at the current batch's real positions, 0 at padding
  // Projections reading the same input (q, k, v; gate, up) share one sum per forward.
  let perInput = new Map<tf.Tensor, tf.Tensor>();
  const probe: ProjectionProbe = (x, module, kind) => {
    let sq = perInput.get(x);
    if (!sq) perInput.set(x, (sq = tf.matMul(real!, tf.square(x)))); // one GEMM: [1, N] · [N, in]
    const prev = sums.get(module);
    sums.set(module, { kind, sq: tf.keep(prev ? tf.add(prev.sq, sq) : tf.clone(sq)) });
    prev?.sq.dispose();
  };
  const model = createModel(base.spec, base.weights, { probe });
  try {
    for (let i = 0; i < examples.length; i += batchSize) {
      const rows = examples.slice(i, i + batchSize);
      const batch = makeBatch(rows);
      const width = batch.tokens[0].length;
      real = tf.tensor2d(
        rows.flatMap((e) => Array.from({ length: width }, (_, t): number => (t < e.ids.length - 1 ? 1 : 0))),
        [1, rows.length * width],
      );
      try {
        tf.tidy(() => {
          model.logits(tf.tensor2d(batch.tokens, undefined, 'int32'));
        });
      } finally {
        real.dispose();
        perInput = new Map();
      }
    }
    return new Map([...sums].map(([module, { kind, sq }]) => [module, { kind, norms: Float64Array.from(sq.dataSync(), Math.sqrt) }]));
  } finally {
    model.dispose();
    for (const { sq } of sums.values()) sq.dispose();
  }
}

export function calibrateOutliers(base: Base, dataset: PreparedDataset, opts: CalibrationOptions): OutlierCalibration {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const { spec } = base;
  const examples = epochOrder(dataset, 0)
    .slice(0, opts.batches * opts.batchSize)
    .map((j) => dataset.train[j]);
  const inputs = projectionInputNorms(base, examples, opts.batchSize);
  const shapes = tensorShapes(spec);
  const blocks: Projection[][] = Array.from({ length: spec.nLayers }, () => []);
  for (const [module, { kind, norms }] of inputs) {
    const name = `${module}.weight`;
    const block = /^layers\.(\d+)$/.exec(unitOf(spec, name));
    if (!block) continue;
    const [rows, cols] = shapes.get(name)!;
    blocks[Number(block[1])].push({ weight: base.weights.get(name)!, shape: [rows, cols], layout: kind, featureNorms: norms });
  }
  return {
    ratios: blocks.map((projections) => outlierRatio(projections, opts.threshold)),
    tokens: examples.reduce((n, e) => n + e.ids.length - 1, 0),
    seconds: (now() - t0) / 1000,
  };
}
