/**
 * WebAssembly SIMD kernels, assembled here byte by byte and run on the tfjs wasm backend's own
 * memory, so tensors are read and written in place: a strided f32 GEMM, the softmax gradient
 * and a 2-D transpose.
 *
 * Why: tfjs-backend-wasm sends every batched or transposed product to a scalar loop (~2 GFLOP/s
 * here); attention is nothing but such products. XNNPACK's fast path needs a single,
 * untransposed right operand and repacks it on every call. This kernel takes any row/column
 * stride for A, so A and A^T cost the same, and reads B rows directly (no packing).
 *
 *   C[i, j] (+)= sum_k A(i, k) B[k, j],  A(i, k) = a[i*ais + k*aks],  B[k, j] = b[k*ldb + j],
 *   C[i, j] = c[i*ldc + j]; all addresses in bytes, strides in elements.
 *
 * Register tiles of 4 rows x 8 columns (8 f32x4 accumulators), then 4x4, then scalar columns;
 * leftover rows one at a time.
 */

const I32 = 0x7f;
const V128 = 0x7b;
const F32 = 0x7d;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...Buffer.from(s, 'utf8')].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

/** Instruction emitter for one function body. */
class Code {
  readonly bytes: number[] = [];
  private readonly localTypes: number[] = [];

  constructor(private readonly params: number) {}

  local(type: number): number {
    this.localTypes.push(type);
    return this.params + this.localTypes.length - 1;
  }

  op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  get(i: number) {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number) {
    return this.op(0x21, ...uleb(i));
  }
  i32(n: number) {
    return this.op(0x41, ...sleb(n));
  }
  simd(opcode: number, ...imm: number[]) {
    return this.op(0xfd, ...uleb(opcode), ...imm);
  }
  // memarg: alignment hint 0 (always valid), byte offset
  f32load(offset = 0) {
    return this.op(0x2a, 0, ...uleb(offset));
  }
  f32store(offset = 0) {
    return this.op(0x38, 0, ...uleb(offset));
  }
  v128load(offset = 0) {
    return this.simd(0x00, 0, ...uleb(offset));
  }
  v128splat32(offset = 0) {
    return this.simd(0x09, 0, ...uleb(offset));
  }
  v128store(offset = 0) {
    return this.simd(0x0b, 0, ...uleb(offset));
  }
  v128zero() {
    return this.simd(0x0c, ...new Array(16).fill(0));
  }
  /** local += value left on the stack by `emit` (i32). */
  addTo(local: number, emit: () => void) {
    this.get(local);
    emit();
    return this.op(0x6a).set(local);
  }
  /** block { loop { if (cond) break; body; continue } } */
  whileNot(exitCond: () => void, body: () => void) {
    this.op(0x02, 0x40, 0x03, 0x40);
    exitCond();
    this.op(0x0d, 1); // br_if to the block's end
    body();
    this.op(0x0c, 0, 0x0b, 0x0b); // br loop; end loop; end block
  }

  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const fn = [...vec(groups.map(([n, t]) => [...uleb(n), t])), ...this.bytes, 0x0b];
    return [...uleb(fn.length), ...fn];
  }
}

const F32X4_ADD = 0xe4;
const F32X4_SUB = 0xe5;
const F32X4_MUL = 0xe6;
const I32_ADD = 0x6a;
const I32_MUL = 0x6c;
const I32_SHL = 0x74;
const I32_GT_U = 0x4b;
const I32_GE_U = 0x4f;
const F32_ADD = 0x92;
const F32_SUB = 0x93;
const F32_MUL = 0x94;

function gemmBody(): number[] {
  const c = new Code(11);
  const [A, B, C, M, N, K, AIS, AKS, LDB, LDC, BETA] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const i = c.local(I32);
  const j = c.local(I32);
  const k = c.local(I32);
  const p = [c.local(I32), c.local(I32), c.local(I32), c.local(I32)];
  const pb = c.local(I32);
  const pc = c.local(I32);
  const ais4 = c.local(I32);
  const aks4 = c.local(I32);
  const ldb4 = c.local(I32);
  const ldc4 = c.local(I32);
  const acc = Array.from({ length: 8 }, () => c.local(V128));
  const b0 = c.local(V128);
  const b1 = c.local(V128);
  const s = c.local(V128);
  const sacc = Array.from({ length: 4 }, () => c.local(F32));

  const times4 = (src: number, dst: number) => c.get(src).i32(2).op(I32_SHL).set(dst);
  times4(AIS, ais4);
  times4(AKS, aks4);
  times4(LDB, ldb4);
  times4(LDC, ldc4);

  const tile = (mr: number, nr: number) => {
    // Row pointers into A for rows i..i+mr-1 at k = 0, and B's column block at row 0.
    c.get(A).get(i).get(ais4).op(I32_MUL).op(I32_ADD).set(p[0]);
    for (let r = 1; r < mr; r++) c.get(p[r - 1]).get(ais4).op(I32_ADD).set(p[r]);
    c.get(B).get(j).i32(2).op(I32_SHL).op(I32_ADD).set(pb);
    const vectors = nr / 4;
    if (nr >= 4) for (let r = 0; r < mr; r++) for (let v = 0; v < vectors; v++) c.v128zero().set(acc[r * 2 + v]);
    else for (let r = 0; r < mr; r++) c.op(0x43, 0, 0, 0, 0).set(sacc[r]);
    c.i32(0).set(k);
    c.whileNot(
      () => c.get(k).get(K).op(I32_GE_U),
      () => {
        if (nr >= 4) {
          c.get(pb).v128load(0).set(b0);
          if (vectors === 2) c.get(pb).v128load(16).set(b1);
          for (let r = 0; r < mr; r++) {
            c.get(p[r]).v128splat32().set(s);
            for (let v = 0; v < vectors; v++) {
              c.get(acc[r * 2 + v]).get(s).get(v === 0 ? b0 : b1).simd(F32X4_MUL).simd(F32X4_ADD).set(acc[r * 2 + v]);
            }
            c.addTo(p[r], () => c.get(aks4));
          }
        } else {
          for (let r = 0; r < mr; r++) {
            c.get(sacc[r]).get(p[r]).f32load().get(pb).f32load().op(F32_MUL).op(F32_ADD).set(sacc[r]);
            c.addTo(p[r], () => c.get(aks4));
          }
        }
        c.addTo(pb, () => c.get(ldb4));
        c.addTo(k, () => c.i32(1));
      },
    );
    // C block: overwrite, or accumulate when beta != 0.
    c.get(C).get(i).get(ldc4).op(I32_MUL).op(I32_ADD).get(j).i32(2).op(I32_SHL).op(I32_ADD).set(pc);
    for (let r = 0; r < mr; r++) {
      if (nr >= 4) {
        c.get(BETA).op(0x04, 0x40); // if (beta)
        for (let v = 0; v < vectors; v++) c.get(acc[r * 2 + v]).get(pc).v128load(16 * v).simd(F32X4_ADD).set(acc[r * 2 + v]);
        c.op(0x0b);
        for (let v = 0; v < vectors; v++) c.get(pc).get(acc[r * 2 + v]).v128store(16 * v);
      } else {
        c.get(BETA).op(0x04, 0x40);
        c.get(sacc[r]).get(pc).f32load().op(F32_ADD).set(sacc[r]);
        c.op(0x0b);
        c.get(pc).get(sacc[r]).f32store();
      }
      c.addTo(pc, () => c.get(ldc4));
    }
  };

  const rowBlock = (mr: number) => {
    c.i32(0).set(j);
    for (const nr of [8, 4, 1]) {
      c.whileNot(
        () => c.get(j).i32(nr).op(I32_ADD).get(N).op(I32_GT_U),
        () => {
          tile(mr, nr);
          c.addTo(j, () => c.i32(nr));
        },
      );
    }
  };

  c.i32(0).set(i);
  for (const mr of [4, 1]) {
    c.whileNot(
      () => c.get(i).i32(mr).op(I32_ADD).get(M).op(I32_GT_U),
      () => {
        rowBlock(mr);
        c.addTo(i, () => c.i32(mr));
      },
    );
  }
  return c.body();
}

/**
 * softmaxGrad(dy, y, dx, rows, cols): dx = y * (dy - sum(dy * y)) per row of length cols — the
 * softmax gradient in two passes over memory instead of four tfjs ops and three temporaries.
 */
function softmaxGradBody(): number[] {
  const c = new Code(5);
  const [DY, Y, DX, ROWS, COLS] = [0, 1, 2, 3, 4];
  const r = c.local(I32);
  const jb = c.local(I32);
  const rowBytes = c.local(I32);
  const vecBytes = c.local(I32);
  const base = c.local(I32);
  const acc = c.local(V128);
  const dotv = c.local(V128);
  const dot = c.local(F32);
  c.get(COLS).i32(2).op(I32_SHL).set(rowBytes);
  // Bytes covered by whole f32x4 vectors.
  c.get(rowBytes).i32(-16).op(0x71).set(vecBytes);
  const at = (ptr: number) => c.get(ptr).get(base).op(I32_ADD).get(jb).op(I32_ADD);
  c.i32(0).set(r);
  c.i32(0).set(base);
  c.whileNot(
    () => c.get(r).get(ROWS).op(I32_GE_U),
    () => {
      c.v128zero().set(acc);
      c.i32(0).set(jb);
      c.whileNot(
        () => c.get(jb).get(vecBytes).op(I32_GE_U),
        () => {
          c.get(acc);
          at(DY).v128load();
          at(Y).v128load();
          c.simd(F32X4_MUL).simd(F32X4_ADD).set(acc);
          c.addTo(jb, () => c.i32(16));
        },
      );
      c.get(acc).simd(0x1f, 0).get(acc).simd(0x1f, 1).op(F32_ADD).get(acc).simd(0x1f, 2).op(F32_ADD);
      c.get(acc).simd(0x1f, 3).op(F32_ADD).set(dot);
      c.whileNot(
        () => c.get(jb).get(rowBytes).op(I32_GE_U),
        () => {
          c.get(dot);
          at(DY).f32load();
          at(Y).f32load();
          c.op(F32_MUL).op(F32_ADD).set(dot);
          c.addTo(jb, () => c.i32(4));
        },
      );
      c.get(dot).simd(0x13).set(dotv);
      c.i32(0).set(jb);
      c.whileNot(
        () => c.get(jb).get(vecBytes).op(I32_GE_U),
        () => {
          at(DX);
          at(Y).v128load();
          at(DY).v128load();
          c.get(dotv).simd(F32X4_SUB).simd(F32X4_MUL).v128store();
          c.addTo(jb, () => c.i32(16));
        },
      );
      c.whileNot(
        () => c.get(jb).get(rowBytes).op(I32_GE_U),
        () => {
          at(DX);
          at(Y).f32load();
          at(DY).f32load();
          c.get(dot).op(F32_SUB).op(F32_MUL).f32store();
          c.addTo(jb, () => c.i32(4));
        },
      );
      c.addTo(base, () => c.get(rowBytes));
      c.addTo(r, () => c.i32(1));
    },
  );
  return c.body();
}

/** f32 lanes picked from (x, y) as an i8x16.shuffle immediate: 0-3 from x, 4-7 from y. */
function lanes(...f32: number[]): number[] {
  return f32.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
}

/** transpose(src, dst, rows, cols): dst [cols, rows] = src [rows, cols]^T, 4x4 blocks in registers. */
function transposeBody(): number[] {
  const c = new Code(4);
  const [SRC, DST, ROWS, COLS] = [0, 1, 2, 3];
  const i = c.local(I32);
  const j = c.local(I32);
  const r = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  const t = [c.local(V128), c.local(V128), c.local(V128), c.local(V128)];
  const src = (row: () => void, col: () => void) => {
    c.get(SRC);
    row();
    c.get(COLS).op(I32_MUL);
    col();
    c.op(I32_ADD).i32(2).op(I32_SHL).op(I32_ADD);
  };
  const dst = (row: () => void, col: () => void) => {
    c.get(DST);
    col();
    c.get(ROWS).op(I32_MUL);
    row();
    c.op(I32_ADD).i32(2).op(I32_SHL).op(I32_ADD);
  };
  const scalarCols = (rowsInBlock: number) => {
    c.whileNot(
      () => c.get(j).get(COLS).op(I32_GE_U),
      () => {
        for (let q = 0; q < rowsInBlock; q++) {
          const row = () => c.get(i).i32(q).op(I32_ADD);
          dst(row, () => c.get(j));
          src(row, () => c.get(j));
          c.f32load().f32store();
        }
        c.addTo(j, () => c.i32(1));
      },
    );
  };
  c.i32(0).set(i);
  c.whileNot(
    () => c.get(i).i32(4).op(I32_ADD).get(ROWS).op(I32_GT_U),
    () => {
      c.i32(0).set(j);
      c.whileNot(
        () => c.get(j).i32(4).op(I32_ADD).get(COLS).op(I32_GT_U),
        () => {
          for (let q = 0; q < 4; q++) {
            src(() => c.get(i).i32(q).op(I32_ADD), () => c.get(j));
            c.v128load().set(r[q]);
          }
          const shuffle = (x: number, y: number, sel: number[], out: number) => c.get(x).get(y).simd(0x0d, ...lanes(...sel)).set(out);
          shuffle(r[0], r[1], [0, 4, 1, 5], t[0]);
          shuffle(r[0], r[1], [2, 6, 3, 7], t[1]);
          shuffle(r[2], r[3], [0, 4, 1, 5], t[2]);
          shuffle(r[2], r[3], [2, 6, 3, 7], t[3]);
          shuffle(t[0], t[2], [0, 1, 4, 5], r[0]);
          shuffle(t[0], t[2], [2, 3, 6, 7], r[1]);
          shuffle(t[1], t[3], [0, 1, 4, 5], r[2]);
          shuffle(t[1], t[3], [2, 3, 6, 7], r[3]);
          for (let q = 0; q < 4; q++) {
            dst(() => c.get(i), () => c.get(j).i32(q).op(I32_ADD));
            c.get(r[q]).v128store();
          }
          c.addTo(j, () => c.i32(4));
        },
      );
      scalarCols(4);
      c.addTo(i, () => c.i32(4));
    },
  );
  c.whileNot(
    () => c.get(i).get(ROWS).op(I32_GE_U),
    () => {
      c.i32(0).set(j);
      scalarCols(1);
      c.addTo(i, () => c.i32(1));
    },
  );
  return c.body();
}

function simdModule(): Uint8Array<ArrayBuffer> {
  const i32s = (n: number) => [0x60, ...vec(new Array(n).fill([I32])), 0x00];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([i32s(11), i32s(5), i32s(4)])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, 0x01]])),
    ...section(3, vec([[0], [1], [2]])),
    ...section(
      7,
      vec([
        [...name('gemm'), 0x00, 0x00],
        [...name('softmaxGrad'), 0x00, 0x01],
        [...name('transpose'), 0x00, 0x02],
      ]),
    ),
    ...section(10, vec([gemmBody(), softmaxGradBody(), transposeBody()])),
  ]);
}

/** gemm(a, b, c, m, n, k, ais, aks, ldb, ldc, accumulate): addresses in bytes, strides in elements. */
export type Gemm = (
  a: number,
  b: number,
  c: number,
  m: number,
  n: number,
  k: number,
  ais: number,
  aks: number,
  ldb: number,
  ldc: number,
  accumulate: number,
) => void;

/** softmaxGrad(dy, y, dx, rows, cols): addresses in bytes. */
export type SoftmaxGrad = (dy: number, y: number, dx: number, rows: number, cols: number) => void;

/** transpose(src, dst, rows, cols): addresses in bytes; src [rows, cols] -> dst [cols, rows]. */
export type Transpose = (src: number, dst: number, rows: number, cols: number) => void;

export interface SimdKernels {
  gemm: Gemm;
  softmaxGrad: SoftmaxGrad;
  transpose: Transpose;
}

/** Instantiates the kernels over `memory` (not shared); undefined where wasm SIMD is unavailable. */
export function createSimdKernels(memory: WebAssembly.Memory): SimdKernels | undefined {
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) return undefined;
  const bytes = simdModule();
  if (!WebAssembly.validate(bytes)) return undefined;
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  return { gemm: exports.gemm as Gemm, softmaxGrad: exports.softmaxGrad as SoftmaxGrad, transpose: exports.transpose as Transpose };
}
