/**
 * The weights of one unit object (core/store/unit-object.ts) without its AdamW state in memory:
 * the object is read front to back in ranged pieces, every byte goes through sha256 (checked
 * against the manifest), and only the bytes of the weight tensors are kept. Exports need the
 * weights only; m and v are two thirds of the object.
 */
import { createHash } from 'node:crypto';
import { LisaError } from '../errors.ts';
import { CorruptObjectError } from '../store/manifest.ts';
import { InvalidUnitObjectError } from '../store/unit-object.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { readHeader, type TensorInfo } from '../tensors/safetensors.ts';
import { decodeFloats, isFloatDtype } from '../tensors/dtypes.ts';
import type { ByteSource } from '../tensors/source.ts';

export interface UnitWeights {
  unit: string;
  /** HF tensor name -> F32 weights */
  tensors: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
}

const STATE_SUFFIXES = ['.adam_m', '.adam_v'];
const PIECE = 8 << 20;

/** Serves the header reads of readHeader from the bytes read so far, claiming the object's full size. */
function prefixSource(name: string, prefix: () => Uint8Array, size: number, more: (upTo: number) => Promise<void>): ByteSource {
  return {
    name,
    size: async () => size,
    async read(offset, length) {
      await more(offset + length);
      return prefix().slice(offset, offset + length);
    },
  };
}

export async function readUnitWeights(
  store: ObjectStore,
  ref: { key: string; sha256: string; bytes: number },
  expectedUnit?: string,
): Promise<UnitWeights> {
  const { key, bytes: size } = ref;
  const hash = createHash('sha256');
  let pos = 0; // bytes read and hashed so far
  const readPiece = (at: number) => store.get(key, { offset: at, length: Math.min(PIECE, size - at) });

  // Phase 1: the header, possibly spanning pieces.
  let head = new Uint8Array(0);
  const growHead = async (upTo: number) => {
    while (pos < Math.min(upTo, size)) {
      const piece = await readPiece(pos);
      hash.update(piece);
      const grown = new Uint8Array(head.length + piece.length);
      grown.set(head);
      grown.set(piece, head.length);
      head = grown;
      pos += piece.length;
    }
  };
  const header = await readHeader(prefixSource(`${store.url}/${key}`, () => head, size, growHead));
  const unit = header.metadata.unit;
  if (!unit) throw new InvalidUnitObjectError(key, 'metadata lacks unit');
  if (expectedUnit !== undefined && unit !== expectedUnit) {
    throw new InvalidUnitObjectError(key, `holds unit ${unit}, the manifest files it under ${expectedUnit}`);
  }

  const weights: TensorInfo[] = [...header.tensors.values()].filter((t) => !STATE_SUFFIXES.some((s) => t.name.endsWith(s)));
  const buffers = new Map<string, Uint8Array>();
  for (const t of weights) {
    if (!isFloatDtype(t.dtype)) throw new InvalidUnitObjectError(key, `tensor ${t.name} is ${t.dtype}, expected a float dtype`);
    buffers.set(t.name, new Uint8Array(t.end - t.begin));
  }

  /** Copies the part of [at, at + piece.length) that falls into weight tensors. */
  const scatter = (piece: Uint8Array, at: number) => {
    const end = at + piece.length;
    for (const t of weights) {
      const from = Math.max(t.begin, at);
      const to = Math.min(t.end, end);
      if (from < to) buffers.get(t.name)!.set(piece.subarray(from - at, to - at), from - t.begin);
    }
  };
  scatter(head, 0);

  // Phase 2: the data, one piece ahead so the next download overlaps hashing and copying.
  let next = pos < size ? readPiece(pos) : null;
  while (next) {
    const piece = await next;
    const at = pos;
    pos += piece.length;
    next = pos < size ? readPiece(pos) : null;
    hash.update(piece);
    scatter(piece, at);
  }
  const actual = hash.digest('hex');
  if (actual !== ref.sha256) throw new CorruptObjectError(key, ref.sha256, actual);

  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const t of weights) {
    const raw = buffers.get(t.name)!;
    buffers.delete(t.name);
    tensors.set(t.name, decodeFloats(raw, t.dtype as 'F32' | 'F16' | 'BF16'));
    shapes.set(t.name, t.shape);
  }
  return { unit, tensors, shapes };
}

export class UnitMismatchError extends LisaError {
  constructor(where: string, unit: string, why: string) {
    super('MERGE_UNIT_MISMATCH', `${where}: unit ${unit} ${why}`, { where, unit });
  }
}
