import type { Logger } from 'pino';
import type { Runs } from '../core/index.ts';
import type { TokenEntry } from './auth.ts';
import type { ChunkLimits, ChunkRunner } from './chunks.ts';
import type { Metrics } from './metrics.ts';

/** Everything the app uses from outside; it reads no process globals itself. */
export interface AppDeps {
  /** the runs of all tenants; each request works on its tenant's view (Runs.forTenant) */
  runs: Runs;
  /** LISA_REF_PREFIXES: where tenants may name refs besides their own area (`{tenant}` replaced) */
  refPrefixes: readonly string[];
  tokens: readonly TokenEntry[];
  /** signs dashboard session cookies (LISA_SESSION_KEY); default a random key per process */
  sessionKey?: Buffer;
  /** price of this machine, for metering */
  pricing: { usdPerHour: number };
  limits: ChunkLimits;
  clock: () => number;
  logger: Logger;
  metrics: Metrics;
  /** false while the engine and caches warm up: /ping answers 204, chunks 503 */
  isReady: () => boolean;
}

/** What the middleware puts on each request's context. */
export type Env = {
  Variables: {
    requestId: string;
    log: Logger;
    /** set on /v1 routes by the auth middleware */
    tenant: string;
    /** the tenant's runs, refs confined to its area (middleware/refs.ts) */
    runs: Runs;
  };
};

/** What the route modules get: the app's dependencies and the chunk runner they share. */
export interface RouteDeps extends AppDeps {
  chunks: ChunkRunner;
}
