import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { engineMemory, type ChunkManifest } from '../core/index.ts';

/**
 * Prometheus metrics of one app, registered on the registry the caller passes (never prom-client's
 * global one, so two apps in one process — tests, blue/green — do not collide). The tenant label is
 * bounded by the configured token list.
 */
export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  chunks: Counter<'tenant' | 'outcome'>;
  chunkDuration: Histogram<'phase'>;
  chunksInFlight: Gauge;
  steps: Counter<'tenant'>;
  tokens: Counter<'tenant'>;
  bytes: Counter<'tenant' | 'direction'>;
  costUsd: Counter<'tenant'>;
  errors: Counter<'code'>;
  engineTensors: Gauge;
  engineBytes: Gauge;
}

export function createMetrics(registry: Registry): Metrics {
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: 'lisa_http_requests_total',
      help: 'HTTP requests by method, matched route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'lisa_http_request_duration_seconds',
      help: 'HTTP request duration by method and matched route',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.025, 0.1, 0.5, 2, 10, 30, 120, 600, 1800],
      registers,
    }),
    chunks: new Counter({
      name: 'lisa_chunks_total',
      help: 'chunk requests by outcome: committed, or the error code that stopped them',
      labelNames: ['tenant', 'outcome'],
      registers,
    }),
    chunkDuration: new Histogram({
      name: 'lisa_chunk_duration_seconds',
      help: 'seconds of committed chunks by phase (wall, load, train, upload)',
      labelNames: ['phase'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers,
    }),
    chunksInFlight: new Gauge({
      name: 'lisa_chunks_in_flight',
      help: 'chunks running or queued behind another chunk of the same run',
      registers,
    }),
    steps: new Counter({ name: 'lisa_steps_total', help: 'optimizer steps committed', labelNames: ['tenant'], registers }),
    tokens: new Counter({ name: 'lisa_tokens_total', help: 'training tokens committed', labelNames: ['tenant'], registers }),
    bytes: new Counter({
      name: 'lisa_store_bytes_total',
      help: 'object store payload bytes moved by committed chunks (in = downloaded, out = uploaded)',
      labelNames: ['tenant', 'direction'],
      registers,
    }),
    costUsd: new Counter({
      name: 'lisa_cost_usd_total',
      help: 'metered cost of committed chunks in USD (wall seconds x configured price)',
      labelNames: ['tenant'],
      registers,
    }),
    errors: new Counter({ name: 'lisa_errors_total', help: 'error responses by stable error code', labelNames: ['code'], registers }),
    // read at scrape time: between chunks both must come back to the same values (no leaked tensors)
    engineTensors: new Gauge({
      name: 'lisa_engine_tensors',
      help: 'tfjs tensors alive in the engine: between chunks it must stay flat',
      registers,
      collect() {
        this.set(engineMemory().tensors);
      },
    }),
    engineBytes: new Gauge({
      name: 'lisa_engine_bytes',
      help: 'bytes held by live tfjs tensors',
      registers,
      collect() {
        this.set(engineMemory().bytes);
      },
    }),
  };
}

export function recordCommit(m: Metrics, tenant: string, manifest: ChunkManifest): void {
  m.chunks.inc({ tenant, outcome: 'committed' });
  m.steps.inc({ tenant }, manifest.globalStep - manifest.startStep);
  m.tokens.inc({ tenant }, manifest.tokens);
  m.bytes.inc({ tenant, direction: 'in' }, manifest.bytes.in);
  m.bytes.inc({ tenant, direction: 'out' }, manifest.bytes.out);
  m.costUsd.inc({ tenant }, manifest.costUsd);
  for (const phase of ['wall', 'load', 'train', 'upload'] as const) m.chunkDuration.observe({ phase }, manifest.seconds[phase]);
}
