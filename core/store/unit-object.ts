import { bufferSource } from '../tensors/source.ts';
import { encodeSafetensors, readHeader, SafetensorsError, readTensorF32, writeSafetensors, type TensorEntry } from '../tensors/safetensors.ts';
import type { ObjectStore } from './object-store.ts';
import { LisaError } from '../errors.ts';

/** One parameter of a unit with its AdamW moments, all F32 and of one shape. */
export interface UnitTensor {
  name: string;
  shape: number[];
  weight: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

export interface UnitObject {
  unit: string;
  adamStep: number;
  tensors: UnitTensor[];
}

export class InvalidUnitObjectError extends LisaError {
  constructor(key: string, why: string, options?: { cause?: unknown }) {
    super('UNIT_OBJECT_INVALID', `unit object ${key}: ${why}`, { key }, options);
  }
}

const M = '.adam_m';
const V = '.adam_v';

function entries(obj: UnitObject): TensorEntry[] {
  return obj.tensors.flatMap((t) => [
    { name: t.name, dtype: 'F32' as const, shape: t.shape, data: t.weight },
    { name: t.name + M, dtype: 'F32' as const, shape: t.shape, data: t.m },
    { name: t.name + V, dtype: 'F32' as const, shape: t.shape, data: t.v },
  ]);
}

const unitMetadata = (obj: UnitObject, metadata: Record<string, string>) => ({ ...metadata, unit: obj.unit, adamStep: String(obj.adamStep) });

/** A safetensors file: "<name>", "<name>.adam_m", "<name>.adam_v" per parameter (README.md "Store layout"). */
export async function encodeUnitObject(obj: UnitObject, metadata: Record<string, string>): Promise<Uint8Array> {
  return encodeSafetensors(entries(obj), unitMetadata(obj, metadata));
}

/** Streams a unit object to `key`: the upload starts while the rest is written, the sha256 is taken on the way. */
export async function putUnitObject(
  store: ObjectStore,
  key: string,
  obj: UnitObject,
  metadata: Record<string, string>,
): Promise<{ bytes: number; sha256: string }> {
  return writeSafetensors(store.putStream(key), entries(obj), unitMetadata(obj, metadata));
}

export async function decodeUnitObject(key: string, bytes: Uint8Array): Promise<UnitObject> {
  const src = bufferSource(bytes, key);
  // the chunk that committed this object wrote it: a malformed one is damage, not a caller's mistake
  const header = await readHeader(src).catch((err: unknown) => {
    throw err instanceof SafetensorsError ? new InvalidUnitObjectError(key, err.message, { cause: err }) : err;
  });
  const unit = header.metadata.unit;
  const adamStep = Number(header.metadata.adamStep);
  if (!unit || !Number.isInteger(adamStep)) throw new InvalidUnitObjectError(key, 'metadata lacks unit/adamStep');
  const tensors: UnitTensor[] = [];
  for (const info of header.tensors.values()) {
    if (info.name.endsWith(M) || info.name.endsWith(V)) continue;
    const mInfo = header.tensors.get(info.name + M);
    const vInfo = header.tensors.get(info.name + V);
    if (!mInfo || !vInfo) throw new InvalidUnitObjectError(key, `tensor ${info.name} has no ${M}/${V} state`);
    tensors.push({
      name: info.name,
      shape: info.shape,
      weight: await readTensorF32(src, info),
      m: await readTensorF32(src, mInfo),
      v: await readTensorF32(src, vInfo),
    });
  }
  return { unit, adamStep, tensors };
}
