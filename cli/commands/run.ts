import { Command } from 'commander';
import { readChatTemplate, type RunConfigInput } from '../../core/index.ts';
import { intArg, numberArg } from '../args.ts';
import { engineFromEnv, runsFromEnv } from '../context.ts';

interface CreateOptions {
  store: string;
  base: string;
  data: string;
  format?: 'jsonl' | 'text' | 'chat';
  chatTemplate?: string;
  fields?: string;
  template?: string;
  seqLen?: number;
  heldOut?: number;
  method?: 'lisa' | 'lora' | 'full';
  layers?: number;
  period?: number;
  embedHead?: 'always' | 'never' | 'sampled';
  sampler?: RunConfigInput['sampler'];
  layerProbabilities?: string;
  outlierThreshold?: number;
  calibrationBatches?: number;
  gradNormDecay?: number;
  gradNormFloor?: number;
  optimizerState?: 'restore' | 'reset';
  loraRank?: number;
  loraAlpha?: number;
  loraDropout?: number;
  loraTargets?: string;
  steps?: number;
  batch?: number;
  gradAccum?: number;
  lr?: number;
  schedule?: 'cosine' | 'linear' | 'constant';
  warmup?: number;
  weightDecay?: number;
  maxGradNorm?: number;
  seed?: number;
  maxCost?: number;
  id?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const run = program.command('run').description('create fine-tuning runs (see also: chunk, status)');
  run
    .command('create')
    .description('create a run: validates the base and the data, writes run.json, prints the run id')
    .requiredOption('--store <url>', 'where runs live: a directory or s3://bucket/prefix')
    .requiredOption('--base <ref>', 'base model (Hugging Face layout): directory, s3:// prefix or hf://org/name[@revision]')
    .requiredOption('--data <ref>', 'training data: .jsonl or text file, or s3:// key')
    .option('--format <format>', 'jsonl | text | chat (default: jsonl or text from the extension)')
    .option('--chat-template <file>', "chat: a Jinja chat template instead of the base's tokenizer_config.json one (stored in run.json)")
    .option('--fields <list>', 'JSONL fields, prompt fields then the response field, e.g. question,answer')
    .option('--template <text>', 'prompt template with {field} placeholders')
    .option('--seq-len <n>', 'tokens per example (default: the model context)', intArg())
    .option('--held-out <n>', 'examples held out for evaluation', intArg())
    .option('--method <method>', 'lisa | lora | full: what trains (default lisa)')
    .option('--layers <γ>', 'lisa: middle blocks trained per period', intArg())
    .option('--period <K>', 'steps per sampling period', intArg())
    .option('--embed-head <mode>', 'lisa: always | never | sampled, when embed and head train')
    .option('--sampler <kind>', 'lisa: uniform | weighted | outlier | grad-norm, how a period draws its blocks (default uniform)')
    .option('--layer-probabilities <list>', 'lisa sampler weighted: per-block sampling weights, comma separated')
    .option('--outlier-threshold <M>', 'lisa sampler outlier: an entry is an outlier above M times its block mean', numberArg())
    .option('--calibration-batches <n>', 'lisa sampler outlier: training batches run through the base at creation', intArg())
    .option('--grad-norm-decay <β>', 'lisa sampler grad-norm: decay of the per-block gradient-norm average', numberArg())
    .option('--grad-norm-floor <ε>', 'lisa sampler grad-norm: share spread evenly so no block starves', numberArg())
    .option('--optimizer-state <policy>', 'restore | reset: AdamW moments of a re-sampled unit')
    .option('--lora-rank <r>', 'lora: adapter rank', intArg())
    .option('--lora-alpha <alpha>', 'lora: adapters scaled by alpha / r', numberArg())
    .option('--lora-dropout <p>', "lora: dropout on the adapters' input", numberArg())
    .option('--lora-targets <list>', 'lora: module names, comma separated (default every linear layer of the blocks)')
    .option('--steps <n>', 'total optimizer steps', intArg())
    .option('--batch <n>', 'examples per micro-batch', intArg())
    .option('--grad-accum <n>', 'micro-batches per step', intArg())
    .option('--lr <rate>', 'peak learning rate', numberArg())
    .option('--schedule <kind>', 'cosine | linear | constant')
    .option('--warmup <steps>', 'warmup steps', intArg())
    .option('--weight-decay <wd>', 'decoupled weight decay', numberArg())
    .option('--max-grad-norm <n>', 'global-norm clipping (0 disables)', numberArg())
    .option('--seed <n>', 'seed for sampling and shuffling', intArg())
    .option('--max-cost <usd>', 'budget: no chunk starts once this much is spent', numberArg())
    .option('--id <runId>', 'choose the run id (default: generated)')
    .option('--json', 'print the run spec as JSON')
    .action(async (o: CreateOptions) => {
      const runs = await runsFromEnv(o.store, { quiet: o.json });
      // the outlier sampler calibrates at creation: a forward pass through the base
      if (o.sampler === 'outlier') await engineFromEnv(o.json);
      const input: RunConfigInput = {
        base: o.base,
        data: o.data,
        format: o.format,
        fields: o.fields?.split(',').map((f) => f.trim()),
        template: o.template,
        chatTemplate: o.chatTemplate === undefined ? undefined : (await readChatTemplate(o.chatTemplate)).text,
        seqLen: o.seqLen,
        heldOut: o.heldOut,
        method: o.method,
        activeLayers: o.layers,
        period: o.period,
        embedHead: o.embedHead,
        sampler: o.sampler,
        layerProbabilities: o.layerProbabilities?.split(',').map(Number),
        outlierThreshold: o.outlierThreshold,
        calibrationBatches: o.calibrationBatches,
        gradNormDecay: o.gradNormDecay,
        gradNormFloor: o.gradNormFloor,
        optimizerState: o.optimizerState,
        loraRank: o.loraRank,
        loraAlpha: o.loraAlpha,
        loraDropout: o.loraDropout,
        loraTargets: o.loraTargets?.split(',').map((t) => t.trim()),
        steps: o.steps,
        batchSize: o.batch,
        gradAccum: o.gradAccum,
        lr: o.lr,
        schedule: o.schedule,
        warmupSteps: o.warmup,
        weightDecay: o.weightDecay,
        maxGradNorm: o.maxGradNorm,
        seed: o.seed,
        maxCostUsd: o.maxCost,
      };
      const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as RunConfigInput;
      const spec = await runs.create(defined, { id: o.id });
      if (o.json) process.stdout.write(`${JSON.stringify(spec, null, 2)}\n`);
      else process.stdout.write(`${spec.id}\n`);
    });
}
