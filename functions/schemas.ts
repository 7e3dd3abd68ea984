import { z } from '@hono/zod-openapi';
import { CompositionRequestSchema, ExportRequestSchema, METHODS, RunConfigSchema } from '../core/index.ts';

/**
 * Request and response shapes of the HTTP API. Run creation reuses core's RunConfigSchema (and
 * exports/compositions core/merge's bodies), so the CLI, the stored run.json, request validation
 * and the OpenAPI document share one definition; responses are core's views (core/runs/status.ts),
 * which test/functions/openapi.test.ts holds to these schemas.
 *
 * Core's schemas are named with zod's own .meta({ id }) rather than .openapi(): zod 4 copies
 * prototype methods onto each schema when it is built, so a schema created before
 * @hono/zod-openapi was first imported has no .openapi method.
 */
export const RunConfigBody = RunConfigSchema.meta({ id: 'RunConfig' });
export const ExportRequestBody = ExportRequestSchema.meta({ id: 'ExportRequest' });
export const CompositionRequestBody = CompositionRequestSchema.meta({ id: 'CompositionRequest' });

export const ChunkRequestSchema = z
  .object({
    deadlineSeconds: z
      .number()
      .positive()
      .optional()
      .openapi({ description: 'wall-clock budget of this call; capped by the platform limit minus a safety margin' }),
  })
  .strict()
  .openapi('ChunkRequest');

export const RunIdParam = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'run-20250101120000-a1b2c3' }),
});

export const ChunkListQuery = z.object({
  from: z.coerce.number().int().min(0).default(0).openapi({ description: 'first seq to return' }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const Bytes = z.object({ in: z.number().int(), out: z.number().int() });

export const ChunkSummarySchema = z
  .object({
    runId: z.string(),
    seq: z.number().int(),
    createdAt: z.string(),
    method: z.enum(METHODS),
    period: z.number().int(),
    activeUnits: z.array(z.string()),
    probabilities: z
      .array(z.number())
      .nullable()
      .openapi({ description: "lisa: the weights the period's units were drawn from, one per candidate unit (null: a lora or full run, which draws nothing, or written before samplers)" }),
    unitGradNorms: z
      .record(z.string(), z.number())
      .nullable()
      .openapi({ description: "each active unit's gradient norm before clipping, mean over the chunk's steps (null: written before samplers)" }),
    unitUpdateNorms: z
      .record(z.string(), z.number())
      .nullable()
      .openapi({ description: "L2 norm of each active unit's weight change over the chunk (null: written before update norms were recorded)" }),
    startStep: z.number().int(),
    globalStep: z.number().int(),
    steps: z.number().int().openapi({ description: 'optimizer steps this chunk trained' }),
    losses: z.array(z.number()),
    learningRates: z.array(z.number()),
    tokens: z.number().int(),
    heldOut: z.object({ loss: z.number(), perplexity: z.number() }).nullable(),
    stoppedBy: z.enum(['period', 'deadline', 'aborted', 'run-complete']),
    cursor: z.object({ epoch: z.number().int(), index: z.number().int() }),
    seconds: z.object({ wall: z.number(), load: z.number(), train: z.number(), upload: z.number(), accelerator: z.number() }),
    bytes: Bytes,
    costUsd: z.number(),
    totals: z.object({
      steps: z.number().int(),
      tokens: z.number().int(),
      seconds: z.number(),
      costUsd: z.number(),
      bytesIn: z.number().int(),
      bytesOut: z.number().int(),
    }),
  })
  .openapi('ChunkSummary');

export const RunSpecSchema = z
  .object({
    version: z.union([z.literal(1), z.literal(2)]).openapi({ description: 'run.json format: 2 carries a checksum, 1 was written before checksums' }),
    id: z.string(),
    createdAt: z.string(),
    config: RunConfigBody,
    base: z.object({
      sha256: z.string(),
      arch: z.string(),
      nLayers: z.number().int(),
      files: z.record(z.string(), z.string()).optional().openapi({ description: "each weight file's sha256 (absent for runs created before it was recorded)" }),
    }),
    data: z.object({ sha256: z.string(), examples: z.number().int(), heldOut: z.number().int() }),
    outlier: z
      .object({ ratios: z.array(z.number()), tokens: z.number().int(), seconds: z.number() })
      .optional()
      .openapi({ description: "sampler 'outlier': each block's outlier ratio measured at creation; blocks are drawn with p ∝ ratio" }),
  })
  .openapi('RunSpec');

export const RunTotalsSchema = z
  .object({ steps: z.number().int(), tokens: z.number().int(), seconds: z.number(), costUsd: z.number(), bytes: Bytes })
  .openapi('RunTotals');

export const RunStatusSchema = RunSpecSchema.extend({
  head: ChunkSummarySchema.nullable().openapi({ description: 'the latest committed chunk; null before the first' }),
  totals: RunTotalsSchema,
  complete: z.boolean().openapi({ description: 'all configured steps are trained' }),
}).openapi('RunStatus');

export const ChunkListSchema = z
  .object({
    chunks: z.array(ChunkSummarySchema),
    next: z.number().int().nullable().openapi({ description: 'the `from` of the next page; null on the last' }),
  })
  .openapi('ChunkList');

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'RUN_NOT_FOUND' }),
      message: z.string(),
      requestId: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .openapi('Error');

export const HealthSchema = z
  .object({ status: z.literal('ok'), ready: z.boolean(), draining: z.boolean(), chunksInFlight: z.number().int() })
  .openapi('Health');

const WrittenFiles = {
  out: z.string().openapi({ description: 'absolute directory or store URL written' }),
  files: z.array(z.string()),
  bytes: z.number().int(),
  sha256s: z.record(z.string(), z.string()),
  seconds: z.number(),
};

export const ExportSummarySchema = z
  .object({
    ...WrittenFiles,
    runId: z.string(),
    seq: z.number().int().openapi({ description: 'the seq exported; -1 for the base' }),
    units: z.array(z.string()).openapi({ description: 'units taken from the run rather than the base' }),
  })
  .openapi('ExportSummary');

export const CompositionSummarySchema = z
  .object({
    ...WrittenFiles,
    method: z.string(),
    runs: z.array(z.object({ runId: z.string(), seq: z.number().int(), weight: z.number() })),
    units: z.array(z.string()).openapi({ description: 'units computed by the merge; all others are the base' }),
  })
  .openapi('CompositionSummary');
