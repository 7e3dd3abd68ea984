import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { generateText, heldOutLoss, type Runs } from '../../core/index.ts';
import { intArg } from '../args.ts';
import { engineFromEnv, runsFromEnv } from '../context.ts';

const repo = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));

const PROMPT = 'Question: Lily has 3 apples';

/** The main job on embedded defaults: bundled stories260K, bundled GSM8K, a local store, no network. */
export function register(program: Command): void {
  program
    .command('demo')
    .description('fine-tune the bundled stories260K on bundled GSM8K with LISA, chunk by chunk, in a local store')
    .option('--store <dir>', 'where the run lives', '.lisa')
    .option('--chunks <n>', 'chunks (sampling periods) to run', intArg(1), 5)
    .action(async (o: { store: string; chunks: number }) => {
      const runs = await runsFromEnv(o.store);
      await engineFromEnv();
      const say = (line = '') => process.stdout.write(`${line}\n`);
      const spec = await runs.create({
        base: repo('models/stories260K'),
        data: repo('data/gsm8k/train.jsonl'),
        fields: ['question', 'answer'],
        seqLen: 128,
        heldOut: 64,
        activeLayers: 2,
        period: 8,
        steps: 8 * o.chunks,
        batchSize: 8,
        lr: 3e-3,
        warmupSteps: 2,
        seed: 7,
      });
      const c = spec.config;
      say(`LISA on stories260K (${spec.base.nLayers} blocks): γ=${c.activeLayers} blocks + embed/head per period, K=${c.period} steps, batch ${c.batchSize}×${c.seqLen} tokens`);
      say(`data ${c.data}: ${spec.data.examples} examples, ${spec.data.heldOut} held out`);
      say(`run ${spec.id} in ${resolve(o.store)}`);
      say();
      const before = await snapshot(runs, spec.id, -1);
      say(`before  held-out loss ${before.loss.toFixed(4)}`);
      say(`        ${JSON.stringify(before.text)}`);
      say();
      for (let i = 0; i < o.chunks; i++) {
        const m = await runs.chunk(spec);
        say(
          `chunk ${m.seq}  units ${m.activeUnits.join(', ').padEnd(30)}  loss ${m.losses[0].toFixed(3)} → ${m.losses.at(-1)!.toFixed(3)}` +
            `  held-out ${m.heldOut?.loss.toFixed(3) ?? '-'}  ${(m.tokens / m.seconds.train).toFixed(0)} tok/s  ${(m.bytes.out / 1024).toFixed(0)} KiB up`,
        );
      }
      say();
      const after = await snapshot(runs, spec.id);
      say(`after   held-out loss ${after.loss.toFixed(4)} (was ${before.loss.toFixed(4)})`);
      say(`        ${JSON.stringify(after.text)}`);
      say();
      say(`the run lives in ${resolve(o.store)}/runs/${spec.id}/ — try:`);
      say(`  npx lisa status --store ${o.store} --run ${spec.id}`);
      say(`  npx lisa generate --store ${o.store} --run ${spec.id} --prompt "${PROMPT}" --max-tokens 96 --temperature 0`);
      say(`  npx lisa export --store ${o.store} --run ${spec.id} --out ./exported`);
    });
}

/** Held-out loss and a greedy continuation of PROMPT at a seq (-1: the base). */
async function snapshot(runs: Runs, runId: string, at?: number): Promise<{ loss: number; text: string }> {
  const rm = await runs.model(runId, at);
  try {
    const loss = heldOutLoss(rm.model, rm.dataset, rm.run.config.batchSize)!.loss;
    const chunks: Uint8Array[] = [];
    generateText(rm.model, rm.base.tokenizer, { prompt: PROMPT, maxTokens: 72, temperature: 0 }, (b) => chunks.push(b.slice()));
    return { loss, text: Buffer.concat(chunks).toString('utf8') };
  } finally {
    rm.model.dispose();
  }
}
