import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // tfjs backends are process-global: isolate each file in its own fork.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // as bin/lisa.js does: the AWS SDK's notice about Node versions is noise in test output
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
