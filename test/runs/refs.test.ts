import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANY_REF, checkRefAllowed, refError, tenantRefPolicy, type RefPolicy } from '../../core/runs/refs.ts';

let dir: string;
let policy: RefPolicy;
const refused = (ref: string, mode: 'read' | 'write' = 'read') =>
  checkRefAllowed(policy, 'data', ref, mode).then(
    () => 'allowed',
    (e: { code: string; message: string }) => `${e.code}: ${e.message.slice(`data ${ref}: `.length).split('; allowed: ')[0]}`,
  );

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lisa-refs-'));
  await mkdir(join(dir, 'store/tenants/acme/inputs'), { recursive: true });
  await mkdir(join(dir, 'shared'));
  await writeFile(join(dir, 'store/tenants/acme/inputs/qa.jsonl'), '{}\n');
  await symlink(join(dir, 'shared'), join(dir, 'store/tenants/acme/inputs/to-shared'));
  policy = tenantRefPolicy(`file://${dir}/store`, 'acme', ['s3://bucket/data/{tenant}/', 'hf://my-org/']);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('ref confinement', () => {
  it("is the tenant's inputs (read) and exports (read, write) plus the operator's prefixes", () => {
    expect(policy).toEqual({
      confined: true,
      read: [`${dir}/store/tenants/acme/inputs/`, 's3://bucket/data/acme/', 'hf://my-org/'],
      write: [`${dir}/store/tenants/acme/exports/`, 's3://bucket/data/acme/', 'hf://my-org/'],
    });
  });

  it('allows refs under a prefix, by whole path segments', async () => {
    expect(await refused(`${dir}/store/tenants/acme/inputs/qa.jsonl`)).toBe('allowed');
    expect(await refused(`${dir}/store/tenants/acme/exports/new/model`, 'write')).toBe('allowed');
    expect(await refused('s3://bucket/data/acme/qa.jsonl')).toBe('allowed');
    expect(await refused('hf://my-org/model@main')).toBe('allowed');
    expect(await refused('s3://bucket/data/acme-evil/qa.jsonl')).toBe("REF_FORBIDDEN: it is outside this tenant's area");
    expect(await refused(`${dir}/store/tenants/acme/inputs/qa.jsonl`, 'write')).toBe("REF_FORBIDDEN: it is outside this tenant's area");
  });

  it('refuses traversal, encodings, other schemes, relative paths and symlinks out', async () => {
    expect(await refused(`${dir}/store/tenants/acme/inputs/../../other/inputs/x`)).toBe("REF_FORBIDDEN: empty, '.' and '..' path segments are not accepted");
    expect(await refused('s3://bucket/data/acme//x')).toBe("REF_FORBIDDEN: empty, '.' and '..' path segments are not accepted");
    expect(await refused('s3://bucket/data/acme/%2e%2e/other/x')).toBe('REF_FORBIDDEN: percent-encoding, backslashes and control characters are not accepted in refs');
    expect(await refused('s3://bucket/data/acme/..\\x')).toBe('REF_FORBIDDEN: percent-encoding, backslashes and control characters are not accepted in refs');
    expect(await refused(`file://${dir}/store/tenants/acme/inputs/qa.jsonl`)).toBe('REF_FORBIDDEN: only absolute paths, s3:// and hf:// refs are accepted');
    expect(await refused('https://example.com/qa.jsonl')).toBe('REF_FORBIDDEN: only absolute paths, s3:// and hf:// refs are accepted');
    expect(await refused('tenants/acme/inputs/qa.jsonl')).toBe('REF_FORBIDDEN: a relative path is not accepted over HTTP; name it absolutely');
    expect(await refused(`${dir}/store/tenants/acme/inputs/to-shared/x.jsonl`)).toBe('REF_FORBIDDEN: it resolves (through a symlink) outside the allowed locations');
  });

  it('lets a local user name anything', async () => {
    await expect(checkRefAllowed(ANY_REF, 'data', '../x/%2e%2e', 'write')).resolves.toBeUndefined();
  });

  it('codes file-system failures by what the caller can do about them', () => {
    const errno = (code: string, path: string) => Object.assign(new Error(code), { code, path });
    expect(refError('data', '/d/qa.jsonl', errno('ENOENT', '/d/qa.jsonl'))?.message).toBe('data /d/qa.jsonl: no such file or directory');
    expect(refError('base', '/m', errno('EACCES', '/m/config.json'))).toMatchObject({ code: 'REF_INACCESSIBLE', message: 'base /m: permission denied (/m/config.json)' });
    expect(refError('out', '/o', errno('EISDIR', '/o'))).toMatchObject({ code: 'REF_WRONG_TYPE', kind: 'unusable-ref', details: { field: 'out', ref: '/o' } });
    expect(refError('data', '/d', new TypeError('a bug'))).toBeNull();
  });
});
