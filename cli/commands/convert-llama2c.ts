import type { Command } from 'commander';
import { convertLlama2cFiles } from '../../core/index.ts';

export function register(program: Command): void {
  program
    .command('convert-llama2c')
    .description('convert a llama2.c checkpoint and tokenizer into a Hugging Face model directory')
    .argument('<model.bin>', 'llama2.c checkpoint (legacy version 0 format, as run.c reads)')
    .argument('<tokenizer.bin>', 'llama2.c tokenizer (e.g. tok512.bin)')
    .requiredOption('--out <dir>', 'new or empty output directory')
    .action(async (modelPath: string, tokenizerPath: string, o: { out: string }) => {
      const result = await convertLlama2cFiles(modelPath, tokenizerPath, o.out);
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      const s = result.spec;
      process.stdout.write(
        `wrote ${o.out}: ${result.files.join(', ')}\n` +
          `  llama dim=${s.dim} layers=${s.nLayers} heads=${s.nHeads}/${s.nKvHeads} hidden=${s.hiddenDim} vocab=${s.vocabSize} seq=${s.maxSeqLen} tied=${s.tiedEmbeddings}\n` +
          `  model.safetensors sha256 ${result.sha256}\n`,
      );
    });
}
