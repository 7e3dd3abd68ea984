import { bufferSource } from '../tensors/source.ts';
import { encodeSafetensors, readHeader, readTensorF32, type TensorEntry } from '../tensors/safetensors.ts';
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
  constructor(key: string, why: string) {
    super('INVALID_UNIT_OBJECT', `unit object ${key}: ${why}`, { key });
  }
}

const M = '.adam_m';
const V = '.adam_v';

/** A safetensors file: "<name>", "<name>.adam_m", "<name>.adam_v" per parameter (DESIGN.md). */
export async function encodeUnitObject(obj: UnitObject, metadata: Record<string, string>): Promise<Uint8Array> {
  const entries: TensorEntry[] = obj.tensors.flatMap((t) => [
    { name: t.name, dtype: 'F32' as const, shape: t.shape, data: t.weight },
    { name: t.name + M, dtype: 'F32' as const, shape: t.shape, data: t.m },
    { name: t.name + V, dtype: 'F32' as const, shape: t.shape, data: t.v },
  ]);
  return encodeSafetensors(entries, { ...metadata, unit: obj.unit, adamStep: String(obj.adamStep) });
}

export async function decodeUnitObject(key: string, bytes: Uint8Array): Promise<UnitObject> {
  const src = bufferSource(bytes, key);
  const header = await readHeader(src);
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
