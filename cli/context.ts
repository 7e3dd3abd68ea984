import { LisaError } from '../core/errors.ts';
import { initEngine, type BackendName } from '../core/engine/index.ts';
import { openStore } from '../core/store/open.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { ResourceCache } from '../core/train/resources.ts';
import { createSources, type Sources } from '../core/train/sources.ts';

/** What every command that trains or reads runs needs, built once from the environment. */
export interface CliContext {
  store: ObjectStore;
  sources: Sources;
  cache: ResourceCache;
  backend: BackendName;
}

const BACKENDS: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export async function engineFromEnv(quiet = false): Promise<BackendName> {
  const wanted = process.env.LISA_BACKEND;
  if (wanted !== undefined && !BACKENDS.includes(wanted as BackendName)) {
    throw new LisaError('ENGINE_BACKEND_INVALID', `LISA_BACKEND=${wanted}: expected one of ${BACKENDS.join(', ')}`);
  }
  return initEngine({ backend: wanted as BackendName | undefined, log: quiet ? undefined : (m) => process.stderr.write(`${m}\n`) });
}

export function openStoreFromEnv(url: string): ObjectStore {
  return openStore(url, { env: process.env });
}

/** Bases and data: hf:// refs read HF_ENDPOINT and HF_TOKEN; LISA_CACHE_DIR keeps local copies of remote bases. */
export function sourcesFromEnv(quiet = false): Sources {
  return createSources(openStoreFromEnv, {
    env: process.env,
    cacheDir: process.env.LISA_CACHE_DIR?.trim() || undefined,
    log: quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
  });
}

export async function cliContext(storeUrl: string, opts: { quiet?: boolean } = {}): Promise<CliContext> {
  const backend = await engineFromEnv(opts.quiet);
  return { store: openStoreFromEnv(storeUrl), sources: sourcesFromEnv(opts.quiet), cache: new ResourceCache(), backend };
}
