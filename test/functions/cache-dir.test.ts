import { describe, expect, it } from 'vitest';
import { newToken } from '../../functions/auth.ts';
import { configFromEnv } from '../../functions/config.ts';

const base = { LISA_STORE: '/tmp/runs', LISA_TOKENS: newToken('acme').line };
const noFile = (): Promise<string> => Promise.reject(new Error('ENOENT: no such file'));

describe('LISA_CACHE_DIR', () => {
  it('is the server\'s base cache directory; unset or blank means none', async () => {
    expect((await configFromEnv({ ...base, LISA_CACHE_DIR: '/var/cache/lisa' }, {}, noFile)).cacheDir).toBe('/var/cache/lisa');
    expect((await configFromEnv({ ...base, LISA_CACHE_DIR: '  ' }, {}, noFile)).cacheDir).toBeUndefined();
    expect((await configFromEnv(base, {}, noFile)).cacheDir).toBeUndefined();
  });
});
