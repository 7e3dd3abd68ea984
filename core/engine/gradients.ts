/**
 * Gradients for the kernels our models use. tfjs-core's Node build (dist/tf-core.node.js) ships no
 * gradient registrations: they live in dist/register_all_gradients.js, an ES module graph with
 * extensionless imports that Node cannot load (only the `@tensorflow/tfjs` bundle, not installed
 * here, registers them). So we register our own, for exactly the kernels our forward passes emit,
 * and leave any registration already present (e.g. from @tensorflow/tfjs) untouched.
 * Every gradient is checked against finite differences in test/engine/gradients.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';

type Grads = Record<string, () => tf.Tensor> | Array<() => tf.Tensor>;
type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => Grads;

/** Sums dy over the axes along which `shape` was broadcast to dy's shape. */
function unbroadcast(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(shape, dy.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(dy, axes) : dy, shape);
}

/** dy of a reduction over `axis` (keepDims or not), spread back over x's shape. */
function spread(dy: tf.Tensor, x: tf.Tensor, axis: number | number[]): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(x.shape));
}

function reducedSize(x: tf.Tensor, axis: number | number[]): number {
  return tf.util.parseAxisParam(axis, x.shape).reduce((n, a) => n * x.shape[a], 1);
}

function binary(f: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => [() => tf.Tensor, () => tf.Tensor]): GradFunc {
  return (dy, [a, b]) => {
    const [da, db] = f(dy, a, b);
    return { a: () => unbroadcast(da(), a.shape), b: () => unbroadcast(db(), b.shape) };
  };
}

interface Def {
  inputsToSave?: string[];
  outputsToSave?: boolean[];
  saveAllInputs?: boolean;
  gradFunc: GradFunc;
}

const GRADIENTS: Record<string, Def> = {
  BatchMatMul: {
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const mm = (x: tf.Tensor, y: tf.Tensor, tx: boolean, ty: boolean) => () => tf.matMul(x, y, tx, ty);
      if (!attrs.transposeA && !attrs.transposeB) return { a: mm(dy, b, false, true), b: mm(a, dy, true, false) };
      if (!attrs.transposeA) return { a: mm(dy, b, false, false), b: mm(dy, a, true, false) };
      if (!attrs.transposeB) return { a: mm(b, dy, false, true), b: mm(a, dy, false, false) };
      return { a: mm(b, dy, true, true), b: mm(dy, a, true, true) };
    },
  },
  Add: { inputsToSave: ['a', 'b'], gradFunc: binary((dy) => [() => dy, () => dy]) },
  AddN: {
    saveAllInputs: true,
    gradFunc: (dy, saved) => saved.map(() => () => tf.clone(dy)),
  },
  Sub: { inputsToSave: ['a', 'b'], gradFunc: binary((dy) => [() => dy, () => tf.neg(dy)]) },
  Multiply: { inputsToSave: ['a', 'b'], gradFunc: binary((dy, a, b) => [() => tf.mul(dy, b), () => tf.mul(dy, a)]) },
  RealDiv: {
    inputsToSave: ['a', 'b'],
    gradFunc: binary((dy, a, b) => [() => tf.div(dy, b), () => tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))]),
  },
  Maximum: {
    inputsToSave: ['a', 'b'],
    gradFunc: binary((dy, a, b) => [
      () => tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')),
      () => tf.mul(dy, tf.cast(tf.less(a, b), 'float32')),
    ]),
  },
  Pow: {
    inputsToSave: ['a', 'b'],
    outputsToSave: [true],
    gradFunc: (dy, [a, b, y]) => ({
      a: () => unbroadcast(tf.mul(dy, tf.mul(b, tf.pow(a, tf.sub(b, 1)))), a.shape),
      b: () => unbroadcast(tf.mul(dy, tf.mul(y, tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a)))), b.shape),
    }),
  },
  Neg: { gradFunc: (dy) => ({ x: () => tf.neg(dy) }) },
  Square: { inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy, tf.mul(x, 2)) }) },
  Sqrt: { outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.div(dy, tf.mul(y, 2)) }) },
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  Rsqrt: { outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.mul(dy, tf.mul(tf.pow(y, 3), -0.5)) }) },
  Exp: { outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.mul(dy, y) }) },
  Log: { inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.div(dy, x) }) },
  Sigmoid: { outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.mul(dy, tf.mul(y, tf.sub(1, y))) }) },
  Tanh: { outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(y))) }) },
  Relu: { inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.mul(dy, tf.cast(tf.greater(x, 0), 'float32')) }) },
  Sum: { inputsToSave: ['x'], gradFunc: (dy, [x], attrs) => ({ x: () => spread(dy, x, attrs.axis as number[]) }) },
  Mean: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => tf.div(spread(dy, x, attrs.axis as number[]), reducedSize(x, attrs.axis as number[])),
    }),
  },
  Max: {
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => {
      const axes = tf.util.parseAxisParam(attrs.reductionIndices as number[], x.shape);
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      return { x: () => tf.mul(tf.reshape(dy, kept), tf.cast(tf.equal(x, tf.reshape(y, kept)), 'float32')) };
    },
  },
  Softmax: {
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => {
      const dyy = tf.mul(dy, y);
      return { logits: () => tf.sub(dyy, tf.mul(tf.sum(dyy, [attrs.dim as number], true), y)) };
    },
  },
  Reshape: { inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => tf.reshape(dy, x.shape) }) },
  Transpose: {
    gradFunc: (dy, _saved, attrs) => {
      const perm = attrs.perm as number[];
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return { x: () => tf.transpose(dy, inverse) };
    },
  },
  Cast: { gradFunc: (dy) => ({ x: () => tf.clone(dy) }) },
  Identity: { gradFunc: (dy) => ({ x: () => tf.cast(dy, 'float32') }) },
  Concat: {
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0].shape)[0];
      return tf.split(dy, saved.map((t) => t.shape[axis]), axis).map((t) => () => t);
    },
  },
  SplitV: {
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.concat(dy as unknown as tf.Tensor[], attrs.axis as number) }),
  },
  Slice: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
      return { x: () => tf.pad(dy, x.shape.map((d, i) => [begin[i], d - begin[i] - size[i]] as [number, number])) };
    },
  },
  PadV2: {
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const begin = (attrs.paddings as [number, number][]).map((p) => p[0]);
      return { x: () => tf.slice(dy, begin, x.shape) };
    },
  },
  GatherV2: {
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, [x, indices], attrs) => {
      if ((attrs.batchDims as number) !== 0) throw new Error('GatherV2 gradient: batchDims != 0 is not supported');
      const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
      return {
        x: () => {
          // Move the gathered axis first, sum rows per index, move it back.
          const outer = x.shape.slice(0, axis);
          const inner = x.shape.slice(axis + 1);
          const values = tf.reshape(dy, [...outer, indices.size, ...inner]);
          const perm = [outer.length, ...outer.map((_, i) => i), ...inner.map((_, i) => outer.length + 1 + i)];
          const first = axis === 0 ? values : tf.transpose(values, perm);
          const summed = tf.unsortedSegmentSum(first, tf.reshape(indices, [indices.size]) as tf.Tensor1D, x.shape[axis]);
          return axis === 0 ? summed : tf.transpose(summed, perm.map((_, i) => perm.indexOf(i)));
        },
        indices: () => tf.zerosLike(indices),
      };
    },
  },
};

let registered = false;

/** Registers every gradient above whose kernel has none yet. Idempotent. */
export function ensureGradients(): void {
  if (registered) return;
  registered = true;
  for (const [kernelName, def] of Object.entries(GRADIENTS)) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({ kernelName, ...def, gradFunc: def.gradFunc as tf.GradFunc });
  }
}

ensureGradients();
