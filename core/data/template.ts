/**
 * Prompt templates: how a JSONL record's prompt fields become the prompt text.
 *
 * Syntax: `{field}` inserts a prompt field; `{?field}…{/field}` keeps its body only when the
 * field is not blank (Alpaca's optional input); `{{` and `}}` are literal braces.
 * The response field never appears in the template: it is encoded after the prompt (example.ts).
 */
import { DataConfigError } from './errors.ts';

export const ALPACA_FIELDS: readonly string[] = ['instruction', 'input', 'output'];
export const ALPACA_TEMPLATE = '### Instruction:\n{instruction}\n\n{?input}### Input:\n{input}\n\n{/input}### Response:\n';

export interface PromptFormat {
  /** The fields the prompt is built from, in mapping order. */
  promptFields: string[];
  responseField: string;
  template: string;
  render(values: Readonly<Record<string, string>>): string;
}

type Node = string | { field: string } | { section: string; body: Node[] };

/**
 * The prompt format of a field mapping (prompt fields…, response field; default Alpaca) and an
 * optional template. Without a template: Alpaca's for the Alpaca fields, otherwise one
 * "Label: {field}" line per prompt field and "Label:" for the response, e.g.
 * "Question: {question}\nAnswer:" for ['question', 'answer']. Default templates end without a
 * trailing space because SentencePiece-style tokenizers start the separately encoded response
 * with their own.
 */
export function promptFormat(fields: readonly string[] = ALPACA_FIELDS, template?: string): PromptFormat {
  if (!Array.isArray(fields) || fields.length < 2 || fields.some((f) => typeof f !== 'string' || f === '')) {
    throw new DataConfigError(`fields must list at least one prompt field and then the response field, got ${JSON.stringify(fields)}`);
  }
  const braced = fields.find((f) => /[{}?/]/.test(f));
  if (braced !== undefined) throw new DataConfigError(`field name "${braced}" cannot be used in a template: it contains { } ? or /`);
  const dup = fields.find((f, i) => fields.indexOf(f) !== i);
  if (dup !== undefined) throw new DataConfigError(`fields lists "${dup}" twice`);
  const promptFields = fields.slice(0, -1);
  const responseField = fields[fields.length - 1];
  const text = template ?? defaultTemplate(fields);
  const nodes = parse(text, promptFields, responseField);
  return {
    promptFields,
    responseField,
    template: text,
    render(values) {
      const missing = promptFields.find((f) => typeof values[f] !== 'string');
      if (missing !== undefined) throw new DataConfigError(`prompt field "${missing}" has no text value`);
      return renderNodes(nodes, values);
    },
  };
}

function defaultTemplate(fields: readonly string[]): string {
  if (fields.length === ALPACA_FIELDS.length && fields.every((f, i) => f === ALPACA_FIELDS[i])) return ALPACA_TEMPLATE;
  const label = (f: string) => f.charAt(0).toUpperCase() + f.slice(1);
  return [...fields.slice(0, -1).map((f) => `${label(f)}: {${f}}\n`), `${label(fields[fields.length - 1])}:`].join('');
}

function parse(template: string, promptFields: string[], responseField: string): Node[] {
  const root: Node[] = [];
  const stack: { section: string; body: Node[] }[] = [];
  const out = () => (stack.length ? stack[stack.length - 1].body : root);
  const checkField = (name: string, tag: string) => {
    if (promptFields.includes(name)) return;
    const why = name === responseField ? 'is the response field, which follows the prompt' : 'is not a prompt field';
    throw new DataConfigError(`template placeholder ${tag}: "${name}" ${why}; prompt fields: ${promptFields.join(', ')}`, { template });
  };
  let text = '';
  const flush = () => {
    if (text) out().push(text);
    text = '';
  };
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if ((c === '{' || c === '}') && template[i + 1] === c) {
      text += c;
      i += 2;
      continue;
    }
    if (c === '}') throw new DataConfigError(`template has an unmatched "}" at offset ${i}; write "}}" for a literal brace`, { template });
    if (c !== '{') {
      text += c;
      i++;
      continue;
    }
    const end = template.indexOf('}', i);
    if (end < 0) throw new DataConfigError(`template has an unclosed "{" at offset ${i}; write "{{" for a literal brace`, { template });
    const tag = template.slice(i, end + 1);
    const inner = tag.slice(1, -1);
    flush();
    if (inner.startsWith('?')) {
      checkField(inner.slice(1), tag);
      const section = { section: inner.slice(1), body: [] as Node[] };
      out().push(section);
      stack.push(section);
    } else if (inner.startsWith('/')) {
      const open = stack.pop();
      if (!open || open.section !== inner.slice(1)) {
        throw new DataConfigError(`template closes ${tag} at offset ${i} but ${open ? `{?${open.section}} is open` : 'no section is open'}`, { template });
      }
    } else {
      checkField(inner, tag);
      out().push({ field: inner });
    }
    i = end + 1;
  }
  flush();
  if (stack.length) throw new DataConfigError(`template never closes {?${stack[stack.length - 1].section}} with {/${stack[stack.length - 1].section}}`, { template });
  return root;
}

function renderNodes(nodes: Node[], values: Readonly<Record<string, string>>): string {
  let s = '';
  for (const n of nodes) {
    if (typeof n === 'string') s += n;
    else if ('field' in n) s += values[n.field];
    else if (values[n.section].trim() !== '') s += renderNodes(n.body, values);
  }
  return s;
}
