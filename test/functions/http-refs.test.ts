import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, harness, MODEL_DIR, type Harness, type Server } from './harness.ts';

describe.each(BACKENDS)('HTTP ref confinement ($name store)', (backend) => {
  let h: Harness;
  let server: Server;
  let secret: string;
  beforeAll(async () => {
    h = await harness(backend);
    server = await h.start();
    secret = join(h.dir, 'secret.jsonl');
    await writeFile(secret, '{"question":"q","answer":"a secret"}\n');
    await mkdir(join(h.dir, 'exports', 'alpha', 'model'), { recursive: true });
    await symlink(secret, h.out('link.jsonl'));
    // a base directory whose files are links: one inside the allowed locations, one out
    await copyFile(join(MODEL_DIR, 'config.json'), join(h.dir, 'config.json'));
    await symlink(join(MODEL_DIR, 'model.safetensors'), h.out('model/model.safetensors'));
    await symlink(join(h.dir, 'config.json'), h.out('model/config.json'));
  });
  afterAll(() => h.close());

  it('accepts refs in the tenant area and under the operator prefixes', async () => {
    const r = await h.createRun(server);
    expect([r.status, r.json.config.base, r.json.config.data], r.text).toEqual([201, MODEL_DIR, h.data]);
  });

  it('refuses refs outside with 403 REF_FORBIDDEN, before reading or writing anything', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['absolute path outside', { data: secret }, "it is outside this tenant's area"],
      ['.. out of the area', { data: h.area('alpha', 'inputs/../../beta/inputs/qa.jsonl') }, "empty, '.' and '..' path segments are not accepted"],
      ['percent-encoded ..', { data: h.area('alpha', 'inputs/%2e%2e/%2e%2e/beta/inputs/qa.jsonl') }, 'percent-encoding, backslashes and control characters are not accepted in refs'],
      ["another tenant's area", { data: h.dataOf('beta') }, "it is outside this tenant's area"],
      ['a file: URL', { data: `file://${h.out('qa.jsonl')}` }, 'only absolute paths, s3:// and hf:// refs are accepted'],
      ['a relative path', { data: 'qa.jsonl' }, 'a relative path is not accepted over HTTP; name it absolutely'],
      ['a symlink leading out', { data: h.out('link.jsonl') }, 'it resolves (through a symlink) outside the allowed locations'],
      ['a base whose file links out', { base: h.out('model') }, 'config.json in it resolves (through a symlink) outside the allowed locations'],
    ];
    for (const [what, config, why] of cases) {
      const r = await h.createRun(server, config);
      const [field, ref] = Object.entries(config)[0];
      expect([what, r.status, r.json.error.code, r.json.error.details], r.text).toEqual([what, 403, 'REF_FORBIDDEN', { field, ref }]);
      expect(r.json.error.message.startsWith(`${field} ${ref}: ${why}; allowed: `), r.json.error.message).toBe(true);
    }
    expect(await h.root.list('tenants/alpha/runs/')).toHaveLength(1);
  });

  it('confines export and composition outputs to where the tenant may write', async () => {
    const run = (await h.createRun(server)).json.id;
    for (const out of [join(h.dir, 'elsewhere'), h.out('theirs', 'beta'), h.area('alpha', 'runs/forged')]) {
      const exp = await h.request(server, 'POST', `/v1/runs/${run}/exports`, { body: { out } });
      expect([out, exp.status, exp.json.error.code]).toEqual([out, 403, 'REF_FORBIDDEN']);
    }
    const comp = await h.request(server, 'POST', '/v1/compositions', { body: { base: join(h.dir, 'model'), runs: [{ id: run }], method: 'linear', out: h.out('c') } });
    expect([comp.status, comp.json.error.code, comp.json.error.details.field]).toEqual([403, 'REF_FORBIDDEN', 'base']);
    const ok = await h.request(server, 'POST', `/v1/runs/${run}/exports`, { body: { out: h.out('mine'), delta: true } });
    expect([ok.status, ok.json.out], ok.text).toEqual([201, h.out('mine')]);
  });
});
