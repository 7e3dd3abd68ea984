/** JSONL records: one JSON object per line, reduced to the mapped fields as text. */
import { DatasetParseError, FieldTypeError, MissingFieldError } from './errors.ts';

export interface TextRecord {
  /** 1-based line number in the source, for messages. */
  line: number;
  values: Record<string, string>;
}

/** Every non-blank line as a record of `fields`; numbers become their decimal text. */
export function parseJsonl(text: string, source: string, fields: readonly string[]): TextRecord[] {
  const records: TextRecord[] = [];
  for (const { line, obj: o } of jsonObjects(text, source)) {
    const values: Record<string, string> = {};
    for (const f of fields) {
      if (!Object.hasOwn(o, f)) throw new MissingFieldError(source, line, f, Object.keys(o), [...fields]);
      const v = o[f];
      if (typeof v === 'string') values[f] = v;
      else if (typeof v === 'number') values[f] = String(v);
      else throw new FieldTypeError(source, line, f, v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
    }
    records.push({ line, values });
  }
  return records;
}

/** Every non-blank line as a JSON object, with its 1-based line number. */
export function jsonObjects(text: string, source: string): Array<{ line: number; obj: Record<string, unknown> }> {
  const out: Array<{ line: number; obj: Record<string, unknown> }> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    const line = i + 1;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (err) {
      throw new DatasetParseError(source, line, 'invalid JSON', err);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new DatasetParseError(source, line, `got ${Array.isArray(obj) ? 'an array' : obj === null ? 'null' : `a ${typeof obj}`}`);
    }
    out.push({ line, obj: obj as Record<string, unknown> });
  }
  return out;
}
