import { Command, InvalidArgumentError } from 'commander';
import { loadBaseDir } from '../../core/models/load.ts';
import { createModel, type Model } from '../../core/models/model.ts';
import { generateText } from '../../core/models/textgen.ts';
import { loadTokenizerDir, type Tokenizer } from '../../core/tokenizers/index.ts';
import { LisaError } from '../../core/errors.ts';
import { loadRunModel } from '../../core/train/run-model.ts';
import { ResourceCache } from '../../core/train/resources.ts';
import { engineFromEnv, openStoreFromEnv, sourcesFromEnv } from '../context.ts';

/** Where the weights come from: a model directory today; a run's chunk (--store/--run/--at) plugs in here. */
export type ModelSource = () => Promise<{ model: Model; tokenizer: Tokenizer }>;

export function modelDirSource(dir: string): ModelSource {
  return async () => {
    const base = await loadBaseDir(dir);
    return { model: createModel(base.spec, base.weights), tokenizer: await loadTokenizerDir(dir) };
  };
}

export interface GenerateCliOptions {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP?: number;
  seed?: number;
}

/** Streams run.c-identical output to `out` (final newline included); the tok/s line goes to `log`. */
export async function runGenerate(source: ModelSource, o: GenerateCliOptions, out: (bytes: Uint8Array) => void, log: (line: string) => void): Promise<void> {
  const { model, tokenizer } = await source();
  try {
    const start = performance.now();
    const { ids, promptLength } = generateText(model, tokenizer, { prompt: o.prompt, maxTokens: o.maxTokens, temperature: o.temperature, topP: o.topP, seed: o.seed }, out);
    out(new TextEncoder().encode('\n'));
    const seconds = (performance.now() - start) / 1000;
    log(`generated ${ids.length - promptLength} tokens after a ${promptLength}-token prompt; achieved tok/s: ${((ids.length - 1) / seconds).toFixed(1)}`);
  } finally {
    model.dispose();
  }
}

const integer = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${value}'`);
  return n;
};

const number = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}], got '${value}'`);
  return n;
};

interface GenerateArgs {
  model?: string;
  store?: string;
  run?: string;
  at?: number;
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed?: number;
}

export class GenerateSourceError extends LisaError {
  constructor() {
    super('GENERATE_SOURCE_INVALID', 'lisa generate needs either --model DIR or --store URL --run ID (optionally --at SEQ), not both');
  }
}

function sourceOf(o: GenerateArgs): ModelSource {
  if (o.model !== undefined && o.store === undefined && o.run === undefined && o.at === undefined) return modelDirSource(o.model);
  if (o.model === undefined && o.store !== undefined && o.run !== undefined) {
    const { store, run, at } = o;
    return async () => {
      const rm = await loadRunModel({ store: openStoreFromEnv(store), runId: run, at, sources: sourcesFromEnv(), cache: new ResourceCache() });
      return { model: rm.model, tokenizer: rm.base.tokenizer };
    };
  }
  throw new GenerateSourceError();
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text from a model, printing exactly what llama2.c run.c prints')
    .option('--model <dir>', 'Hugging Face model directory (config.json, model.safetensors, tokenizer)')
    .option('--store <url>', "with --run: generate from a run's weights instead of --model")
    .option('--run <id>', 'run id in --store')
    .option('--at <seq>', 'committed chunk to use (default: the latest; -1: the base)', integer(-1))
    .option('--prompt <text>', 'prompt; the output starts with it', '')
    .option('--max-tokens <n>', 'positions to run, BOS and prompt included (run.c -n)', integer(1), 256)
    .option('--temperature <t>', '0 = greedy', number(0, Number.MAX_VALUE), 1)
    .option('--top-p <p>', 'nucleus sampling mass; 1 = the whole distribution', number(0, 1), 0.9)
    .option('--seed <s>', 'sampling seed (default: the current time, like run.c)', integer(1))
    .action(async (o: GenerateArgs) => {
      const source = sourceOf(o);
      await engineFromEnv(true);
      const seed = o.seed ?? Math.floor(Date.now() / 1000);
      await runGenerate(
        source,
        { prompt: o.prompt, maxTokens: o.maxTokens, temperature: o.temperature, topP: o.topP, seed },
        (bytes) => process.stdout.write(bytes),
        (line) => process.stderr.write(`${line}\n`),
      );
    });
}
