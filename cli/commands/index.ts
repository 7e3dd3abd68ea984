import type { Command } from 'commander';
import { register as convertLlama2c } from './convert-llama2c.ts';
import { register as exportCommands } from './export.ts';
import { register as compose } from './compose.ts';

/** Each command lives in its own module and adds itself to the program. */
export const commands: Array<(program: Command) => void> = [convertLlama2c, exportCommands, compose];
