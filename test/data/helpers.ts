import type { DataTokenizer } from '../../core/data/index.ts';

/** One id per UTF-16 code unit (id = code + 3), BOS 1, EOS 2: ids are readable in assertions. */
export const charTokenizer: DataTokenizer = {
  bosId: 1,
  eosId: 2,
  encode(text, opts = {}) {
    const ids = [...text].map((c) => c.charCodeAt(0) + 3);
    return [...(opts.bos ? [1] : []), ...ids, ...(opts.eos ? [2] : [])];
  },
};

export const ids = (text: string) => charTokenizer.encode(text);
export const jsonl = (...rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
