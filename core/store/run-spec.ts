import { z } from 'zod';
import { LisaError } from '../errors.ts';
import type { ObjectStore } from './object-store.ts';
import { isValidRunId, runSpecKey } from './keys.ts';
import { encodeRecord, getRecord } from './records.ts';

/** How a run chooses what trains (docs/design-notes.md "Methods"). */
export const METHODS = ['lisa', 'lora', 'full'] as const;
export type Method = (typeof METHODS)[number];

export const SAMPLERS = ['uniform', 'weighted', 'outlier', 'grad-norm'] as const;
export type SamplerKind = (typeof SAMPLERS)[number];

/** The method each method-specific option belongs to; naming it for another method is an error. */
const METHOD_OPTIONS = {
  activeLayers: 'lisa',
  embedHead: 'lisa',
  sampler: 'lisa',
  layerProbabilities: 'lisa',
  outlierThreshold: 'lisa',
  calibrationBatches: 'lisa',
  gradNormDecay: 'lisa',
  gradNormFloor: 'lisa',
  loraRank: 'lora',
  loraAlpha: 'lora',
  loraDropout: 'lora',
  loraTargets: 'lora',
} as const satisfies Record<string, Method>;

/** Defaults of the method options, filled in for the run's own method (loraTargets: every target of the base's arch, at creation). */
export const METHOD_DEFAULTS = {
  lisa: { activeLayers: 2, embedHead: 'always' },
  lora: { loraRank: 8, loraAlpha: 16, loraDropout: 0 },
} as const;

/** The sampler each sampler option belongs to; naming it for another sampler is an error. */
const SAMPLER_OPTIONS = {
  layerProbabilities: 'weighted',
  outlierThreshold: 'outlier',
  calibrationBatches: 'outlier',
  gradNormDecay: 'grad-norm',
  gradNormFloor: 'grad-norm',
} as const satisfies Record<string, SamplerKind>;

/** Defaults of the sampler options, filled in for the run's own sampler (docs/design-notes.md says why). */
export const SAMPLER_DEFAULTS = {
  outlierThreshold: 5,
  calibrationBatches: 1,
  gradNormDecay: 0.9,
  gradNormFloor: 0.2,
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
    format: z.enum(['jsonl', 'text', 'chat']).optional().describe('data format; inferred from the extension when absent (chat: "messages" or "prompt"/"completion" JSONL)'),
    fields: z.array(z.string().min(1)).min(2).optional().describe('JSONL fields: prompt fields..., response field'),
    template: z.string().optional().describe('prompt template with {field} placeholders'),
    chatTemplate: z.string().optional().describe("chat: a Jinja chat template used instead of the base's tokenizer_config.json chat_template"),
    seqLen: z.number().int().positive().optional().describe("tokens per example; default the model's context"),
    heldOut: z.number().int().min(0).default(0).describe('examples held out for evaluation'),
    method: z.enum(METHODS).default('lisa').describe('what trains: lisa (sampled blocks + embed/head), lora (adapters on every block), full (every unit)'),
    activeLayers: z.number().int().min(0).optional().describe(`lisa: γ, middle blocks trained per period (default ${METHOD_DEFAULTS.lisa.activeLayers})`),
    period: z.number().int().positive().default(10).describe('K: steps per sampling period, and per chunk'),
    embedHead: z.enum(['always', 'never', 'sampled']).optional().describe(`lisa: when embed and head train (default ${METHOD_DEFAULTS.lisa.embedHead})`),
    sampler: z
      .enum(SAMPLERS)
      .optional()
      .describe("lisa: how a period draws its blocks; default 'weighted' when layerProbabilities is given, else 'uniform'"),
    layerProbabilities: z.array(z.number().min(0)).optional().describe("lisa, sampler 'weighted': per-block sampling weights {p_l}"),
    outlierThreshold: z
      .number()
      .positive()
      .optional()
      .describe(`lisa, sampler 'outlier': M, an entry is an outlier above M times its block's mean |W|·‖X‖ (default ${SAMPLER_DEFAULTS.outlierThreshold})`),
    calibrationBatches: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(`lisa, sampler 'outlier': training batches run through the base to measure ‖X‖ (default ${SAMPLER_DEFAULTS.calibrationBatches})`),
    gradNormDecay: z
      .number()
      .min(0)
      .lt(1)
      .optional()
      .describe(`lisa, sampler 'grad-norm': β of the per-block moving average of gradient norms (default ${SAMPLER_DEFAULTS.gradNormDecay})`),
    gradNormFloor: z
      .number()
      .gt(0)
      .max(1)
      .optional()
      .describe(`lisa, sampler 'grad-norm': ε, the share spread evenly so every block keeps ≥ ε/N (default ${SAMPLER_DEFAULTS.gradNormFloor})`),
    loraRank: z.number().int().positive().optional().describe(`lora: rank r of every adapter (default ${METHOD_DEFAULTS.lora.loraRank})`),
    loraAlpha: z.number().positive().optional().describe(`lora: alpha; adapters are scaled by alpha / r (default ${METHOD_DEFAULTS.lora.loraAlpha})`),
    loraDropout: z.number().min(0).lt(1).optional().describe(`lora: dropout on the adapters' input (default ${METHOD_DEFAULTS.lora.loraDropout})`),
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
  .strict();

export type RunConfigInput = z.input<typeof RunConfigSchema>;
type ParsedConfig = z.output<typeof RunConfigSchema>;
/** A LISA run's config: γ, embed/head and the sampler always named, the sampler's options filled with their defaults. */
export type LisaConfig = ParsedConfig & { method: 'lisa'; activeLayers: number; embedHead: NonNullable<ParsedConfig['embedHead']>; sampler: SamplerKind };
/** A LoRA run's config: rank, alpha and dropout filled with their defaults, the targets written out at creation. */
export type LoraRunConfig = ParsedConfig & { method: 'lora'; loraRank: number; loraAlpha: number; loraDropout: number };
/** A parsed config: only the run's own method's options, with their defaults. */
export type RunConfig = LisaConfig | LoraRunConfig | (ParsedConfig & { method: 'full' });

/** The immutable run.json: the config with its defaults applied, and what the refs resolved to. */
export interface RunSpec<C extends RunConfig = RunConfig> {
  /** 2: written with a checksum (records.ts); 1: written before checksums */
  version: 1 | 2;
  id: string;
  createdAt: string;
  config: C;
  /** `files`: the sha256 of each weight file (absent in runs created before it was recorded), so a changed file is named */
  base: { sha256: string; arch: string; nLayers: number; files?: Record<string, string> };
  data: { sha256: string; examples: number; heldOut: number };
  /** lisa sampler 'outlier': what calibration measured, one ratio D_l per block (core/lisa/outlier.ts) */
  outlier?: OutlierCalibration;
}

export interface OutlierCalibration {
  /** D_l per block, in block order; the draw weights p_l ∝ D_l */
  ratios: number[];
  /** token positions run through the base (padding excluded) */
  tokens: number;
  seconds: number;
}

export interface ConfigProblem {
  path: string;
  message: string;
}

export class InvalidRunConfigError extends LisaError {
  constructor(problems: ConfigProblem[]) {
    super('RUN_CONFIG_INVALID', `invalid run config: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`, { problems });
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
    super('RUN_ID_INVALID', `invalid run id '${runId}': expected 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit`);
  }
}

export function parseRunConfig(input: unknown): RunConfig {
  const parsed = RunConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new InvalidRunConfigError(parsed.error.issues.map((i) => ({ path: i.path.length ? i.path.join('.') : '(config)', message: i.message })));
  }
  return withMethod(parsed.data);
}

/**
 * Fills the defaults of the run's method's options; an option of another method is
 * RUN_CONFIG_INVALID naming it. run.json written before methods existed names none: a LISA run.
 */
export function withMethod(config: Omit<ParsedConfig, 'method'> & { method?: Method }): RunConfig {
  const method = config.method ?? 'lisa';
  const problems: ConfigProblem[] = [];
  for (const [option, owner] of Object.entries(METHOD_OPTIONS)) {
    if (owner !== method && config[option as keyof typeof METHOD_OPTIONS] !== undefined) {
      problems.push({ path: option, message: `applies to method ${owner} only; this run's method is ${method}` });
    }
  }
  if (problems.length > 0) throw new InvalidRunConfigError(problems);
  if (method === 'lisa') {
    const d = METHOD_DEFAULTS.lisa;
    return withSampler({ ...config, method, activeLayers: config.activeLayers ?? d.activeLayers, embedHead: config.embedHead ?? d.embedHead });
  }
  if (method === 'lora') {
    const d = METHOD_DEFAULTS.lora;
    return { ...config, method, loraRank: config.loraRank ?? d.loraRank, loraAlpha: config.loraAlpha ?? d.loraAlpha, loraDropout: config.loraDropout ?? d.loraDropout };
  }
  return { ...config, method };
}

/**
 * Names a LISA run's sampler (runs created before samplers existed have none: 'weighted' when they
 * carry layerProbabilities, else 'uniform', which is what they drew) and fills its options'
 * defaults. An option of another sampler, or 'weighted' without its probabilities, is
 * RUN_CONFIG_INVALID.
 */
function withSampler(config: Omit<LisaConfig, 'sampler'> & { sampler?: SamplerKind }): LisaConfig {
  const sampler = config.sampler ?? (config.layerProbabilities ? 'weighted' : 'uniform');
  const problems: ConfigProblem[] = [];
  for (const [option, owner] of Object.entries(SAMPLER_OPTIONS)) {
    if (owner !== sampler && config[option as keyof typeof SAMPLER_OPTIONS] !== undefined) {
      problems.push({ path: option, message: `belongs to sampler '${owner}', but this run's sampler is '${sampler}'` });
    }
  }
  if (sampler === 'weighted' && !config.layerProbabilities) problems.push({ path: 'layerProbabilities', message: "sampler 'weighted' needs layerProbabilities" });
  if (sampler === 'outlier' && config.embedHead === 'sampled') {
    problems.push({ path: 'embedHead', message: "sampler 'outlier' scores blocks only; use embedHead 'always' or 'never'" });
  }
  if (problems.length > 0) throw new InvalidRunConfigError(problems);
  const d = SAMPLER_DEFAULTS;
  if (sampler === 'outlier') {
    return { ...config, sampler, outlierThreshold: config.outlierThreshold ?? d.outlierThreshold, calibrationBatches: config.calibrationBatches ?? d.calibrationBatches };
  }
  if (sampler === 'grad-norm') {
    return { ...config, sampler, gradNormDecay: config.gradNormDecay ?? d.gradNormDecay, gradNormFloor: config.gradNormFloor ?? d.gradNormFloor };
  }
  return { ...config, sampler };
}

export function newRunId(now: Date, random: () => number): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const suffix = Math.floor(random() * 0xffffff).toString(16).padStart(6, '0');
  return `run-${stamp}-${suffix}`;
}

export function checkRunId(runId: string): void {
  if (!isValidRunId(runId)) throw new InvalidRunIdError(runId);
}

/** The run.json format this version writes: with a checksum. */
export const RUN_SPEC_VERSION = 2;

const Count = z.number().int().min(0);
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest');

/** What a stored run.json must hold; its config is checked by the schema that made it. */
const RunSpecSchema = z.strictObject({
  version: z.union([z.literal(1), z.literal(2)]),
  id: z.string(),
  createdAt: z.iso.datetime(),
  config: RunConfigSchema,
  base: z.strictObject({ sha256: Sha256Hex, arch: z.string().min(1), nLayers: z.number().int().positive(), files: z.record(z.string(), Sha256Hex).optional() }),
  data: z.strictObject({ sha256: Sha256Hex, examples: Count, heldOut: Count }),
  outlier: z.strictObject({ ratios: z.array(z.number().min(0)), tokens: Count, seconds: z.number().min(0) }).optional(),
});

/** Writes run.json with an exclusive create: a run id is claimed exactly once. */
export async function putRunSpec(store: ObjectStore, spec: RunSpec): Promise<void> {
  if ((await store.createExclusive(runSpecKey(spec.id), encodeRecord(spec, 2))) === 'exists') throw new RunExistsError(spec.id, store.url);
}

export async function readRunSpec(store: ObjectStore, runId: string): Promise<RunSpec> {
  checkRunId(runId);
  const rules = {
    schema: RunSpecSchema,
    needsChecksum: (s: Record<string, unknown>) => s.version !== 1,
    check: (s: z.output<typeof RunSpecSchema>) => {
      if (s.id !== runId) return `it describes run '${s.id}', not '${runId}'`;
      try {
        withMethod(s.config);
      } catch (err) {
        return (err as Error).message;
      }
      return null;
    },
  };
  const spec = await getRecord(store, runSpecKey(runId), rules, () => new RunNotFoundError(runId, store.url));
  return { ...spec, config: withMethod(spec.config) };
}
