import { openStore, parseStoreUrl } from '../store/open.ts';
import type { StoreEnv } from '../store/s3-store.ts';
import { ResourceCache } from '../train/resources.ts';
import { createSources } from '../train/sources.ts';
import { checkLocalRef } from './refs.ts';
import { Runs } from './runs.ts';

export interface OpenRunsOptions {
  /** the environment the S3 client and the Hub read (AWS_*, HF_ENDPOINT, HF_TOKEN): the front end passes process.env */
  env: StoreEnv;
  /** keep local copies of s3:// and hf:// bases here (LISA_CACHE_DIR) */
  cacheDir?: string;
  /** told about base-cache misses and invalidations, and outputs whose record could not be stored */
  log?: (msg: string) => void;
  /** what the caller will do: a directory store must be readable, or writable */
  access?: 'read' | 'write';
  clock?: () => number;
}

/**
 * The runs in the store at `url` (a directory or s3://bucket/prefix), with every ref allowed (the
 * HTTP function confines each tenant with Runs.forTenant). A directory store that is a file or
 * cannot be used is a coded error here; one that does not exist yet is created on the first write.
 */
export async function openRuns(url: string, opts: OpenRunsOptions): Promise<Runs> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'dir') await checkLocalRef('store', loc.path, 'dir', opts.access ?? 'write');
  const open = (u: string) => openStore(u, { env: opts.env });
  return new Runs({
    store: open(url),
    sources: createSources(open, { env: opts.env, cacheDir: opts.cacheDir, log: opts.log }),
    cache: new ResourceCache(),
    openStore: open,
    clock: opts.clock,
    log: opts.log,
  });
}
