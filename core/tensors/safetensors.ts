/**
 * Strict safetensors (https://huggingface.co/docs/safetensors): ranged reads from any ByteSource
 * and a streaming writer. @huggingface/hub only parses headers of hub repos over HTTP (loose
 * checks, no writer, no local or ranged sources); we borrow its JSON types for the header.
 * Rules and error codes: ./README.md.
 */
import { createHash } from 'node:crypto';
import type { TensorInfo as HeaderEntry } from '@huggingface/hub';
import { LisaError, type ErrorCode } from '../errors.ts';
import { decodeFloats, DTYPES, dtypeSize, encodeFloats, isDtype, isFloatDtype, toFileOrder, type Dtype } from './dtypes.ts';
import { findDuplicateKey } from './json-keys.ts';
import type { ByteSink, ByteSource } from './source.ts';

export type { Dtype } from './dtypes.ts';

/** begin/end are absolute byte offsets in the file (data_offsets + dataStart). */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>; // in file order
  metadata: Record<string, string>;
  headerBytes: number; // length of the JSON header (N in the 8-byte prefix)
  dataStart: number; // 8 + headerBytes
}

type TensorData = Float32Array | Uint8Array | Int32Array;

/**
 * Float32Array data is encoded as `dtype` (F32/F16/BF16); Int32Array only as I32; Uint8Array is
 * taken as the tensor's little-endian bytes for any dtype. A function is called when the tensor is
 * written, so an exporter holds one tensor in memory at a time.
 */
export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: TensorData | (() => Promise<TensorData>);
}

export type SafetensorsErrorCode = Extract<ErrorCode, `SAFETENSORS_${string}`>;

export class SafetensorsError extends LisaError {
  declare readonly code: SafetensorsErrorCode;

  /** `where` is the source name (or 'safetensors writer'); `tensor` names the entry at fault. */
  constructor(code: SafetensorsErrorCode, where: string, tensor: string | undefined, what: string) {
    super(code, tensor === undefined ? `${where}: ${what}` : `${where}: tensor ${JSON.stringify(tensor)}: ${what}`, { source: where, tensor });
  }
}

const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const ENTRY_FIELDS = ['dtype', 'shape', 'data_offsets'];
const WRITER = 'safetensors writer';

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isStringMap(x: unknown): x is Record<string, string> {
  return isPlainObject(x) && Object.values(x).every((v) => typeof v === 'string');
}

function isShape(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function byteLength(shape: number[], dtype: Dtype): bigint {
  return shape.reduce((n, d) => n * BigInt(d), BigInt(dtypeSize(dtype)));
}

export async function readHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const where = src.name;
  const fail = (code: SafetensorsErrorCode, what: string, tensor?: string) => new SafetensorsError(code, where, tensor, what);

  const size = await src.size();
  if (size < 8) throw fail('SAFETENSORS_TOO_SMALL', `file is ${size} bytes, shorter than the 8-byte header length`);
  const prefix = await src.read(0, 8);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw fail('SAFETENSORS_HEADER_TOO_LARGE', `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  const headerBytes = Number(n);
  const dataStart = 8 + headerBytes;
  if (dataStart > size) throw fail('SAFETENSORS_HEADER_BEYOND_FILE', `header length ${headerBytes} runs past the end of the ${size}-byte file`);

  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text so JSON.parse rejects it, as the reference implementation does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(await src.read(8, headerBytes));
  } catch {
    throw fail('SAFETENSORS_HEADER_NOT_UTF8', 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail('SAFETENSORS_HEADER_NOT_JSON', `header is not JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw fail('SAFETENSORS_HEADER_NOT_OBJECT', `header is JSON ${Array.isArray(json) ? 'array' : typeof json}, expected an object`);
  const dup = findDuplicateKey(text);
  if (dup && dup.path.length === 0 && dup.key !== METADATA_KEY) throw fail('SAFETENSORS_DUPLICATE_TENSOR', 'appears twice in the header', dup.key);
  if (dup) {
    const inside = dup.path.length === 0 ? 'the header' : dup.path.map((k) => JSON.stringify(k)).join('.');
    const tensor = dup.path[0] === METADATA_KEY ? undefined : dup.path[0];
    throw fail('SAFETENSORS_DUPLICATE_KEY', `key ${JSON.stringify(dup.key)} appears twice in ${inside}`, tensor);
  }

  const { [METADATA_KEY]: rawMetadata = {}, ...entries } = json;
  if (!isStringMap(rawMetadata)) throw fail('SAFETENSORS_METADATA_INVALID', `${METADATA_KEY} must be an object of string values`);

  const dataLength = size - dataStart;
  const infos: TensorInfo[] = [];
  for (const [name, e] of Object.entries(entries)) {
    if (!isPlainObject(e) || Object.keys(e).length !== 3 || !ENTRY_FIELDS.every((f) => Object.hasOwn(e, f))) {
      throw fail('SAFETENSORS_ENTRY_INVALID', `expected an object with exactly ${ENTRY_FIELDS.join(', ')}, got ${JSON.stringify(e)}`, name);
    }
    const { dtype, shape, data_offsets: offsets } = e;
    if (!isDtype(dtype)) throw fail('SAFETENSORS_UNKNOWN_DTYPE', `dtype ${JSON.stringify(dtype)} is not one of ${DTYPES.join(', ')}`, name);
    if (!isShape(shape)) throw fail('SAFETENSORS_SHAPE_INVALID', `shape ${JSON.stringify(shape)} is not an array of non-negative integers`, name);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isShape(offsets) || offsets[0] > offsets[1]) {
      throw fail('SAFETENSORS_OFFSETS_INVALID', `data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end integers`, name);
    }
    const [begin, end] = offsets;
    const need = byteLength(shape, dtype);
    if (need !== BigInt(end - begin)) {
      throw fail('SAFETENSORS_SIZE_MISMATCH', `shape ${JSON.stringify(shape)} of ${dtype} needs ${need} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`, name);
    }
    if (end > dataLength) {
      throw fail('SAFETENSORS_OFFSETS_BEYOND_FILE', `data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data buffer`, name);
    }
    infos.push({ name, dtype, shape, begin: dataStart + begin, end: dataStart + end });
  }

  // The byte buffer must be fully indexed: tensors tile [0, dataLength) with no gap or overlap.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: TensorInfo | undefined;
  for (const t of infos) {
    const expected = prev ? prev.end : dataStart;
    if (t.begin < expected) {
      throw fail('SAFETENSORS_OVERLAP', `data_offsets [${t.begin - dataStart}, ${t.end - dataStart}] overlap tensor ${JSON.stringify(prev!.name)} ending at ${expected - dataStart}`, t.name);
    }
    if (t.begin > expected) {
      const gap = prev ? `tensor ${JSON.stringify(prev.name)} ends at ${expected - dataStart}` : 'data starts at 0';
      throw fail('SAFETENSORS_HOLE', `starts at data offset ${t.begin - dataStart} but ${gap}; the bytes between belong to no tensor`, t.name);
    }
    prev = t;
  }
  if (!prev && dataLength > 0) throw fail('SAFETENSORS_TRAILING_BYTES', `header declares no tensors but ${dataLength} data bytes follow it`);
  if (prev && prev.end < size) {
    throw fail('SAFETENSORS_TRAILING_BYTES', `is the last tensor and ends at data offset ${prev.end - dataStart}, but the data buffer has ${dataLength} bytes`, prev.name);
  }

  return { tensors: new Map(infos.map((t) => [t.name, t])), metadata: rawMetadata, headerBytes, dataStart };
}

export async function readTensorBytes(src: ByteSource, info: TensorInfo): Promise<Uint8Array> {
  return src.read(info.begin, info.end - info.begin);
}

export async function readTensorF32(src: ByteSource, info: TensorInfo): Promise<Float32Array> {
  const { dtype } = info;
  if (!isFloatDtype(dtype)) throw new SafetensorsError('SAFETENSORS_NOT_FLOAT', src.name, info.name, `dtype ${dtype} cannot be read as F32; read its bytes instead`);
  return decodeFloats(await readTensorBytes(src, info), dtype);
}

function checkEntry(e: TensorEntry, seen: Set<string>): void {
  const fail = (code: SafetensorsErrorCode, what: string) => new SafetensorsError(code, WRITER, e.name, what);
  if (e.name === METADATA_KEY) throw fail('SAFETENSORS_RESERVED_NAME', `${METADATA_KEY} is reserved for metadata`);
  if (seen.has(e.name)) throw fail('SAFETENSORS_DUPLICATE_TENSOR', 'is given twice');
  seen.add(e.name);
  if (!isDtype(e.dtype)) throw fail('SAFETENSORS_UNKNOWN_DTYPE', `dtype ${JSON.stringify(e.dtype)} is not one of ${DTYPES.join(', ')}`);
  if (!isShape(e.shape)) throw fail('SAFETENSORS_SHAPE_INVALID', `shape ${JSON.stringify(e.shape)} is not an array of non-negative integers`);
  if (byteLength(e.shape, e.dtype) > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('SAFETENSORS_SHAPE_INVALID', `shape ${JSON.stringify(e.shape)} is too large to address`);
}

/** Checks that `data` fits the entry's dtype and shape. */
function checkData(e: TensorEntry, data: TensorData): void {
  const fail = (code: SafetensorsErrorCode, what: string) => new SafetensorsError(code, WRITER, e.name, what);
  const bytes = Number(byteLength(e.shape, e.dtype));
  const count = bytes / dtypeSize(e.dtype);
  const lengthError = (got: string, want: string) => fail('SAFETENSORS_DATA_LENGTH', `data has ${got}, shape ${JSON.stringify(e.shape)} of ${e.dtype} needs ${want}`);
  if (data instanceof Float32Array) {
    if (!isFloatDtype(e.dtype)) throw fail('SAFETENSORS_DATA_TYPE', `Float32Array data cannot be written as ${e.dtype}`);
    if (data.length !== count) throw lengthError(`${data.length} elements`, `${count}`);
  } else if (data instanceof Int32Array) {
    if (e.dtype !== 'I32') throw fail('SAFETENSORS_DATA_TYPE', `Int32Array data can only be written as I32, not ${e.dtype}`);
    if (data.length !== count) throw lengthError(`${data.length} elements`, `${count}`);
  } else if (data instanceof Uint8Array) {
    if (data.byteLength !== bytes) throw lengthError(`${data.byteLength} bytes`, `${bytes}`);
  } else {
    throw fail('SAFETENSORS_DATA_TYPE', 'data must be a Float32Array, Int32Array or Uint8Array');
  }
}

/** An incremental hash of the output; done with a chunk when update() resolves. */
export interface OutputHash {
  update(chunk: Uint8Array): void | Promise<void>;
  digest(): string | Promise<string>;
}

/** A sink that can also discard what it was given (an object store upload), instead of keeping it at close(). */
export type AbortableSink = ByteSink & { abort?(): Promise<void> };

export interface WriteSafetensorsOptions {
  /** sha256 of the output (hex); default: node:crypto on this thread. A hashing thread frees the writer for converting. */
  hash?: OutputHash;
}

/** F32 elements converted per piece when writing F16/BF16: 4 MiB writes from two reused buffers. */
const CONVERT_PIECE = 2 << 20;

/**
 * Streams a safetensors file to `sink`, tensors contiguous in the given order, and closes the sink.
 * On failure the sink is aborted when it can be (an upload then leaves no object), otherwise
 * closed, and the partial output is the caller's to discard. Everything that can be checked
 * before writing is checked first; lazy data is checked when it arrives.
 *
 * One chunk is written and hashed while the next is produced (lazy data loaded, F16/BF16
 * converted); conversions go piecewise through two buffers used in turn, so a buffer is refilled
 * only after the sink and the hash are done with it.
 */
export async function writeSafetensors(
  sink: AbortableSink,
  tensors: TensorEntry[],
  metadata?: Record<string, string>,
  opts: WriteSafetensorsOptions = {},
): Promise<{ bytes: number; sha256: string }> {
  if (metadata !== undefined && !isStringMap(metadata)) {
    throw new SafetensorsError('SAFETENSORS_METADATA_INVALID', WRITER, undefined, 'metadata must be an object of string values');
  }
  const seen = new Set<string>();
  for (const e of tensors) {
    checkEntry(e, seen);
    if (typeof e.data !== 'function') checkData(e, e.data);
  }

  // Built by hand rather than JSON.stringify(object) so that keys keep the given order
  // (objects move integer-like keys first) and a tensor named "__proto__" stays a tensor.
  const fields: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) fields.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const e of tensors) {
    const end = offset + Number(byteLength(e.shape, e.dtype));
    const entry: HeaderEntry = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, end] };
    fields.push(`${JSON.stringify(e.name)}:${JSON.stringify(entry)}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerBytes = Math.ceil(json.length / 8) * 8; // spaces pad the data start to 8-byte alignment
  const head = new Uint8Array(8 + headerBytes).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerBytes), true);
  head.set(json, 8);

  const hash = opts.hash ?? inlineHash();
  let written = 0;
  let inflight: Promise<unknown> = Promise.resolve();
  const put = async (chunk: Uint8Array) => {
    await inflight;
    const done = Promise.all([sink.write(chunk), hash.update(chunk)]);
    done.catch(() => undefined); // awaited by the next put or at the end
    inflight = done;
    written += chunk.byteLength;
  };
  const scratch = [new Uint16Array(0), new Uint16Array(0)];
  let turn = 0;
  try {
    await put(head);
    for (const e of tensors) {
      const data = typeof e.data === 'function' ? await e.data() : e.data;
      checkData(e, data);
      if (data instanceof Float32Array && (e.dtype === 'F16' || e.dtype === 'BF16')) {
        for (let at = 0; at < data.length; at += CONVERT_PIECE) {
          const piece = data.subarray(at, at + CONVERT_PIECE);
          if (scratch[turn].length < piece.length) scratch[turn] = new Uint16Array(Math.min(CONVERT_PIECE, Math.max(piece.length, 2 * scratch[turn].length)));
          await put(encodeFloats(piece, e.dtype, scratch[turn]));
          turn ^= 1;
        }
      } else if (data instanceof Float32Array) {
        await put(encodeFloats(data, e.dtype as 'F32'));
      } else {
        await put(data instanceof Int32Array ? toFileOrder(data) : data);
      }
    }
    await inflight;
  } catch (err) {
    // The write already failed; an error from the abandoned sink would only hide why.
    await inflight.catch(() => undefined);
    await (sink.abort ? sink.abort() : sink.close()).catch(() => undefined);
    throw err;
  }
  await sink.close();
  return { bytes: written, sha256: await hash.digest() };
}

function inlineHash(): OutputHash {
  const h = createHash('sha256');
  return { update: (chunk) => void h.update(chunk), digest: () => h.digest('hex') };
}

export async function encodeSafetensors(tensors: TensorEntry[], metadata?: Record<string, string>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const { bytes } = await writeSafetensors(
    // Copies, because chunks may be views of the callers' arrays (see ByteSink).
    { write: async (c) => void chunks.push(c.slice()), close: async () => undefined },
    tensors,
    metadata,
  );
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
