/**
 * The real `lisa` command given missing, unreadable and wrong-type paths for the base, the data,
 * the store and the output: every one exits 1 with a single `error CODE: message` line, no stack.
 *
 * Permissions stop no one running as root, so the unreadable cases run the command as `nobody`
 * when the suite runs as root (chmod 000 then works as it does for a user); a symlink loop is
 * unreadable for anyone.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const asRoot = process.getuid?.() === 0;
const NOBODY = 65534;

function lisa(args: string[], opts: { unprivileged?: boolean; env?: Record<string, string | undefined> } = {}) {
  const spawnOpts: SpawnSyncOptions = {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, LISA_BACKEND: 'wasm', ...opts.env },
    ...(opts.unprivileged && asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  };
  const r = spawnSync(process.execPath, ['bin/lisa.js', ...args], spawnOpts);
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

let tmp: string;
let store: string;
let data: string;
const BASE = 'models/stories260K';

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'lisa-bad-paths-'));
  chmodSync(tmp, 0o755);
  store = join(tmp, 'store');
  mkdirSync(store);
  data = join(tmp, 'qa.jsonl');
  writeFileSync(data, Array.from({ length: 8 }, (_, i) => JSON.stringify({ question: `q${i}?`, answer: `a${i}.` })).join('\n'));
  if (asRoot) chownSync(store, NOBODY, NOBODY);
  mkdirSync(join(tmp, 'locked'));
  writeFileSync(join(tmp, 'locked.jsonl'), '{}\n');
  chmodSync(join(tmp, 'locked'), 0o000);
  chmodSync(join(tmp, 'locked.jsonl'), 0o000);
  mkdirSync(join(tmp, 'readonly'));
  chmodSync(join(tmp, 'readonly'), 0o555);
  symlinkSync(join(tmp, 'loop'), join(tmp, 'loop'));
  mkdirSync(join(tmp, 'a-dir'));
  writeFileSync(join(tmp, 'a-file'), 'x');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** exit 1 and exactly one line on stderr, `error CODE: <field> <path>: <why>` */
function expectOneLine(r: { code: number | null; stderr: string }, code: string, start: string): void {
  expect({ code: r.code, lines: r.stderr.split('\n').length - 1, head: r.stderr.slice(0, `error ${code}: ${start}`.length) }, r.stderr).toEqual({
    code: 1,
    lines: 1,
    head: `error ${code}: ${start}`,
  });
}

describe('lisa with bad paths: one coded line, exit 1, no stack', () => {
  const create = (base: string, dataRef: string, storeRef = store) => ['run', 'create', '--store', storeRef, '--base', base, '--data', dataRef, '--fields', 'question,answer'];

  it('base: missing, a file, unreadable, a symlink loop', () => {
    expectOneLine(lisa(create(join(tmp, 'nope'), data), { unprivileged: true }), 'REF_NOT_FOUND', `base ${join(tmp, 'nope')}: no such file or directory`);
    expectOneLine(lisa(create(join(tmp, 'a-file'), data), { unprivileged: true }), 'REF_WRONG_TYPE', `base ${join(tmp, 'a-file')}: is a file; expected a directory`);
    expectOneLine(lisa(create(join(tmp, 'locked'), data), { unprivileged: true }), 'REF_INACCESSIBLE', `base ${join(tmp, 'locked')}: permission denied`);
    expectOneLine(lisa(create(join(tmp, 'loop'), data), { unprivileged: true }), 'REF_INACCESSIBLE', `base ${join(tmp, 'loop')}: too many levels of symbolic links`);
  });

  it('data: missing, a directory, unreadable, a symlink loop', () => {
    expectOneLine(lisa(create(BASE, join(tmp, 'nope.jsonl')), { unprivileged: true }), 'REF_NOT_FOUND', `data ${join(tmp, 'nope.jsonl')}: no such file or directory`);
    expectOneLine(lisa(create(BASE, join(tmp, 'a-dir')), { unprivileged: true }), 'REF_WRONG_TYPE', `data ${join(tmp, 'a-dir')}: is a directory; expected a file`);
    expectOneLine(lisa(create(BASE, join(tmp, 'locked.jsonl')), { unprivileged: true }), 'REF_INACCESSIBLE', `data ${join(tmp, 'locked.jsonl')}: permission denied`);
    expectOneLine(lisa(create(BASE, join(tmp, 'loop')), { unprivileged: true }), 'REF_INACCESSIBLE', `data ${join(tmp, 'loop')}: too many levels of symbolic links`);
  });

  it('store: a file, below a file, unreadable, not writable; a missing store has no runs', () => {
    expectOneLine(lisa(create(BASE, data, join(tmp, 'a-file'))), 'REF_WRONG_TYPE', `store ${join(tmp, 'a-file')}: is a file; expected a directory`);
    expectOneLine(lisa(['status', '--store', join(tmp, 'a-file', 'sub'), '--run', 'r']), 'REF_WRONG_TYPE', `store ${join(tmp, 'a-file', 'sub')}: a path component is a file`);
    expectOneLine(lisa(['status', '--store', join(tmp, 'locked'), '--run', 'r'], { unprivileged: true }), 'REF_INACCESSIBLE', `store ${join(tmp, 'locked')}: permission denied`);
    expectOneLine(lisa(create(BASE, data, join(tmp, 'readonly')), { unprivileged: true }), 'REF_INACCESSIBLE', `store ${join(tmp, 'readonly')}: permission denied`);
    expectOneLine(lisa(['status', '--store', join(tmp, 'nope'), '--run', 'r']), 'RUN_NOT_FOUND', `run 'r' not found in file://${join(tmp, 'nope')}`);
  });

  it('out: a file for a model, a directory for a delta, below a file, not writable', () => {
    const created = lisa([...create(BASE, data), '--id', 'r1'], { unprivileged: true });
    expect([created.code, created.stdout, created.stderr]).toEqual([0, 'r1\n', '']);
    const exp = (out: string, ...more: string[]) => lisa(['export', '--store', store, '--run', 'r1', '--out', out, ...more], { unprivileged: true });
    expectOneLine(exp(join(tmp, 'a-file')), 'REF_WRONG_TYPE', `out ${join(tmp, 'a-file')}: is a file; expected a directory`);
    expectOneLine(exp(join(tmp, 'a-dir'), '--delta'), 'REF_WRONG_TYPE', `out ${join(tmp, 'a-dir')}: is a directory; expected a file`);
    expectOneLine(exp(join(tmp, 'a-file', 'model')), 'REF_WRONG_TYPE', `out ${join(tmp, 'a-file', 'model')}: a path component is a file, not a directory`);
    expectOneLine(exp(join(tmp, 'readonly', 'model')), 'REF_INACCESSIBLE', `out ${join(tmp, 'readonly', 'model')}: permission denied (${join(tmp, 'readonly')})`);
  });
});

describe('lisa prints no third-party noise', () => {
  it('no tfjs "install the node backend" banner on the cpu backend', () => {
    const r = lisa(['generate', '--model', BASE, '--prompt', 'Once', '--max-tokens', '8', '--temperature', '0'], { env: { LISA_BACKEND: 'cpu' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^generated 7 tokens after a 2-token prompt; achieved tok\/s: [\d.]+\n$/);
  });

  it('no AWS SDK Node-version notice, without the caller setting its switch; an unreachable store exits 69', () => {
    const env = {
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined,
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    };
    const r = lisa(['status', '--store', 's3://no-bucket/x', '--run', 'r'], { env });
    expect([r.code, r.stderr]).toEqual([69, expect.stringMatching(/^error STORE_REQUEST_FAILED: S3 get runs\/r\/run.json in store s3:\/\/no-bucket\/x failed: .*ECONNREFUSED.*\n$/)]);
  });
});
