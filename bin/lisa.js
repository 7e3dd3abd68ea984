#!/usr/bin/env node
// The `lisa` command. Sources are TypeScript run through tsx, so there is no build step to go stale.
import { register } from 'tsx/esm/api';
register();
await import('../cli/main.ts');
