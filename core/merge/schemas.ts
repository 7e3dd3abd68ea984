/**
 * Option bodies of exports and compositions over HTTP (`POST /v1/runs/{id}/exports`,
 * `POST /v1/compositions`): request validation and the OpenAPI document share them.
 * Sizes are bytes or strings like "2GB" (see parseSize); parsed bodies carry bytes, so they map
 * straight onto ExportRunOptions / ComposeOptions.
 */
import { z } from 'zod';
import { EXPORT_DTYPES } from './writer.ts';
import { MERGE_METHODS } from './kernels.ts';
import { parseSize } from './export.ts';

const Dtype = z.enum(EXPORT_DTYPES).default('base').describe('tensor dtype: base keeps each tensor\'s dtype in the base file');
const ShardSize = z
  .union([z.number().int().positive(), z.string().min(1)])
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    try {
      return parseSize(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  })
  .optional()
  .describe('tensor bytes per shard, e.g. 2000000000 or "2GB"; default 2GB');
const Out = z.string().min(1).describe('output: a directory or s3://bucket/prefix (for a delta: a file or s3://bucket/key)');

export const ExportRequestSchema = z
  .object({
    out: Out,
    at: z.number().int().min(-1).optional().describe('committed seq to export; default the head; -1 the base'),
    dtype: Dtype,
    shardSize: ShardSize,
    delta: z.boolean().default(false).describe('write only the units the run changed, as one safetensors file'),
    adapter: z.boolean().default(false).describe("a LoRA run's adapters as Hugging Face PEFT reads them (adapter_config.json, adapter_model.safetensors)"),
  })
  .strict();

export const CompositionRequestSchema = z
  .object({
    base: z.string().min(1).describe('base model directory or s3:// prefix; every run must have been created on it'),
    runs: z
      .array(
        z
          .object({
            id: z.string().min(1),
            weight: z.number().finite().default(1),
            at: z.number().int().min(-1).optional().describe('committed seq; default the head'),
          })
          .strict(),
      )
      .min(1),
    method: z.enum(MERGE_METHODS).describe('linear | task-arithmetic | ties | dare'),
    density: z.number().gt(0).max(1).optional().describe('ties and dare: fraction of each task vector kept'),
    lambda: z.number().finite().default(1).describe('scale of the merged task vector'),
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(0).describe("dare's random drops"),
    consensus: z.boolean().default(false).describe('dare: TIES sign consensus (dare_ties)'),
    out: Out,
    dtype: Dtype,
    shardSize: ShardSize,
  })
  .strict();

export type ExportRequest = z.output<typeof ExportRequestSchema>;
export type CompositionRequest = z.output<typeof CompositionRequestSchema>;
