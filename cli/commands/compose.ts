import { Command, InvalidArgumentError, Option } from 'commander';
import { MERGE_METHODS, type ComposeRun, type ExportDtype, type MergeMethod } from '../../core/index.ts';
import { intArg, numberArg } from '../args.ts';
import { runsFromEnv } from '../context.ts';
import { dtypeOption, printSummary, progressLine, shardOption } from './export.ts';

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
  dtype: ExportDtype;
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
    .option('--density <d>', 'ties, dare: fraction of each task vector kept, in (0, 1]', numberArg())
    .option('--lambda <λ>', 'scale of the merged task vector (default 1)', numberArg())
    .option('--seed <n>', "dare's random drops (default 0)", intArg())
    .option('--consensus', 'dare: TIES sign consensus on the rescaled task vectors (dare_ties)')
    .requiredOption('--out <dir|s3://...>', 'new or empty directory or s3:// prefix')
    .addOption(dtypeOption())
    .addOption(shardOption())
    .option('--json', 'print the summary as JSON')
    .action(async (o: ComposeCliOptions) => {
      const runs = await runsFromEnv(o.store, { access: 'read' });
      const summary = await runs.compose({
        base: o.base,
        runs: o.run,
        method: o.method,
        density: o.density,
        lambda: o.lambda,
        seed: o.seed,
        consensus: o.consensus,
        out: o.out,
        dtype: o.dtype,
        shardSize: o.shardSize,
        onProgress: o.json ? undefined : progressLine('compose'),
      });
      const merged = summary.runs.map((r) => `${r.runId}@${r.seq}×${r.weight}`).join(' ');
      printSummary(summary, o.json, `${summary.method} of ${merged} (merged units: ${summary.units.join(' ') || 'none'})`);
    });
}
