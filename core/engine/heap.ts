/** Where tensors live on the tfjs wasm backend: one WebAssembly memory, addressed in bytes. */
import type * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The backend's memory; read its `buffer` after any allocation (growing it detaches the old one). */
export function heap(backend: BackendWasm): WebAssembly.Memory | undefined {
  return (backend.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
}

/** Byte address of a tensor's data on the heap. */
export function address(backend: BackendWasm, t: tf.TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset as number;
}

export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
