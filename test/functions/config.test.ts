import { describe, expect, it } from 'vitest';
import { newToken } from '../../functions/auth.ts';
import { configFromEnv } from '../../functions/config.ts';

const tok = newToken('acme');
const base = { LISA_STORE: '/tmp/runs', LISA_TOKENS: tok.line };
const noFile = (): Promise<string> => Promise.reject(new Error('ENOENT: no such file'));

describe('configFromEnv', () => {
  it('applies defaults', async () => {
    const c = await configFromEnv(base, {}, noFile);
    expect({ ...c, tokens: c.tokens.map((t) => t.tenant) }).toEqual({
      store: '/tmp/runs',
      host: '127.0.0.1',
      port: 8080,
      healthPort: null,
      tokens: ['acme'],
      pricing: { gpuType: null, usdPerHour: 0 },
      platformTimeoutSeconds: null,
      safetyMarginSeconds: 15,
      commitReserveSeconds: undefined,
      shutdownGraceSeconds: 25,
      bodyTimeoutSeconds: 30,
      refPrefixes: [],
      logLevel: 'info',
      backend: undefined,
    });
  });

  it('flags win over the environment; PORT_HEALTH equal to PORT means one listener', async () => {
    const c = await configFromEnv({ ...base, PORT: '80', PORT_HEALTH: '80', HOST: '0.0.0.0' }, { store: 's3://b/p', host: '::1' }, noFile);
    expect([c.store, c.host, c.port, c.healthPort]).toEqual(['s3://b/p', '::1', 80, null]);
    const d = await configFromEnv({ ...base, PORT: '80', PORT_HEALTH: '8081' }, { port: 0 }, noFile);
    expect([d.port, d.healthPort]).toEqual([0, 8081]);
  });

  it('prices a flat rate over the per-GPU table, and a table entry by LISA_GPU_TYPE', async () => {
    const table = JSON.stringify({ H100: 2.99, A100: 1.89 });
    expect((await configFromEnv({ ...base, LISA_GPU_TYPE: 'A100', LISA_GPU_PRICES_USD: table }, {}, noFile)).pricing).toEqual({ gpuType: 'A100', usdPerHour: 1.89 });
    expect((await configFromEnv({ ...base, LISA_GPU_TYPE: 'A100', LISA_GPU_PRICES_USD: table, LISA_PRICE_PER_HOUR_USD: '0.5' }, {}, noFile)).pricing).toEqual({ gpuType: 'A100', usdPerHour: 0.5 });
    await expect(configFromEnv({ ...base, LISA_GPU_TYPE: 'L4', LISA_GPU_PRICES_USD: table }, {}, noFile)).rejects.toThrow('LISA_GPU_PRICES_USD: no non-negative price for LISA_GPU_TYPE=L4; types listed: H100, A100');
    await expect(configFromEnv({ ...base, LISA_GPU_PRICES_USD: table }, {}, noFile)).rejects.toThrow('LISA_GPU_TYPE: required with LISA_GPU_PRICES_USD');
    await expect(configFromEnv({ ...base, LISA_GPU_TYPE: 'A100', LISA_GPU_PRICES_USD: '[1]' }, {}, noFile)).rejects.toThrow(/^LISA_GPU_PRICES_USD: expected a JSON object/);
    await expect(configFromEnv({ ...base, LISA_PRICE_PER_HOUR_USD: '-1' }, {}, noFile)).rejects.toThrow("LISA_PRICE_PER_HOUR_USD: '-1' is not a number >= 0");
  });

  it('takes a dashboard session key of at least 32 characters', async () => {
    const key = 'k'.repeat(32);
    expect((await configFromEnv({ ...base, LISA_SESSION_KEY: ` ${key} ` }, {}, noFile)).sessionKey).toEqual(Buffer.from(key));
    expect((await configFromEnv({ ...base, LISA_SESSION_KEY: '' }, {}, noFile)).sessionKey).toBeUndefined();
    await expect(configFromEnv({ ...base, LISA_SESSION_KEY: 'short' }, {}, noFile)).rejects.toMatchObject({
      code: 'SERVER_CONFIG_INVALID',
      message: 'LISA_SESSION_KEY: 5 characters is too short a key: use at least 32 (e.g. openssl rand -hex 32)',
    });
  });

  it('needs room for a chunk under the platform limit', async () => {
    const c = await configFromEnv({ ...base, LISA_PLATFORM_TIMEOUT_SECONDS: '330', LISA_DEADLINE_MARGIN_SECONDS: '20' }, {}, noFile);
    expect([c.platformTimeoutSeconds, c.safetyMarginSeconds]).toEqual([330, 20]);
    await expect(configFromEnv({ ...base, LISA_PLATFORM_TIMEOUT_SECONDS: '10' }, {}, noFile)).rejects.toThrow(
      'LISA_PLATFORM_TIMEOUT_SECONDS: 10 s leaves no time for a chunk after the 15 s margin (LISA_DEADLINE_MARGIN_SECONDS)',
    );
  });

  it('merges tokens from LISA_TOKENS and LISA_TOKENS_FILE and refuses to run without any', async () => {
    const other = newToken('beta');
    const c = await configFromEnv({ ...base, LISA_TOKENS_FILE: '/secrets/tokens' }, {}, async (p) => (p === '/secrets/tokens' ? `${other.line}\n` : ''));
    expect(c.tokens.map((t) => t.tenant)).toEqual(['acme', 'beta']);
    await expect(configFromEnv({ LISA_STORE: 'x' }, {}, noFile)).rejects.toMatchObject({ code: 'SERVER_CONFIG_INVALID', details: { variable: 'LISA_TOKENS' } });
    await expect(configFromEnv({ LISA_STORE: 'x', LISA_TOKENS_FILE: '/nope' }, {}, noFile)).rejects.toThrow('LISA_TOKENS_FILE: cannot read /nope: ENOENT: no such file');
    await expect(configFromEnv({ LISA_TOKENS: tok.line }, {}, noFile)).rejects.toThrow(/^LISA_STORE: no store/);
  });

  it('reads ref prefixes and the backend', async () => {
    const c = await configFromEnv({ ...base, LISA_REF_PREFIXES: 's3://b/bases/, s3://b/data/{tenant}/', LISA_BACKEND: 'wasm' }, {}, noFile);
    expect([c.refPrefixes, c.backend]).toEqual([['s3://b/bases/', 's3://b/data/{tenant}/'], 'wasm']);
    await expect(configFromEnv({ ...base, LISA_BACKEND: 'cuda' }, {}, noFile)).rejects.toMatchObject({ code: 'ENGINE_BACKEND_INVALID', message: 'LISA_BACKEND=cuda: expected one of tensorflow, wasm, cpu' });
  });
});
