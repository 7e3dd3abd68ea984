import { Command } from 'commander';
import { chatFormat, chatPrompt, generateText, LisaError, openModelDir, readChatTemplate, type TextModel } from '../../core/index.ts';
import { intArg, numberArg } from '../args.ts';
import { engineFromEnv, runsFromEnv } from '../context.ts';

/** Where the weights come from: a model directory, or a run's chunk (--store/--run/--at). */
export type ModelSource = () => Promise<TextModel>;

export interface GenerateCliOptions {
  prompt: string;
  /** apply the model's chat template (or `chatTemplate`) to the prompt as a user turn */
  chat?: { system?: string; chatTemplate?: { text: string; where: string } };
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
    const chat = o.chat && chatPrompt(tokenizer, chatFormat(tokenizer.chat, o.chat.chatTemplate), o.prompt, o.chat.system);
    const { ids, promptLength } = generateText(model, tokenizer, { prompt: o.prompt, chat, maxTokens: o.maxTokens, temperature: o.temperature, topP: o.topP, seed: o.seed }, out);
    out(new TextEncoder().encode('\n'));
    const seconds = (performance.now() - start) / 1000;
    log(`generated ${ids.length - promptLength} tokens after a ${promptLength}-token prompt; achieved tok/s: ${((ids.length - 1) / seconds).toFixed(1)}`);
  } finally {
    model.dispose();
  }
}

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
  chat?: boolean;
  system?: string;
  chatTemplate?: string;
}

export class GenerateSourceError extends LisaError {
  constructor() {
    super('GENERATE_SOURCE_INVALID', 'lisa generate needs either --model DIR or --store URL --run ID (optionally --at SEQ), not both');
  }
}

function sourceOf(o: GenerateArgs): ModelSource {
  const { model, store, run, at } = o;
  if (model !== undefined && store === undefined && run === undefined && at === undefined) return () => openModelDir(model);
  if (model === undefined && store !== undefined && run !== undefined) {
    return async () => {
      const rm = await (await runsFromEnv(store, { access: 'read' })).model(run, at);
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
    .option('--at <seq>', 'committed chunk to use (default: the latest; -1: the base)', intArg(-1))
    .option('--prompt <text>', 'prompt; the output starts with it', '')
    .option('--max-tokens <n>', 'positions to run, BOS and prompt included (run.c -n)', intArg(1), 256)
    .option('--temperature <t>', '0 = greedy', numberArg(0), 1)
    .option('--top-p <p>', 'nucleus sampling mass; 1 = the whole distribution', numberArg(0, 1), 0.9)
    .option('--seed <s>', 'sampling seed (default: the current time, like run.c)', intArg(1))
    .option('--chat', "apply the model's chat template to --prompt as a user turn, with the generation prompt; print only the reply")
    .option('--system <text>', 'with --chat: a system message before the prompt')
    .option('--chat-template <file>', "with --chat: a Jinja chat template instead of the model's tokenizer_config.json one")
    .action(async (o: GenerateArgs) => {
      const source = sourceOf(o);
      await engineFromEnv(true);
      const seed = o.seed ?? Math.floor(Date.now() / 1000);
      await runGenerate(
        source,
        {
          prompt: o.prompt,
          chat: o.chat ? { system: o.system, chatTemplate: o.chatTemplate === undefined ? undefined : await readChatTemplate(o.chatTemplate) } : undefined,
          maxTokens: o.maxTokens,
          temperature: o.temperature,
          topP: o.topP,
          seed,
        },
        (bytes) => process.stdout.write(bytes),
        (line) => process.stderr.write(`${line}\n`),
      );
    });
}
