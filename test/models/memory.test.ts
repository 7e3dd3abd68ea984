import { describe, expect, it } from 'vitest';
import { checkTrainingFits, trainingBytes, WASM_HEAP_BYTES } from '../../core/models/memory.ts';
import { unitNames } from '../../core/models/units.ts';
import { LLAMA_32_1B, QWEN25_05B, SMOLLM2_135M } from '../../bench/model-shapes.ts';

describe('the size ceiling', () => {
  it('refuses Llama-3.2-1B and Qwen2.5-0.5B (measured to fault) on wasm before loading, naming the estimate, the 4 GiB limit and the tensorflow backend', () => {
    const plan = { units: ['embed', 'layers.0', 'layers.1', 'head'], batchSize: 1, seqLen: 64 };
    expect(trainingBytes(LLAMA_32_1B, plan)).toBeGreaterThan(WASM_HEAP_BYTES);
    let err: { code?: string; message?: string } = {};
    try {
      checkTrainingFits(LLAMA_32_1B, plan, 'wasm', 'run r on hf://meta-llama/Llama-3.2-1B');
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('MODEL_TOO_BIG_FOR_BACKEND');
    expect(err.message).toMatch(
      /^run r on hf:\/\/meta-llama\/Llama-3\.2-1B: training needs about \d+\.\d\d GiB of engine memory, more than the 3\.40 GiB usable of the wasm backend's 4\.00 GiB heap; run it on the tensorflow backend \(LISA_BACKEND=tensorflow, tfjs-node\)/,
    );
    expect(() => checkTrainingFits(LLAMA_32_1B, plan, 'tensorflow', 'x')).not.toThrow();
    expect(() => checkTrainingFits(QWEN25_05B, { ...plan, units: ['embed', 'layers.0', 'layers.23', 'head'] }, 'wasm', 'q')).toThrow(/^q: training needs about 3\.95 GiB/);
  });

  it('lets SmolLM2-135M train every unit on wasm', () => {
    const plan = { units: unitNames(SMOLLM2_135M), batchSize: 4, seqLen: 128 };
    expect(() => checkTrainingFits(SMOLLM2_135M, plan, 'wasm', 'x')).not.toThrow();
    // weights 135M, and gradient + m + v of all of them: 4 x 4 bytes each, plus activations
    expect(trainingBytes(SMOLLM2_135M, plan)).toBeGreaterThan(16 * 134_515_008);
  });
});
