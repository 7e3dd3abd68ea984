import { describe, expect, it } from 'vitest';
import { createSimdKernels } from '../../core/engine/simd.ts';

const memory = new WebAssembly.Memory({ initial: 64 });
const kernels = createSimdKernels(memory)!;
const gemm = kernels.gemm;
const heap = () => new Float32Array(memory.buffer);

/** C = (C if accumulate) + A B with A stored row-major, or column-major when `transposed`. */
function run(m: number, n: number, k: number, transposed: boolean, accumulate: boolean) {
  const f = heap();
  const a = 16; // element offsets; nothing assumes alignment
  const b = a + m * k + 3;
  const c = b + k * n + 5;
  for (let x = 0; x < m * k; x++) f[a + x] = Math.sin(x * 1.37 + 0.2);
  for (let x = 0; x < k * n; x++) f[b + x] = Math.cos(x * 0.71);
  for (let x = 0; x < m * n; x++) f[c + x] = accumulate ? x * 0.5 : 999;
  f[c + m * n] = 424242; // sentinel after C
  gemm(4 * a, 4 * b, 4 * c, m, n, k, transposed ? 1 : k, transposed ? m : 1, n, n, accumulate ? 1 : 0);
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = accumulate ? (i * n + j) * 0.5 : 0;
      for (let q = 0; q < k; q++) s += f[a + (transposed ? q * m + i : i * k + q)] * f[b + q * n + j];
      worst = Math.max(worst, Math.abs(s - f[c + i * n + j]));
    }
  }
  return { worst, sentinel: f[c + m * n] };
}

describe('SIMD gemm', () => {
  it('assembles and validates', () => {
    expect(gemm).toBeTypeOf('function');
  });

  // Sizes hit every tile path: 4x8, 4x4 and scalar columns, leftover rows, k = 0 and 1.
  const sizes = [
    [1, 1, 1],
    [4, 8, 5],
    [5, 13, 7],
    [9, 3, 2],
    [3, 12, 1],
    [16, 20, 33],
    [7, 17, 0],
  ];
  it.each(sizes)('%i x %i x %i matches a float64 loop, plain, transposed and accumulating', (m, n, k) => {
    for (const transposed of [false, true]) {
      for (const accumulate of [false, true]) {
        const { worst, sentinel } = run(m, n, k, transposed, accumulate);
        expect(worst).toBeLessThan(1e-5 * Math.max(1, k));
        expect(sentinel).toBe(424242);
      }
    }
  });

  it('honours row strides of A, B and C (a sub-matrix in place)', () => {
    const f = heap();
    // A: rows of a 6-wide matrix, columns 1..3; B: 4 x 5 inside a 7-wide one; C: 2 x 5 in a 9-wide one.
    for (let x = 0; x < 200; x++) f[x] = x % 7;
    const [a, b, c] = [0, 40, 100];
    f.fill(-1, c, c + 2 * 9);
    gemm(4 * (a + 1), 4 * b, 4 * c, 2, 5, 3, 6, 1, 7, 9, 0);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 9; j++) {
        let want = -1;
        if (j < 5) {
          want = 0;
          for (let q = 0; q < 3; q++) want += f[a + 1 + i * 6 + q] * f[b + q * 7 + j];
        }
        expect(f[c + i * 9 + j]).toBe(want);
      }
    }
  });
});

describe('SIMD softmax gradient', () => {
  it.each([1, 3, 4, 7, 8, 13])('rows of %i: dx = y * (dy - sum(dy * y))', (cols) => {
    const f = heap();
    const rows = 3;
    const [dy, y, dx] = [8, 200, 400];
    for (let x = 0; x < rows * cols; x++) {
      f[dy + x] = Math.sin(x + 0.5);
      f[y + x] = Math.abs(Math.cos(x * 0.3));
    }
    f[dx + rows * cols] = 77;
    kernels.softmaxGrad(4 * dy, 4 * y, 4 * dx, rows, cols);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += f[dy + r * cols + j] * f[y + r * cols + j];
      for (let j = 0; j < cols; j++) {
        const i = r * cols + j;
        expect(Math.abs(f[dx + i] - f[y + i] * (f[dy + i] - dot))).toBeLessThan(1e-6);
      }
    }
    expect(f[dx + rows * cols]).toBe(77);
  });
});

describe('SIMD transpose', () => {
  it.each([
    [1, 1],
    [4, 4],
    [5, 9],
    [8, 3],
    [13, 17],
  ])('%i x %i', (rows, cols) => {
    const f = heap();
    const [src, dst] = [4, 600];
    for (let x = 0; x < rows * cols; x++) f[src + x] = x + 0.5;
    f[dst + rows * cols] = 55;
    kernels.transpose(4 * src, 4 * dst, rows, cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) expect(f[dst + j * rows + i]).toBe(f[src + i * cols + j]);
    expect(f[dst + rows * cols]).toBe(55);
  });
});
