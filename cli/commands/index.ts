import type { Command } from 'commander';

/** Each command lives in its own module and adds itself to the program. */
export const commands: Array<(program: Command) => void> = [];
