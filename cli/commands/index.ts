import type { Command } from 'commander';
import { register as convertLlama2c } from './convert-llama2c.ts';
import { register as generate } from './generate.ts';
import { register as exportCommands } from './export.ts';
import { register as compose } from './compose.ts';
import { register as run } from './run.ts';
import { register as chunk } from './chunk.ts';
import { register as status } from './status.ts';
import { register as gc } from './gc.ts';
import { register as demo } from './demo.ts';
import { register as serve } from './serve.ts';
import { register as dashboard } from './dashboard.ts';
import { register as token } from './token.ts';

/** Each command lives in its own module and adds itself to the program. */
export const commands: Array<(program: Command) => void> = [run, chunk, status, generate, exportCommands, compose, gc, convertLlama2c, demo, serve, dashboard, token];
