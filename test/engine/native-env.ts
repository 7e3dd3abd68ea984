import { describe, it } from 'vitest';
import { nativeKernels, nativeKernelsStatus, type NativeKernels } from '../../core/engine/native.ts';

/**
 * The native kernels for a test file, or null. Absent, the file gets one test that says why:
 * skipped on a developer's machine without a compiler (lisa-fn runs on its wasm kernels there),
 * failing under CI=true, where `npm test` builds them (native/build.sh, installing gcc and
 * OpenBLAS as root) and a suite that quietly skipped would pass with them broken.
 */
export function nativeForTests(label: string): NativeKernels | null {
  const kernels = nativeKernels();
  if (kernels) return kernels;
  describe(`${label} (native kernels)`, () => {
    const why = `${nativeKernelsStatus()}; build them with \`npm run build:native\` (npm test does)`;
    if (process.env.CI) it('has the native kernels built', () => void assertNever(why));
    else it.skip(why, () => undefined);
  });
  return null;
}

function assertNever(why: string): never {
  throw new Error(why);
}
