/**
 * Backend selection. tfjs backends are process-global, so the engine is chosen once per process
 * (the cli and functions read LISA_BACKEND and pass it in) and every model shares it.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { LisaError } from '../errors.ts';
import { installFusedKernels } from './fused.ts';
import { nativeKernelsStatus } from './native.ts';
import { installWasmOverrides } from './wasm.ts';

export { nativeActive, setWasmOverrides, wasmOverridesEnabled } from './wasm.ts';
export { nativeKernelsStatus, setNativeKernels } from './native.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export class EngineError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('ENGINE_UNAVAILABLE', message, details);
  }
}

/** LISA_BACKEND as the front ends read it: undefined (the best installed) or a known backend. */
export function parseBackend(value: string | undefined, variable = 'LISA_BACKEND'): BackendName | undefined {
  const v = value?.trim() || undefined;
  if (v !== undefined && !BACKENDS.includes(v as BackendName)) {
    throw new LisaError('ENGINE_BACKEND_INVALID', `${variable}=${v}: expected one of ${BACKENDS.join(', ')}`, { variable, value: v });
  }
  return v as BackendName | undefined;
}

/**
 * Whether training runs on an accelerator, so its seconds are billed as accelerator seconds: the
 * native backend on a GPU device. tfjs-node (and tfjs-node-gpu on a machine without a usable GPU)
 * is the native backend on the CPU.
 */
export function acceleratorInUse(): boolean {
  return current === 'tensorflow' && (tf.backend() as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
}

export interface EngineOptions {
  /** Force a backend; when it cannot start, the next best one is used and the reason logged. */
  backend?: BackendName;
  log?: (msg: string) => void;
}

// The native packages pull in libtensorflow; the GPU build first, then the CPU one.
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

let current: BackendName | undefined;

async function tryNative(): Promise<string | undefined> {
  const reasons: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    try {
      // A variable specifier keeps TypeScript from resolving a package that is optional.
      const specifier: string = pkg;
      await import(specifier);
      // tfjs-node registers 'tensorflow' on the tfjs-core it resolves; if that is another copy
      // than ours, the backend is invisible here and using it would silently do nothing.
      if (tf.findBackendFactory('tensorflow')) return undefined;
      reasons.push(`${pkg} loaded but registered no 'tensorflow' backend on this tfjs-core (version mismatch?)`);
    } catch (err) {
      const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(pkg);
      reasons.push(missing ? `${pkg} not installed` : `${pkg}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return reasons.join('; ');
}

async function start(name: BackendName): Promise<string | undefined> {
  if (name === 'tensorflow') {
    const why = await tryNative();
    if (why !== undefined) return why;
  }
  try {
    if (!(await tf.setBackend(name))) return `tf.setBackend('${name}') failed`;
    await tf.ready();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return undefined;
}

/**
 * Starts the requested backend, or the best one available (tensorflow > wasm > cpu), logs the
 * choice once and returns it. On wasm it installs the kernels and gradients that make training
 * fast there (see wasm.ts).
 */
export async function initEngine(opts: EngineOptions = {}): Promise<BackendName> {
  const log = opts.log ?? (() => {});
  parseBackend(opts.backend, 'backend');
  if (current !== undefined && (opts.backend === undefined || opts.backend === current) && tf.getBackend() === current) {
    return current;
  }
  const order = opts.backend ? [opts.backend, ...BACKENDS.filter((b) => b !== opts.backend)] : [...BACKENDS];
  const skipped: string[] = [];
  for (const name of order) {
    const why = await start(name);
    if (why !== undefined) {
      skipped.push(`${name} unavailable (${why})`);
      continue;
    }
    if (name === 'wasm') {
      installWasmOverrides();
      installFusedKernels();
    }
    // The cpu backend's first write prints "install our node backend" to the console; the log
    // line below already says which backend runs and why the faster ones did not.
    if (name === 'cpu') (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
    current = name;
    const fallback = opts.backend && opts.backend !== name ? ` instead of requested ${opts.backend}` : '';
    const kernels = name === 'wasm' ? ` (${nativeKernelsStatus()})` : '';
    log(`engine: tfjs ${tf.version_core} backend ${name}${fallback}${kernels}${skipped.length ? `; ${skipped.join('; ')}` : ''}`);
    return name;
  }
  throw new EngineError(`no tfjs backend could start: ${skipped.join('; ')}`);
}

/** The engine's live tensors and the bytes they hold, for leak checks (the server's /metrics); zero before initEngine. */
export function engineMemory(): { tensors: number; bytes: number } {
  if (current === undefined) return { tensors: 0, bytes: 0 };
  const m = tf.memory();
  return { tensors: m.numTensors, bytes: m.numBytes };
}
