import type { ByteSource } from '../../core/tensors/source.ts';

/** A safetensors file built by hand: 8-byte LE length (or `declared`), header text, then data. */
export function rawFile(header: string | Uint8Array, data: number[] | Uint8Array = [], declared?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declared ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Wraps a source and records every read, to prove what a reader touched. */
export function countingSource(inner: ByteSource): ByteSource & { reads: [number, number][]; bytesRead: () => number } {
  const reads: [number, number][] = [];
  return {
    name: inner.name,
    size: () => inner.size(),
    read(offset, length) {
      reads.push([offset, length]);
      return inner.read(offset, length);
    },
    reads,
    bytesRead: () => reads.reduce((n, [, l]) => n + l, 0),
  };
}
