import { Command, Option } from 'commander';
import { applyDeltaPackage, EXPORT_DTYPES, type ExportDtype, type ExportSummary, type WriteProgress } from '../../core/index.ts';
import { intArg, sizeArg } from '../args.ts';
import { runsFromEnv } from '../context.ts';

export const dtypeOption = () =>
  new Option('--dtype <dtype>', "tensor dtype of the output; base keeps each tensor's dtype in the base file").choices(EXPORT_DTYPES).default('base');
export const shardOption = () => new Option('--shard-size <size>', 'tensor bytes per shard, e.g. 2GB or 500MB').argParser(sizeArg).default(2_000_000_000, '2GB');

/** A one-line progress meter on a terminal; nothing when stderr is redirected. */
export function progressLine(label: string): ((p: WriteProgress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return (p) => {
    const pct = p.totalBytes === 0 ? 100 : Math.floor((100 * p.bytes) / p.totalBytes);
    if (pct === last) return;
    last = pct;
    process.stderr.write(`\r${label} ${pct}% (${(p.bytes / 1e6).toFixed(1)}/${(p.totalBytes / 1e6).toFixed(1)} MB)${pct === 100 ? '\n' : ''}`);
  };
}

export function printSummary(s: ExportSummary, json: boolean | undefined, headline: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const mbps = s.seconds > 0 ? ` (${(s.bytes / 1e6 / s.seconds).toFixed(1)} MB/s)` : '';
  const lines = [`${headline} -> ${s.out}`, `  ${s.files.length} file(s), ${s.bytes} bytes in ${s.seconds.toFixed(2)} s${mbps}`];
  for (const f of s.files) lines.push(`  ${s.sha256s[f]}  ${f}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

interface ExportOptions {
  store: string;
  run: string;
  out: string;
  at?: number;
  dtype: ExportDtype;
  shardSize: number;
  delta?: boolean;
  adapter?: boolean;
  base?: string;
  json?: boolean;
}

interface ApplyOptions {
  base: string;
  delta: string;
  out: string;
  dtype: ExportDtype;
  shardSize: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('export')
    .description("write a run's model (base + its trained units) at a committed seq as a Hugging Face model, or a delta package of its changed units")
    .requiredOption('--store <url>', 'where runs live: a directory or s3://bucket/prefix')
    .requiredOption('--run <id>', 'run id')
    .requiredOption('--out <dir|s3://...>', 'new or empty directory or s3:// prefix (with --delta: a file path or s3://bucket/key)')
    .option('--at <seq>', 'committed seq to export (default: the latest; -1: the base)', intArg(-1))
    .addOption(dtypeOption())
    .addOption(shardOption())
    .option('--delta', 'write only the units the run changed (weights, no optimizer state) as one safetensors file')
    .option('--adapter', "a LoRA run's adapters as Hugging Face PEFT loads them: adapter_config.json + adapter_model.safetensors")
    .option('--base <dir|s3://...>', "the run's base, when it moved since the run was created (its sha256 must still match)")
    .option('--json', 'print the summary as JSON')
    .action(async (o: ExportOptions) => {
      const runs = await runsFromEnv(o.store, { access: 'read' });
      const summary = await runs.export(o.run, {
        out: o.out,
        at: o.at,
        dtype: o.dtype,
        shardSize: o.shardSize,
        delta: o.delta,
        adapter: o.adapter,
        base: o.base,
        onProgress: o.json ? undefined : progressLine('export'),
      });
      const what = o.adapter ? 'LoRA adapter' : o.delta ? 'delta package' : 'model';
      printSummary(summary, o.json, `${what} of run ${summary.runId} at seq ${summary.seq} (units from the run: ${summary.units.join(' ') || 'none'})`);
    });

  program
    .command('apply')
    .description('rebuild the full model from a base and a delta package made by `lisa export --delta`')
    .requiredOption('--base <dir|s3://...>', 'the base the delta was exported from (checked by sha256)')
    .requiredOption('--delta <path|s3://...>', 'delta package (.safetensors)')
    .requiredOption('--out <dir|s3://...>', 'new or empty directory or s3:// prefix')
    .addOption(dtypeOption())
    .addOption(shardOption())
    .option('--json', 'print the summary as JSON')
    .action(async (o: ApplyOptions) => {
      const summary = await applyDeltaPackage(
        { base: o.base, delta: o.delta, out: o.out, dtype: o.dtype, shardSize: o.shardSize, onProgress: o.json ? undefined : progressLine('apply') },
        process.env,
      );
      printSummary(summary, o.json, `model from ${o.delta} on ${o.base}`);
    });
}
