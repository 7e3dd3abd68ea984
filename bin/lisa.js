#!/usr/bin/env node
// The `lisa` command. Sources are TypeScript run through tsx, so there is no build step to go stale.
import { register } from 'tsx/esm/api';

// The AWS SDK's documented switch for its Node-version notice (it asks for Node >= 22 from 2027):
// package.json's engines says which Node versions lisa-fn runs on, so the notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
await import('../cli/main.ts');
