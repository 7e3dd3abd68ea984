import { describe, expect, it } from 'vitest';
import { DataConfigError, promptFormat } from '../../core/data/index.ts';

describe('promptFormat', () => {
  it('defaults to Alpaca, leaving out the input section when the input is blank', () => {
    const f = promptFormat();
    expect([f.promptFields, f.responseField]).toEqual([['instruction', 'input'], 'output']);
    expect(f.render({ instruction: 'Add.', input: '1 2' })).toBe('### Instruction:\nAdd.\n\n### Input:\n1 2\n\n### Response:\n');
    expect(f.render({ instruction: 'Add.', input: ' ' })).toBe('### Instruction:\nAdd.\n\n### Response:\n');
  });

  it('labels each field of other mappings, the response last', () => {
    expect(promptFormat(['question', 'answer']).template).toBe('Question: {question}\nAnswer:');
    expect(promptFormat(['question', 'answer']).render({ question: 'Why?' })).toBe('Question: Why?\nAnswer:');
    expect(promptFormat(['context', 'q', 'a']).render({ context: 'c', q: 'x' })).toBe('Context: c\nQ: x\nA:');
  });

  it('renders custom templates with literal braces and nested optional sections', () => {
    const f = promptFormat(['a', 'b', 'out'], '{{{a}}}{?b} b={b}{?a}!{/a}{/b} end');
    expect(f.render({ a: '1', b: '2' })).toBe('{1} b=2! end');
    expect(f.render({ a: '1', b: '' })).toBe('{1} end');
  });

  it('rejects bad mappings and templates', () => {
    const bad = (fields: string[], template: string | undefined, message: string) => {
      expect(() => promptFormat(fields, template)).toThrow(DataConfigError);
      expect(() => promptFormat(fields, template)).toThrow(message);
    };
    bad(['only'], undefined, 'fields must list at least one prompt field and then the response field, got ["only"]');
    bad(['a', ''], undefined, 'got ["a",""]');
    bad(['{x}', 'y'], undefined, 'field name "{x}" cannot be used in a template: it contains { } ? or /');
    bad(['a', 'a'], undefined, 'fields lists "a" twice');
    bad(['q', 'a'], 'Q: {question}', 'template placeholder {question}: "question" is not a prompt field; prompt fields: q');
    bad(['q', 'a'], '{q} {a}', 'template placeholder {a}: "a" is the response field, which follows the prompt; prompt fields: q');
    bad(['q', 'a'], '{q', 'template has an unclosed "{" at offset 0; write "{{" for a literal brace');
    bad(['q', 'a'], 'q}', 'template has an unmatched "}" at offset 1; write "}}" for a literal brace');
    bad(['q', 'a'], '{?q}x', 'template never closes {?q} with {/q}');
    bad(['q', 'r', 'a'], '{?q}{?r}{/q}{/r}', 'template closes {/q} at offset 8 but {?r} is open');
    bad(['q', 'a'], '{/q}', 'template closes {/q} at offset 0 but no section is open');
    expect(() => promptFormat(['q', 'a']).render({})).toThrow('prompt field "q" has no text value');
  });
});
