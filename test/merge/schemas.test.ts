import { describe, expect, it } from 'vitest';
import { CompositionRequestSchema, ExportRequestSchema, parseSize } from '../../core/merge/index.ts';

describe('request bodies', () => {
  it('parse sizes to bytes and fill defaults', () => {
    expect(ExportRequestSchema.parse({ out: 's3://b/m', shardSize: '500MB' })).toEqual({ out: 's3://b/m', dtype: 'base', shardSize: 500_000_000, delta: false, adapter: false });
    expect(CompositionRequestSchema.parse({ base: 'b', runs: [{ id: 'a', at: 2 }], method: 'dare', density: 0.3, out: 'o' })).toEqual({
      base: 'b',
      runs: [{ id: 'a', weight: 1, at: 2 }],
      method: 'dare',
      density: 0.3,
      lambda: 1,
      seed: 0,
      consensus: false,
      out: 'o',
      dtype: 'base',
    });
  });

  it('reject bad sizes, dtypes, methods and densities with the field named', () => {
    const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) => r.error?.issues.map((i) => i.path.join('.'));
    expect(issues(ExportRequestSchema.safeParse({ out: 'o', shardSize: '2XB' }))).toEqual(['shardSize']);
    expect(issues(ExportRequestSchema.safeParse({ out: 'o', dtype: 'f8' }))).toEqual(['dtype']);
    expect(issues(CompositionRequestSchema.safeParse({ base: 'b', runs: [{ id: 'a' }], method: 'slerp', out: 'o' }))).toEqual(['method']);
    expect(issues(CompositionRequestSchema.safeParse({ base: 'b', runs: [{ id: 'a' }], method: 'ties', density: 0, out: 'o' }))).toEqual(['density']);
    expect(issues(CompositionRequestSchema.safeParse({ base: 'b', runs: [], method: 'linear', out: 'o' }))).toEqual(['runs']);
  });
});

describe('parseSize', () => {
  it('reads decimal and binary units like transformers', () => {
    expect(parseSize('2GB')).toBe(2_000_000_000);
    expect(parseSize('1.5GiB')).toBe(1_610_612_736);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('10 kb')).toBe(10_000);
    expect(() => parseSize('0')).toThrow(/positive number of bytes/);
    expect(() => parseSize('-1GB')).toThrow(/positive number of bytes/);
  });
});
