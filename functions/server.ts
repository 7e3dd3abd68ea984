import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { pino, type Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { acceleratorInUse, initEngine, openRuns, type StoreEnv } from '../core/index.ts';
import { createApp, TOKEN_HEADER, type LisaApp } from './app.ts';
import type { ServeConfig } from './config.ts';
import { createMetrics } from './metrics.ts';

/** The node adapter: the app on a port (and /ping, /healthz on PORT_HEALTH when it differs). */
export interface RunningServer {
  url: string;
  port: number;
  healthPort: number | null;
  /**
   * Graceful stop: refuse new connections and chunks, wait up to `graceMs` for running chunks to
   * commit and their responses to go out, then close everything. True when all chunks finished.
   */
  shutdown(graceMs: number): Promise<boolean>;
}

interface Timeouts {
  keepAliveSeconds: number;
  bodyTimeoutSeconds: number;
}

function listen(fetch: (req: Request) => Response | Promise<Response>, host: string, port: number, t: Timeouts): Promise<Server> {
  // outlive the load balancer's idle timeout, or it reuses a connection node just closed (502)
  const keepAliveTimeout = t.keepAliveSeconds * 1000;
  const headersTimeout = keepAliveTimeout + 1000;
  return new Promise((resolve, reject) => {
    const serverOptions = {
      keepAliveTimeout,
      headersTimeout,
      // A request's body (at most 64 KiB) must follow its headers within bodyTimeoutSeconds, or the
      // client gets 408 and the connection closes: a client trickling bytes holds no connection.
      // Node stops this clock once the request is in, so a chunk may still run for minutes.
      requestTimeout: headersTimeout + t.bodyTimeoutSeconds * 1000,
      // how often node checks those two clocks (default 30 s, far coarser than they are)
      connectionsCheckingInterval: 1000,
    };
    const server = serve({ fetch, hostname: host, port, serverOptions }, () => resolve(server as Server)) as Server;
    server.once('error', reject);
  });
}

export async function startServer(
  lisa: LisaApp,
  opts: { host: string; port: number; healthPort?: number | null; keepAliveSeconds?: number; bodyTimeoutSeconds?: number },
): Promise<RunningServer> {
  const timeouts = { keepAliveSeconds: opts.keepAliveSeconds ?? 5, bodyTimeoutSeconds: opts.bodyTimeoutSeconds ?? 30 };
  const server = await listen(lisa.app.fetch, opts.host, opts.port, timeouts);
  const port = (server.address() as AddressInfo).port;
  let health: Server | null = null;
  if (opts.healthPort !== undefined && opts.healthPort !== null) {
    const only = new Set(['/ping', '/healthz']);
    health = await listen((req) => (only.has(new URL(req.url).pathname) ? lisa.app.fetch(req) : new Response(null, { status: 404 })), opts.host, opts.healthPort, timeouts);
  }
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    healthPort: health ? (health.address() as AddressInfo).port : null,
    async shutdown(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const drained = await lisa.chunks.drain(graceMs);
      // responses of chunks that just committed need a moment to flush; then drop what is left
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
      server.closeAllConnections();
      health?.closeAllConnections();
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
      return drained;
    },
  };
}

/** JSON logs; secrets are redacted should any code path ever log a request's headers. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const header = TOKEN_HEADER.toLowerCase();
  return pino(
    {
      level,
      base: { service: 'lisa' },
      redact: {
        paths: ['req.headers.authorization', `req.headers["${header}"]`, 'headers.authorization', `headers["${header}"]`, 'authorization', 'token'],
        censor: '[redacted]',
      },
    },
    ...(destination ? [destination] : []),
  );
}

/**
 * `lisa serve`: builds the app from the config, listens at once (so /ping can say 204 while the
 * engine starts), starts the engine, then reports ready. Signals stop it gracefully.
 */
export async function runServer(config: ServeConfig, env: StoreEnv): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const runs = await openRuns(config.store, { env, cacheDir: config.cacheDir, log: (m) => logger.info(m) });
  let ready = false;
  const lisa = createApp({
    runs,
    refPrefixes: config.refPrefixes,
    tokens: config.tokens,
    sessionKey: config.sessionKey,
    pricing: { usdPerHour: config.pricing.usdPerHour },
    limits: {
      platformTimeoutSeconds: config.platformTimeoutSeconds,
      safetyMarginSeconds: config.safetyMarginSeconds,
      commitReserveSeconds: config.commitReserveSeconds,
    },
    clock: Date.now,
    logger,
    metrics: createMetrics(registry),
    isReady: () => ready,
  });
  const running = await startServer(lisa, {
    ...config,
    keepAliveSeconds: config.platformTimeoutSeconds === null ? undefined : config.platformTimeoutSeconds + 5,
  });
  logger.info(
    {
      url: running.url,
      healthPort: running.healthPort,
      store: runs.store.url,
      tenants: [...new Set(config.tokens.map((t) => t.tenant))],
      refs: [`${runs.store.url}/tenants/{tenant}/inputs/ and exports/`, ...config.refPrefixes],
      pricing: config.pricing,
      platformTimeoutSeconds: config.platformTimeoutSeconds,
    },
    'listening',
  );
  installSignalHandlers(running, logger, config.shutdownGraceSeconds);
  const backend = await initEngine({ backend: config.backend, log: (m) => logger.info(m) });
  ready = true;
  logger.info({ backend, accelerator: acceleratorInUse() }, 'ready');
  return running;
}

function installSignalHandlers(running: RunningServer, logger: Logger, graceSeconds: number): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting; uncommitted chunks are lost, committed ones are intact');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceSeconds }, 'shutting down: no new chunks, waiting for running ones to commit');
    running.shutdown(graceSeconds * 1000).then(
      (drained) => {
        logger.info({ drained }, drained ? 'all chunks finished; bye' : 'grace period over with chunks still running; they never committed, so nothing is half-written');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
