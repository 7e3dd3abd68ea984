import { z } from 'zod';
import { LisaError } from '../errors.ts';
import type { ObjectStore } from './object-store.ts';
import { isValidRunId, runSpecKey } from './keys.ts';

/** How a run chooses what trains (DESIGN.md "method"). */
export const METHODS = ['lisa', 'lora', 'full'] as const;
export type Method = (typeof METHODS)[number];

/** Options that only one method reads, with their defaults (undefined: none); other methods refuse them. */
export const METHOD_DEFAULTS = {
  lisa: { activeLayers: 2, embedHead: 'always', layerProbabilities: undefined },
  lora: { loraRank: 8, loraAlpha: 16, loraDropout: 0, loraTargets: undefined },
} as const;

/**
 * What a user chooses when creating a run. One schema serves the CLI, the HTTP API (and its
 * OpenAPI document) and the stored run.json, so defaults live in exactly one place: the fields
 * every method reads carry zod defaults; a method's own options (METHOD_DEFAULTS) get theirs only
 * when the run uses that method, so run.json never shows an option the run ignores.
 */
export const RunConfigSchema = z
  .object({
    base: z.string().min(1).describe('base model of a Hugging Face layout: a directory, s3://bucket/prefix or hf://org/name[@revision]'),
    data: z.string().min(1).describe('training data: a .jsonl or text file, local path or s3://'),
    format: z.enum(['jsonl', 'text']).optional().describe('data format; inferred from the extension when absent'),
    fields: z.array(z.string().min(1)).min(2).optional().describe('JSONL fields: prompt fields..., response field'),
    template: z.string().optional().describe('prompt template with {field} placeholders'),
    seqLen: z.number().int().positive().optional().describe("tokens per example; default the model's context"),
    heldOut: z.number().int().min(0).default(0).describe('examples held out for evaluation'),
    method: z.enum(METHODS).default('lisa').describe('what trains: lisa (sampled blocks + embed/head), lora (adapters on every block), full (every unit)'),
    activeLayers: z.number().int().min(0).optional().describe('lisa: γ, middle blocks trained per period (default 2)'),
    period: z.number().int().positive().default(10).describe('K: steps per sampling period, and per chunk'),
    embedHead: z.enum(['always', 'never', 'sampled']).optional().describe('lisa: when embed and head train (default always)'),
    layerProbabilities: z.array(z.number().min(0)).optional().describe('lisa: per-block sampling weights {p_l}'),
    loraRank: z.number().int().positive().optional().describe('lora: rank r of every adapter (default 8)'),
    loraAlpha: z.number().positive().optional().describe('lora: alpha; adapters are scaled by alpha / r (default 16)'),
    loraDropout: z.number().min(0).lt(1).optional().describe("lora: dropout on the adapters' input (default 0)"),
    loraTargets: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('lora: module names to adapt, e.g. q_proj, v_proj (llama) or c_attn (gpt2); default every linear layer of the blocks'),
    optimizerState: z.enum(['restore', 'reset']).default('restore').describe('m and v of a re-sampled unit'),
    steps: z.number().int().positive().default(100).describe('total optimizer steps of the run'),
    batchSize: z.number().int().positive().default(8),
    gradAccum: z.number().int().positive().default(1).describe('micro-batches per optimizer step'),
    lr: z.number().positive().default(3e-4),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    warmupSteps: z.number().int().min(0).default(0),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
    weightDecay: z.number().min(0).default(0.01),
    decayNormsAndBiases: z.boolean().default(false),
    maxGradNorm: z.number().min(0).default(1.0).describe('global-norm clipping over the active units; 0 disables'),
    seed: z.number().int().min(0).default(0),
    maxCostUsd: z.number().positive().optional().describe('no chunk starts once the run has spent this much'),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const [method, options] of Object.entries(METHOD_DEFAULTS)) {
      if (c.method === method) continue;
      for (const key of Object.keys(options)) {
        if (c[key as keyof typeof c] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [key], message: `applies to method ${method} only; this run's method is ${c.method}` });
        }
      }
    }
  })
  .overwrite((c) => (c.method in METHOD_DEFAULTS ? { ...withoutUndefined(METHOD_DEFAULTS[c.method as keyof typeof METHOD_DEFAULTS]), ...c } : c));

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type RunConfigInput = z.input<typeof RunConfigSchema>;
export type RunConfig = z.output<typeof RunConfigSchema>;

/** The immutable run.json: the config with its defaults applied, and what the refs resolved to. */
export interface RunSpec {
  version: 1;
  id: string;
  createdAt: string;
  config: RunConfig;
  base: { sha256: string; arch: string; nLayers: number };
  data: { sha256: string; examples: number; heldOut: number };
}

export interface ConfigProblem {
  path: string;
  message: string;
}

export class InvalidRunConfigError extends LisaError {
  constructor(problems: ConfigProblem[]) {
    super('INVALID_RUN_CONFIG', `invalid run config: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
  }
}

export class RunNotFoundError extends LisaError {
  constructor(runId: string, storeUrl: string) {
    super('RUN_NOT_FOUND', `run '${runId}' not found in ${storeUrl}`, { runId });
  }
}

export class RunExistsError extends LisaError {
  constructor(runId: string, storeUrl: string) {
    super('RUN_EXISTS', `run '${runId}' already exists in ${storeUrl}`, { runId });
  }
}

export class InvalidRunIdError extends LisaError {
  constructor(runId: string) {
    super('INVALID_RUN_ID', `invalid run id '${runId}': expected 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit`);
  }
}

export function parseRunConfig(input: unknown): RunConfig {
  const parsed = RunConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidRunConfigError(parsed.error.issues.map((i) => ({ path: i.path.length ? i.path.join('.') : '(config)', message: i.message })));
  }
  return parsed.data;
}

export function newRunId(now: Date, random: () => number): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const suffix = Math.floor(random() * 0xffffff).toString(16).padStart(6, '0');
  return `run-${stamp}-${suffix}`;
}

export function checkRunId(runId: string): void {
  if (!isValidRunId(runId)) throw new InvalidRunIdError(runId);
}

/** Writes run.json with an exclusive create: a run id is claimed exactly once. */
export async function putRunSpec(store: ObjectStore, spec: RunSpec): Promise<void> {
  const body = new TextEncoder().encode(`${JSON.stringify(spec, null, 2)}\n`);
  if ((await store.createExclusive(runSpecKey(spec.id), body)) === 'exists') throw new RunExistsError(spec.id, store.url);
}

export async function readRunSpec(store: ObjectStore, runId: string): Promise<RunSpec> {
  checkRunId(runId);
  const head = await store.head(runSpecKey(runId));
  if (!head) throw new RunNotFoundError(runId, store.url);
  const bytes = await store.get(runSpecKey(runId));
  const spec = JSON.parse(new TextDecoder().decode(bytes)) as RunSpec;
  // run.json written before methods existed describes a LISA run
  spec.config.method ??= 'lisa';
  return spec;
}
