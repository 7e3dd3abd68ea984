import { initEngine, openRuns, parseBackend, type BackendName, type Runs } from '../core/index.ts';

/** Starts the engine LISA_BACKEND names (default the best installed); its choice is logged once on stderr unless quiet. */
export function engineFromEnv(quiet = false): Promise<BackendName> {
  return initEngine({ backend: parseBackend(process.env.LISA_BACKEND), log: quiet ? undefined : (m) => process.stderr.write(`${m}\n`) });
}

/**
 * The runs in `store`, as a local user: every ref allowed. S3 and the Hub read their settings
 * from the environment; LISA_CACHE_DIR keeps local copies of remote bases.
 */
export function runsFromEnv(store: string, opts: { access?: 'read' | 'write'; quiet?: boolean } = {}): Promise<Runs> {
  return openRuns(store, {
    env: process.env,
    cacheDir: process.env.LISA_CACHE_DIR?.trim() || undefined,
    log: opts.quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
    access: opts.access,
  });
}
