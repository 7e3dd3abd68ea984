/**
 * The weights of one unit object (core/store/unit-object.ts) without its AdamW state in memory,
 * checked against the sha256 its manifest records. Exports need the weights only; m and v are two
 * thirds of the object.
 *
 * In a directory store a hashing thread reads and hashes the file while this thread reads just the
 * weight tensors (unit objects are immutable files, replaced only by rename, never rewritten);
 * elsewhere the object is read front to back in ranged pieces, every piece is hashed, and only the
 * bytes of the weight tensors are kept.
 */
import { CorruptObjectError } from '../store/object-store.ts';
import { InvalidUnitObjectError } from '../store/unit-object.ts';
import { join } from 'node:path';
import { FsStore } from '../store/fs-store.ts';
import { storeSource, type ObjectStore } from '../store/object-store.ts';
import { readHeader, readTensorF32, type SafetensorsHeader, type TensorInfo } from '../tensors/safetensors.ts';
import { decodeFloats, isFloatDtype } from '../tensors/dtypes.ts';
import type { ByteSource } from '../tensors/source.ts';
import { inlineHasher, type Hasher } from '../tensors/hashing.ts';

export interface UnitWeights {
  unit: string;
  /** HF tensor name -> F32 weights */
  tensors: Map<string, Float32Array>;
  shapes: Map<string, number[]>;
  /**
   * Resolves once the whole object matched its sha256, rejects with CorruptObjectError otherwise.
   * The weights come before it, so an export streams on while the hash finishes; whatever uses
   * them must await this before publishing anything.
   */
  verified: Promise<void>;
}

/** A pending sha256 check with its rejection held for whoever awaits it. */
function settle(digest: Promise<string>, ref: ObjectRef): Promise<void> {
  const verified = digest.then((actual) => {
    if (actual !== ref.sha256) throw new CorruptObjectError(ref.key, ref.sha256, actual);
  });
  verified.catch(() => undefined);
  return verified;
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

type ObjectRef = { key: string; sha256: string; bytes: number };

export interface ReadUnitOptions {
  /** the unit the manifest files the object under */
  unit?: string;
  hasher?: Hasher;
  /** bytes per ranged read when streaming */
  pieceBytes?: number;
}

export async function readUnitWeights(store: ObjectStore, ref: ObjectRef, opts: ReadUnitOptions = {}): Promise<UnitWeights> {
  const hasher = opts.hasher ?? inlineHasher;
  const digest = store instanceof FsStore ? hasher.file(join(store.root, ...ref.key.split('/'))) : null;
  return digest ? readBeside(store, ref, opts.unit, digest) : readStreaming(store, ref, opts.unit, hasher, opts.pieceBytes ?? PIECE);
}

/** The weights of a unit object's header, after checking what the header says. */
function weightInfos(key: string, header: SafetensorsHeader, expectedUnit: string | undefined): { unit: string; weights: TensorInfo[] } {
  const unit = header.metadata.unit;
  if (!unit) throw new InvalidUnitObjectError(key, 'metadata lacks unit');
  if (expectedUnit !== undefined && unit !== expectedUnit) {
    throw new InvalidUnitObjectError(key, `holds unit ${unit}, the manifest files it under ${expectedUnit}`);
  }
  const weights = [...header.tensors.values()].filter((t) => !STATE_SUFFIXES.some((s) => t.name.endsWith(s)));
  for (const t of weights) {
    if (!isFloatDtype(t.dtype)) throw new InvalidUnitObjectError(key, `tensor ${t.name} is ${t.dtype}, expected a float dtype`);
  }
  return { unit, weights };
}

async function readBeside(store: ObjectStore, ref: ObjectRef, expectedUnit: string | undefined, digest: Promise<string>): Promise<UnitWeights> {
  digest.catch(() => undefined); // awaited below, unless reading fails first
  const src = storeSource(store, ref.key);
  try {
    const { unit, weights } = weightInfos(ref.key, await readHeader(src), expectedUnit);
    const tensors = new Map<string, Float32Array>();
    const shapes = new Map<string, number[]>();
    for (const t of weights) {
      tensors.set(t.name, await readTensorF32(src, t));
      shapes.set(t.name, t.shape);
    }
    return { unit, tensors, shapes, verified: settle(digest, ref) };
  } catch (err) {
    // A damaged object is reported as such, whatever part of reading it tripped over first.
    const actual = await digest.catch(() => null);
    if (actual !== null && actual !== ref.sha256) throw new CorruptObjectError(ref.key, ref.sha256, actual);
    throw err;
  }
}

async function readStreaming(store: ObjectStore, ref: ObjectRef, expectedUnit: string | undefined, hasher: Hasher, pieceBytes: number): Promise<UnitWeights> {
  const { key, bytes: size } = ref;
  const hash = hasher.stream();
  let pos = 0; // bytes read and hashed so far
  const readPiece = (at: number) => store.get(key, { offset: at, length: Math.min(pieceBytes, size - at) });

  // Phase 1: the header, possibly spanning pieces.
  let head = new Uint8Array(0);
  const growHead = async (upTo: number) => {
    while (pos < Math.min(upTo, size)) {
      const piece = await readPiece(pos);
      const grown = new Uint8Array(head.length + piece.length);
      grown.set(head);
      grown.set(piece, head.length);
      head = grown;
      pos += piece.length;
      await hash.update(piece);
    }
  };
  let parsed: { unit: string; weights: TensorInfo[] };
  try {
    parsed = weightInfos(key, await readHeader(prefixSource(`${store.url}/${key}`, () => head, size, growHead)), expectedUnit);
  } catch (err) {
    // A damaged object is reported as such: hash the rest to tell damage from a bad writer.
    await growHead(size);
    const actual = await hash.digest();
    if (actual !== ref.sha256) throw new CorruptObjectError(key, ref.sha256, actual);
    throw err;
  }
  const { unit, weights } = parsed;
  const buffers = new Map(weights.map((t) => [t.name, new Uint8Array(t.end - t.begin)]));

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
    scatter(piece, at);
    await hash.update(piece);
  }
  const verified = settle(hash.digest(), ref);
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const t of weights) {
    const raw = buffers.get(t.name)!;
    buffers.delete(t.name);
    tensors.set(t.name, decodeFloats(raw, t.dtype as 'F32' | 'F16' | 'BF16'));
    shapes.set(t.name, t.shape);
  }
  return { unit, tensors, shapes, verified };
}
