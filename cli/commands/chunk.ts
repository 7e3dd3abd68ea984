import { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { ChunkManifest } from '../../core/index.ts';
import { numberArg } from '../args.ts';
import { engineFromEnv, runsFromEnv } from '../context.ts';

interface ChunkOptions {
  store: string;
  run: string;
  deadline?: number;
  pricePerHour?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('chunk')
    .description('run one chunk: the rest of the current LISA period, then commit')
    .requiredOption('--store <url>', 'where runs live: a directory or s3://bucket/prefix')
    .requiredOption('--run <id>', 'run id')
    .option('--deadline <seconds>', 'wall-clock budget; stepping stops in time to upload and commit', numberArg(0))
    .option('--price-per-hour <usd>', 'machine price for cost metering', numberArg(0))
    .option('--json', 'print the committed manifest as JSON')
    .action(async (o: ChunkOptions) => {
      const runs = await runsFromEnv(o.store, { quiet: o.json });
      await engineFromEnv(o.json);
      const bar = o.json || !process.stderr.isTTY ? null : progressBar();
      const manifest = await runs.chunk(o.run, {
        deadline: o.deadline === undefined ? undefined : Date.now() + o.deadline * 1000,
        usdPerHour: o.pricePerHour,
        onStep: (e) => {
          if (!bar) return;
          if (e.stepInChunk === 1) bar.start(e.stepsPlanned, 0, { loss: '-', tps: '-' });
          bar.update(e.stepInChunk, { loss: e.loss.toFixed(4), tps: (e.tokens / e.seconds).toFixed(0) });
        },
      }).finally(() => bar?.stop());
      process.stdout.write(o.json ? `${JSON.stringify(manifest, null, 2)}\n` : summarize(manifest));
    });
}

function progressBar(): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    { format: 'step {value}/{total} |{bar}| loss {loss} | {tps} tok/s | ETA {eta}s', hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
}

export function summarize(m: ChunkManifest): string {
  const first = m.losses[0];
  const last = m.losses.at(-1);
  const lines = [
    `committed chunk ${m.seq} of run ${m.runId} (${m.method}, period ${m.period}, stopped by ${m.stoppedBy})`,
    `  units     ${m.activeUnits.join(', ')}`,
    `  steps     ${m.startStep} -> ${m.globalStep}`,
    `  loss      ${first?.toFixed(4) ?? '-'} -> ${last?.toFixed(4) ?? '-'}`,
    ...(m.heldOut ? [`  held-out  loss ${m.heldOut.loss.toFixed(4)}, perplexity ${m.heldOut.perplexity.toFixed(2)}`] : []),
    `  tokens    ${m.tokens} (${(m.tokens / Math.max(m.seconds.train, 1e-9)).toFixed(0)} tok/s)`,
    `  seconds   ${m.seconds.wall.toFixed(2)} (load ${m.seconds.load.toFixed(2)}, train ${m.seconds.train.toFixed(2)}, upload ${m.seconds.upload.toFixed(2)})`,
    `  bytes     in ${m.bytes.in}, out ${m.bytes.out}`,
    `  cost      $${m.costUsd.toFixed(6)} (run total $${m.totals.costUsd.toFixed(6)})`,
  ];
  return `${lines.join('\n')}\n`;
}
