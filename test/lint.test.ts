import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url).pathname;

/** The rule ids eslint reports for `code` as if it were the file at `path`, with the repository's config. */
async function rulesHit(path: string, code: string): Promise<string[]> {
  const [result] = await new ESLint({ cwd: root }).lintText(code, { filePath: `${root}${path}` });
  return result.messages.map((m) => m.ruleId ?? m.message);
}

describe('eslint: the front ends reach core only through core/index.ts', () => {
  it('refuses a cli/ or functions/ import of a core internal, also as a type', async () => {
    expect(await rulesHit('cli/commands/x.ts', "import { readRunSpec } from '../../core/store/run-spec.ts';\nexport const f = readRunSpec;\n")).toEqual(['no-restricted-imports']);
    expect(await rulesHit('functions/x.ts', "import type { ObjectStore } from '../core/store/object-store.ts';\nexport type S = ObjectStore;\n")).toEqual(['no-restricted-imports']);
    expect(await rulesHit('functions/routes/x.ts', "import { LisaError } from '../../core/errors.ts';\nexport const E = LisaError;\n")).toEqual(['no-restricted-imports']);
  });

  it('allows core/index.ts there, and anything in core and the tests', async () => {
    expect(await rulesHit('cli/commands/x.ts', "import { LisaError } from '../../core/index.ts';\nexport const E = LisaError;\n")).toEqual([]);
    expect(await rulesHit('core/runs/x.ts', "import { readRunSpec } from '../store/run-spec.ts';\nexport const f = readRunSpec;\n")).toEqual([]);
    expect(await rulesHit('test/x.test.ts', "import { readRunSpec } from '../core/store/run-spec.ts';\nexport const f = readRunSpec;\n")).toEqual([]);
  });
});
