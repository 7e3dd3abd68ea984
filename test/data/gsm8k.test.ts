import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nextBatch, prepareDataset } from '../../core/data/index.ts';
import { charTokenizer, ids } from './helpers.ts';

const dir = new URL('../../data/gsm8k/', import.meta.url);

describe('bundled GSM8K', () => {
  it.each([
    ['train.jsonl', 7473],
    ['test.jsonl', 1319],
  ])('%s loads with fields question,answer', (file, count) => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    const ds = prepareDataset(text, { source: file, format: 'jsonl', fields: ['question', 'answer'], maxSeqLen: 2048, seed: 0, tokenizer: charTokenizer });
    expect(ds.stats.records).toBe(count);
    expect(ds.stats.dropped).toBe(0);
    expect(ds.train).toHaveLength(count);
    const first = JSON.parse(text.slice(0, text.indexOf('\n'))) as { question: string; answer: string };
    const prompt = [1, ...ids(`Question: ${first.question}\nAnswer:`)];
    expect(ds.train[0].ids).toEqual([...prompt, ...ids(first.answer), 2]);
    expect(ds.train[0].mask.indexOf(1)).toBe(prompt.length);
    expect(nextBatch(ds, { epoch: 0, index: 0 }, 4).tokens).toHaveLength(4);
  });

  it('ships its MIT license', () => {
    expect(readFileSync(new URL('LICENSE', dir), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) 2021 OpenAI/);
  });
});
