import { describe, expect, it } from 'vitest';
import {
  DataConfigError,
  DatasetParseError,
  EmptyDatasetError,
  FieldTypeError,
  MissingFieldError,
  prepareDataset,
  UnknownFormatError,
  type DatasetOptions,
} from '../../core/data/index.ts';
import { charTokenizer, ids, jsonl } from './helpers.ts';

const qa: DatasetOptions = { source: 'qa.jsonl', format: 'jsonl', fields: ['q', 'a'], template: 'Q{q}A', maxSeqLen: 64, seed: 1, tokenizer: charTokenizer };

describe('prepareDataset (jsonl)', () => {
  it('encodes [BOS] prompt response [EOS] with the mask exactly on the response and EOS', () => {
    const ds = prepareDataset(jsonl({ q: 'xy', a: 'z!' }), qa);
    expect(ds.train).toEqual([
      {
        ids: [1, ...ids('QxyA'), ...ids('z!'), 2],
        mask: [0, 0, 0, 0, 0, 1, 1, 1],
      },
    ]);
    expect(ds.heldOut).toEqual([]);
    expect(ds.stats).toEqual({ records: 1, truncated: 0, dropped: 0, trainTokens: 3 });
    expect(ds.seqLen).toBe(64);
  });

  it('uses the Alpaca mapping and template by default', () => {
    const ds = prepareDataset(jsonl({ instruction: 'I', input: '', output: 'O', extra: 1 }), { ...qa, fields: undefined, template: undefined });
    expect(ds.train[0].ids).toEqual([1, ...ids('### Instruction:\nI\n\n### Response:\n'), ...ids('O'), 2]);
  });

  it('truncates to seqLen + 1 ids and drops examples left without loss tokens', () => {
    const text = jsonl({ q: 'ab', a: 'cdef' }, { q: 'long prompt', a: 'r' }, { q: '', a: 'x' });
    const ds = prepareDataset(text, { ...qa, seqLen: 6 });
    // [BOS] Q a b A | c d e f [EOS]: 7 ids kept, the response cut after 'c' and 'd'.
    expect(ds.train).toEqual([
      { ids: [1, ...ids('QabA'), ...ids('cd')], mask: [0, 0, 0, 0, 0, 1, 1] },
      { ids: [1, ...ids('QA'), ...ids('x'), 2], mask: [0, 0, 0, 1, 1] },
    ]);
    expect(ds.stats).toEqual({ records: 3, truncated: 2, dropped: 1, trainTokens: 4 });
  });

  it('reads numbers as text, skips blank lines and a BOM, counts lines from 1', () => {
    const ds = prepareDataset('\uFEFF{"q": 12, "a": "r"}\r\n\n   \n' + jsonl({ q: 'x', a: 'y' }), qa);
    expect(ds.train.map((e) => e.ids.slice(1, -1))).toEqual([ids('Q12Ar'), ids('QxAy')]);
    expect(() => prepareDataset('\n\n{"q": "x"}\n', qa)).toThrow('qa.jsonl:3: missing field "a"');
  });

  it('holds out a seeded, deterministic pick of examples, both parts in file order', () => {
    const rows = Array.from({ length: 20 }, (_, i) => ({ q: String(i), a: 'r' }));
    const ds = prepareDataset(jsonl(...rows), { ...qa, heldOut: 5 });
    const number = (e: { ids: number[] }) => Number(String.fromCharCode(...e.ids.slice(2, -3).map((c) => c - 3)));
    const held = ds.heldOut.map(number);
    expect(held).toHaveLength(5);
    expect(held).toEqual([...held].sort((a, b) => a - b));
    expect(ds.train.map(number)).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((i) => !held.includes(i)));
    expect(prepareDataset(jsonl(...rows), { ...qa, heldOut: 5 }).heldOut).toEqual(ds.heldOut);
    expect(prepareDataset(jsonl(...rows), { ...qa, heldOut: 5, seed: 2 }).heldOut.map(number)).not.toEqual(held);
    // Regression pin of the pick for seed 1.
    expect(held).toEqual([0, 3, 8, 14, 16]);
  });

  it('names file and line for a line that is not a JSON object', () => {
    const text = jsonl({ q: 'a', a: 'b' }) + '{"q": "a", "a": }\n';
    const err = (() => {
      try {
        prepareDataset(text, qa);
      } catch (e) {
        return e;
      }
    })() as DatasetParseError;
    expect(err).toBeInstanceOf(DatasetParseError);
    expect(err.code).toBe('DATA_LINE_INVALID');
    expect(err.message).toBe('qa.jsonl:2: invalid JSON; expected one JSON object per line');
    expect(err.cause).toBeInstanceOf(SyntaxError);
    expect(() => prepareDataset('[1, 2]\n', qa)).toThrow('qa.jsonl:1: got an array; expected one JSON object per line');
    expect(() => prepareDataset('"text"\n', qa)).toThrow('qa.jsonl:1: got a string; expected one JSON object per line');
    expect(() => prepareDataset('null\n', qa)).toThrow('qa.jsonl:1: got null; expected one JSON object per line');
  });

  it('names file, line, the missing field and the fields present', () => {
    const text = jsonl({ q: 'a', a: 'b' }, { q: 'a', a: 'b' }, { question: 'a', solution: 'b' });
    const run = () => prepareDataset(text, qa);
    expect(run).toThrow(MissingFieldError);
    expect(run).toThrow('qa.jsonl:3: missing field "q" (the line has: question, solution; the field mapping is: q, a)');
    expect(() => prepareDataset('{}\n', qa)).toThrow('qa.jsonl:1: missing field "q" (the line has: no fields; the field mapping is: q, a)');
    expect(() => prepareDataset(jsonl({ q: 'a', a: null }), qa)).toThrow(FieldTypeError);
    expect(() => prepareDataset(jsonl({ q: ['a'], a: 'b' }), qa)).toThrow('qa.jsonl:1: field "q" must be a string or a number, got an array');
  });

  it('has its own error for an empty dataset', () => {
    const empty = (text: string, opts: Partial<DatasetOptions>, message: string) => {
      const run = () => prepareDataset(text, { ...qa, ...opts });
      expect(run).toThrow(EmptyDatasetError);
      expect(run).toThrow(message);
    };
    empty('', {}, 'qa.jsonl: no JSONL records (the file is empty or only blank lines)');
    empty('\n \n', {}, 'qa.jsonl: no JSONL records (the file is empty or only blank lines)');
    empty(jsonl({ q: 'long', a: 'r' }), { seqLen: 5 }, 'qa.jsonl: none of the 1 records has a response token left within seqLen 5 (prompts too long?)');
    empty(' \n', { format: 'text', source: 'a.txt' }, 'a.txt: the text is empty');
  });

  it('rejects unknown formats and out-of-range options', () => {
    expect(() => prepareDataset('', { ...qa, format: 'csv' as never })).toThrow(UnknownFormatError);
    expect(() => prepareDataset('', { ...qa, format: 'csv' as never })).toThrow('qa.jsonl: unknown dataset format "csv"; supported: jsonl, text');
    const bad = (opts: Partial<DatasetOptions>, message: string) => {
      expect(() => prepareDataset(jsonl({ q: 'a', a: 'b' }), { ...qa, ...opts })).toThrow(DataConfigError);
      expect(() => prepareDataset(jsonl({ q: 'a', a: 'b' }), { ...qa, ...opts })).toThrow(message);
    };
    bad({ seqLen: 65 }, "seqLen must be an integer between 1 and the model's context 64, got 65");
    bad({ seqLen: 0 }, "seqLen must be an integer between 1 and the model's context 64, got 0");
    bad({ maxSeqLen: 0 }, 'maxSeqLen must be a positive integer, got 0');
    bad({ heldOut: 1 }, 'heldOut 1 leaves no training examples: qa.jsonl has 1 usable examples');
    bad({ heldOut: -1 }, 'heldOut must be a non-negative integer, got -1');
  });
});

describe('prepareDataset (text)', () => {
  const text: DatasetOptions = { source: 'a.txt', format: 'text', maxSeqLen: 4, seed: 0, tokenizer: charTokenizer };

  it('packs [BOS] text [EOS] into overlapping windows with every token a target once', () => {
    const ds = prepareDataset('abcdefgh', text);
    const all = [1, ...ids('abcdefgh'), 2];
    expect(ds.train).toEqual([
      { ids: all.slice(0, 5), mask: [0, 1, 1, 1, 1] },
      { ids: all.slice(4, 9), mask: [0, 1, 1, 1, 1] },
      { ids: all.slice(8, 10), mask: [0, 1] },
    ]);
    expect(ds.stats).toEqual({ records: 3, truncated: 0, dropped: 0, trainTokens: 9 });
  });

  it('packs to seqLen when it is below the model context', () => {
    const ds = prepareDataset('abcd', { ...text, seqLen: 2 });
    expect(ds.train.map((e) => e.ids.length)).toEqual([3, 3, 2]);
  });
});
