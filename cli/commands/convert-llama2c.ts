import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { LisaError } from '../../core/errors.ts';
import { convertLlama2c } from '../../core/models/llama2c.ts';

export function register(program: Command): void {
  program
    .command('convert-llama2c')
    .description('convert a llama2.c checkpoint and tokenizer into a Hugging Face model directory')
    .argument('<model.bin>', 'llama2.c checkpoint (legacy version 0 format, as run.c reads)')
    .argument('<tokenizer.bin>', 'llama2.c tokenizer (e.g. tok512.bin)')
    .requiredOption('--out <dir>', 'new or empty output directory')
    .action(async (modelPath: string, tokenizerPath: string, o: { out: string }) => {
      const result = await convertLlama2c({ bytes: await readInput(modelPath), file: modelPath }, { bytes: await readInput(tokenizerPath), file: tokenizerPath }, o.out);
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      const s = result.spec;
      process.stdout.write(
        `wrote ${o.out}: ${result.files.join(', ')}\n` +
          `  llama dim=${s.dim} layers=${s.nLayers} heads=${s.nHeads}/${s.nKvHeads} hidden=${s.hiddenDim} vocab=${s.vocabSize} seq=${s.maxSeqLen} tied=${s.tiedEmbeddings}\n` +
          `  model.safetensors sha256 ${result.sha256}\n`,
      );
    });
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') throw new LisaError('REF_NOT_FOUND', `${path}: ${code === 'ENOENT' ? 'no such file' : 'is a directory, expected a file'}`);
    throw err;
  }
}
