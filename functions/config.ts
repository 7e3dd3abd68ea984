import { readFile } from 'node:fs/promises';
import { LisaError, parseBackend, type BackendName } from '../core/index.ts';
import { parseTokenConfig, type TokenEntry } from './auth.ts';

/**
 * Everything the server reads from its environment, read in one place so the app itself sees no
 * process globals. docs/deploy.md lists the variables; keep the two in step.
 */
export interface ServeConfig {
  store: string;
  host: string;
  port: number;
  /** RunPod load balancing checks /ping on PORT_HEALTH; null = the main port */
  healthPort: number | null;
  tokens: TokenEntry[];
  pricing: { gpuType: string | null; usdPerHour: number };
  /** the platform's per-request limit (RunPod LB ~330 s, Modal web 150 s); null = none */
  platformTimeoutSeconds: number | null;
  /** kept free under the platform limit for the response to get out */
  safetyMarginSeconds: number;
  /** seconds runChunk keeps for upload and commit; undefined = its default */
  commitReserveSeconds: number | undefined;
  shutdownGraceSeconds: number;
  /** a request body must arrive within this many seconds after its headers (slow clients get 408) */
  bodyTimeoutSeconds: number;
  /** LISA_REF_PREFIXES: prefixes every tenant may name refs under besides its own area, `{tenant}` replaced */
  refPrefixes: string[];
  logLevel: string;
  /** LISA_BACKEND; undefined = the best one installed */
  backend: BackendName | undefined;
  /** LISA_CACHE_DIR: local copies of s3:// and hf:// bases; undefined = none */
  cacheDir: string | undefined;
  /** LISA_SESSION_KEY: signs dashboard sessions, the same on every instance; undefined = random per process */
  sessionKey: Buffer | undefined;
}

export class InvalidConfigError extends LisaError {
  constructor(variable: string, problem: string) {
    super('SERVER_CONFIG_INVALID', `${variable}: ${problem}`, { variable });
  }
}

type Env = Record<string, string | undefined>;

function num(env: Env, name: string, opts: { min: number; integer?: boolean }): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < opts.min || (opts.integer && !Number.isInteger(n))) {
    throw new InvalidConfigError(name, `'${raw}' is not ${opts.integer ? 'an integer' : 'a number'} >= ${opts.min}`);
  }
  return n;
}

/** Price per hour: LISA_PRICE_PER_HOUR_USD wins; else LISA_GPU_PRICES_USD[LISA_GPU_TYPE]; else 0. */
function pricing(env: Env): ServeConfig['pricing'] {
  const gpuType = env.LISA_GPU_TYPE?.trim() || null;
  const flat = num(env, 'LISA_PRICE_PER_HOUR_USD', { min: 0 });
  if (flat !== undefined) return { gpuType, usdPerHour: flat };
  const table = env.LISA_GPU_PRICES_USD;
  if (table === undefined || table.trim() === '') return { gpuType, usdPerHour: 0 };
  let prices: unknown;
  try {
    prices = JSON.parse(table);
  } catch {
    throw new InvalidConfigError('LISA_GPU_PRICES_USD', 'expected a JSON object of GPU type -> USD per hour, e.g. {"H100":2.99}');
  }
  if (typeof prices !== 'object' || prices === null || Array.isArray(prices)) {
    throw new InvalidConfigError('LISA_GPU_PRICES_USD', 'expected a JSON object of GPU type -> USD per hour, e.g. {"H100":2.99}');
  }
  if (gpuType === null) throw new InvalidConfigError('LISA_GPU_TYPE', 'required with LISA_GPU_PRICES_USD: which entry is this machine?');
  const price = (prices as Record<string, unknown>)[gpuType];
  if (typeof price !== 'number' || !(price >= 0)) {
    throw new InvalidConfigError('LISA_GPU_PRICES_USD', `no non-negative price for LISA_GPU_TYPE=${gpuType}; types listed: ${Object.keys(prices).join(', ')}`);
  }
  return { gpuType, usdPerHour: price };
}

async function tokens(env: Env, read: (path: string) => Promise<string>): Promise<TokenEntry[]> {
  const entries: TokenEntry[] = [];
  if (env.LISA_TOKENS?.trim()) entries.push(...parseTokenConfig(env.LISA_TOKENS, 'LISA_TOKENS'));
  const file = env.LISA_TOKENS_FILE?.trim();
  if (file) {
    let text: string;
    try {
      text = await read(file);
    } catch (err) {
      throw new InvalidConfigError('LISA_TOKENS_FILE', `cannot read ${file}: ${(err as Error).message}`);
    }
    entries.push(...parseTokenConfig(text, `LISA_TOKENS_FILE ${file}`));
  }
  if (entries.length === 0) {
    throw new InvalidConfigError('LISA_TOKENS', 'no bearer tokens configured: set LISA_TOKENS or LISA_TOKENS_FILE (`lisa token hash --tenant T` prints an entry)');
  }
  return entries;
}

export async function configFromEnv(
  env: Env,
  flags: { store?: string; port?: number; host?: string } = {},
  read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): Promise<ServeConfig> {
  const store = flags.store ?? env.LISA_STORE;
  if (!store) throw new InvalidConfigError('LISA_STORE', 'no store: pass --store or set LISA_STORE (a directory or s3://bucket/prefix)');
  const platformTimeoutSeconds = num(env, 'LISA_PLATFORM_TIMEOUT_SECONDS', { min: 1 }) ?? null;
  const safetyMarginSeconds = num(env, 'LISA_DEADLINE_MARGIN_SECONDS', { min: 0 }) ?? 15;
  if (platformTimeoutSeconds !== null && platformTimeoutSeconds <= safetyMarginSeconds) {
    throw new InvalidConfigError(
      'LISA_PLATFORM_TIMEOUT_SECONDS',
      `${platformTimeoutSeconds} s leaves no time for a chunk after the ${safetyMarginSeconds} s margin (LISA_DEADLINE_MARGIN_SECONDS)`,
    );
  }
  const port = flags.port ?? num(env, 'PORT', { min: 0, integer: true }) ?? 8080;
  const healthPort = num(env, 'PORT_HEALTH', { min: 0, integer: true }) ?? null;
  const backend = parseBackend(env.LISA_BACKEND);
  return {
    store,
    host: flags.host ?? env.HOST ?? '127.0.0.1',
    port,
    healthPort: healthPort === port ? null : healthPort,
    tokens: await tokens(env, read),
    pricing: pricing(env),
    platformTimeoutSeconds,
    safetyMarginSeconds,
    commitReserveSeconds: num(env, 'LISA_COMMIT_RESERVE_SECONDS', { min: 0 }),
    shutdownGraceSeconds: num(env, 'LISA_SHUTDOWN_GRACE_SECONDS', { min: 0 }) ?? 25,
    bodyTimeoutSeconds: num(env, 'LISA_BODY_TIMEOUT_SECONDS', { min: 1 }) ?? 30,
    refPrefixes: env.LISA_REF_PREFIXES?.split(',').map((s) => s.trim()).filter(Boolean) ?? [],
    logLevel: env.LISA_LOG_LEVEL ?? 'info',
    backend,
    cacheDir: env.LISA_CACHE_DIR?.trim() || undefined,
    sessionKey: sessionKey(env),
  };
}

function sessionKey(env: Env): Buffer | undefined {
  const key = env.LISA_SESSION_KEY?.trim();
  if (!key) return undefined;
  if (key.length < 32) throw new InvalidConfigError('LISA_SESSION_KEY', `${key.length} characters is too short a key: use at least 32 (e.g. openssl rand -hex 32)`);
  return Buffer.from(key, 'utf8');
}
