import { Command, InvalidArgumentError, Option } from 'commander';
import { composeRuns, MERGE_METHODS, type ComposeRun, type MergeMethod } from '../../core/merge/index.ts';
import { openStoreFromEnv } from '../context.ts';
import { dtypeOption, intArg, printSummary, progressLine, shardOption } from './export.ts';

function numberArg(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}

/** `ID`, `ID:weight`, `ID@seq` or `ID@seq:weight` (run ids never contain ':' or '@'). */
export function parseRunArg(value: string): ComposeRun {
  const m = /^([^:@]+)(?:@(-?\d+))?(?::(.+))?$/.exec(value);
  const weight = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (weight !== undefined && !Number.isFinite(weight))) {
    throw new InvalidArgumentError(`expected ID, ID:weight, ID@seq or ID@seq:weight, got '${value}'`);
  }
  return { runId: m[1], at: m[2] === undefined ? undefined : Number(m[2]), weight };
}

interface ComposeCliOptions {
  base: string;
  store: string;
  run: ComposeRun[];
  method: MergeMethod;
  density?: number;
  lambda?: number;
  seed?: number;
  consensus?: boolean;
  out: string;
  dtype: 'base' | 'f32' | 'bf16' | 'f16';
  shardSize: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('compose')
    .description('merge several runs of one base into one model, unit by unit (only units some run trained are computed)')
    .requiredOption('--base <dir|s3://...>', 'the base every run was created on (checked by sha256)')
    .requiredOption('--store <url>', 'where the runs live')
    .requiredOption('--run <ID[@seq][:weight]>', 'a run to merge, repeatable; weight defaults to 1, seq to the latest', (v: string, acc: ComposeRun[] = []) => [...acc, parseRunArg(v)])
    .addOption(new Option('--method <method>', 'merge method, defined in core/merge/kernels.ts').choices(MERGE_METHODS).makeOptionMandatory())
    .option('--density <d>', 'ties, dare: fraction of each task vector kept, in (0, 1]', numberArg)
    .option('--lambda <λ>', 'scale of the merged task vector (default 1)', numberArg)
    .option('--seed <n>', "dare's random drops (default 0)", intArg)
    .option('--consensus', 'dare: TIES sign consensus on the rescaled task vectors (dare_ties)')
    .requiredOption('--out <dir|s3://...>', 'new or empty directory or s3:// prefix')
    .addOption(dtypeOption())
    .addOption(shardOption())
    .option('--json', 'print the summary as JSON')
    .action(async (o: ComposeCliOptions) => {
      const summary = await composeRuns({
        base: o.base,
        store: openStoreFromEnv(o.store),
        runs: o.run,
        method: o.method,
        density: o.density,
        lambda: o.lambda,
        seed: o.seed,
        consensus: o.consensus,
        out: o.out,
        dtype: o.dtype,
        shardSize: o.shardSize,
        openStore: openStoreFromEnv,
        onProgress: o.json ? undefined : progressLine('compose'),
      });
      const runs = summary.runs.map((r) => `${r.runId}@${r.seq}×${r.weight}`).join(' ');
      printSummary(summary, o.json, `${summary.method} of ${runs} (merged units: ${summary.units.join(' ') || 'none'})`);
    });
}
