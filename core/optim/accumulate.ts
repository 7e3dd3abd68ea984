/**
 * Gradient accumulation over micro-batches. To reproduce the gradient of the token-mean loss
 * over the whole batch, add each micro-batch's gradient (of its own token-mean loss) with weight
 * tokens_i / Σ tokens; with equal weights 1/n it is the mean of the micro-batch gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GradientMismatchError } from './errors.ts';

export class GradAccumulator {
  private sums = new Map<string, tf.Tensor>();

  /** Adds weight · grads; does not take ownership of `grads`. */
  add(grads: ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>, weight = 1): void {
    const entries = grads instanceof Map ? [...grads.entries()] : Object.entries(grads);
    if (this.sums.size > 0) {
      const missing = [...this.sums.keys()].filter((k) => !entries.some(([n]) => n === k));
      const extra = entries.filter(([n]) => !this.sums.has(n)).map(([n]) => n);
      if (missing.length > 0 || extra.length > 0) {
        throw new GradientMismatchError(`micro-batch gradients differ from the first micro-batch's: missing [${missing.join(', ')}], extra [${extra.join(', ')}]`);
      }
    }
    for (const [name, g] of entries) {
      const prev = this.sums.get(name);
      if (prev && !tf.util.arraysEqual(prev.shape, g.shape)) {
        throw new GradientMismatchError(`gradient of ${name} has shape [${g.shape}], earlier micro-batches [${prev.shape}]`, { name });
      }
    }
    for (const [name, g] of entries) {
      const prev = this.sums.get(name);
      this.sums.set(
        name,
        tf.tidy(() => {
          const x = weight === 1 ? g : tf.mul(g, weight);
          // A clone, so the sum never aliases a tensor the caller will dispose.
          return prev ? tf.add(prev, x) : x === g ? tf.clone(g) : x;
        }),
      );
      prev?.dispose();
    }
  }

  /** Hands over the sums (the caller disposes them) and starts empty again. */
  take(): Map<string, tf.Tensor> {
    const out = this.sums;
    this.sums = new Map();
    return out;
  }

  dispose(): void {
    for (const t of this.sums.values()) t.dispose();
    this.sums.clear();
  }
}
