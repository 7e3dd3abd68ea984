import { Command } from 'commander';
import { unitTraining, type RunConfig } from '../../core/index.ts';
import { runsFromEnv } from '../context.ts';

export function register(program: Command): void {
  program
    .command('status')
    .description("show a run's chain of committed chunks")
    .requiredOption('--store <url>', 'where runs live: a directory or s3://bucket/prefix')
    .requiredOption('--run <id>', 'run id')
    .option('--json', 'print the spec and every manifest as JSON')
    .action(async (o: { store: string; run: string; json?: boolean }) => {
      const runs = await runsFromEnv(o.store, { access: 'read' });
      const spec = await runs.spec(o.run);
      const manifests = (await runs.chunks(spec)).chunks;
      const trained = unitTraining(spec, manifests);
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ spec, trained, chunks: manifests }, null, 2)}\n`);
        return;
      }
      const c = spec.config;
      const out = [
        `run ${spec.id}  created ${spec.createdAt}`,
        `  base ${c.base} (${spec.base.arch}, ${spec.base.nLayers} layers, sha256 ${spec.base.sha256.slice(0, 12)})`,
        `  data ${c.data} (${spec.data.examples} examples, ${spec.data.heldOut} held out)`,
        `  method ${methodLine(c)}`,
        `  K=${c.period} steps=${c.steps} batch=${c.batchSize}x${c.gradAccum} lr=${c.lr} seed=${c.seed}`,
        '',
        table(
          ['seq', 'period', 'units', 'steps', 'loss', 'held-out', 'tokens', 'seconds', 'cost $'],
          manifests.map((m) => [
            String(m.seq),
            String(m.period),
            m.activeUnits.join(' '),
            `${m.startStep}-${m.globalStep}`,
            m.losses.length ? `${m.losses[0].toFixed(3)}→${m.losses.at(-1)!.toFixed(3)}` : '-',
            m.heldOut ? m.heldOut.loss.toFixed(3) : '-',
            String(m.tokens),
            m.seconds.wall.toFixed(1),
            m.costUsd.toFixed(4),
          ]),
        ),
      ];
      const last = manifests.at(-1);
      out.push(
        '',
        table(
          ['unit', 'periods', 'steps', 'p (last draw)'],
          Object.entries(trained).map(([u, f], i) => [
            u,
            String(f.periods),
            String(f.steps),
            last?.probabilities ? last.probabilities[i].toFixed(3) : '-',
          ]),
        ),
      );
      out.push(
        last
          ? `\n${last.globalStep}/${c.steps} steps, ${last.totals.tokens} tokens, ${last.totals.seconds.toFixed(1)} s, $${last.totals.costUsd.toFixed(4)}`
          : '\nno chunk committed yet',
      );
      process.stdout.write(`${out.join('\n')}\n`);
    });
}

function methodLine(c: RunConfig): string {
  if (c.method === 'lora') return `lora r=${c.loraRank} alpha=${c.loraAlpha} dropout=${c.loraDropout} targets=${c.loraTargets?.join(',')}`;
  if (c.method === 'lisa') return `lisa γ=${c.activeLayers} embed/head=${c.embedHead} sampler=${c.sampler}${c.layerProbabilities ? ` p=${c.layerProbabilities.join(',')}` : ''}`;
  return c.method;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
