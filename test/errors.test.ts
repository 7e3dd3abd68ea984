import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../cli/errors.ts';
import { ERROR_CODES, ERROR_KINDS, LisaError } from '../core/errors.ts';
import { STATUS } from '../functions/errors.ts';

const root = new URL('../', import.meta.url).pathname;
const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');

/** The rows of the markdown table under `## heading`, as arrays of cells without backticks. */
function table(heading: string): string[][] {
  const section = doc.split(/^## /m).find((s) => s.startsWith(`${heading}\n`));
  if (!section) throw new Error(`docs/errors.md has no section ## ${heading}`);
  return section
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .slice(1)
    .map((l) => l.split(' | ').map((c) => c.replace(/^\| |\|$/g, '').trim().replace(/^`|`$/g, '')));
}

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

describe('error codes, kinds, HTTP statuses and exit codes', () => {
  it('docs/errors.md lists every kind with the status and exit code the front ends use', () => {
    expect(table('Kinds').map(([kind, status, exit]) => [kind, Number(status), Number(exit)])).toEqual(
      ERROR_KINDS.map((k) => [k, STATUS[k], EXIT[k]]),
    );
  });

  it('docs/errors.md lists every code, in order, with its kind, status and exit code', () => {
    const rows = table('Codes').map(([code, kind, status, exit]) => [code, kind, Number(status), Number(exit)]);
    expect(rows).toEqual(Object.entries(ERROR_CODES).map(([code, kind]) => [code, kind, STATUS[kind], EXIT[kind]]));
  });

  it('every registered code is raised somewhere in core, functions or cli', () => {
    const text = ['core', 'functions', 'cli']
      .flatMap(sources)
      .filter((f) => f !== join('core', 'errors.ts'))
      .map((f) => readFileSync(join(root, f), 'utf8'))
      .join('\n');
    const unused = Object.keys(ERROR_CODES).filter((code) => !text.includes(`'${code}'`));
    expect(unused).toEqual([]);
  });

  it('an error carries the kind its code is registered with', () => {
    const err = new LisaError('CHUNK_CONFLICT', 'lost the race');
    expect([err.code, err.kind, err.name]).toEqual(['CHUNK_CONFLICT', 'conflict', 'LisaError']);
  });
});
