import { LisaError } from '../errors.ts';

/** A JSONL line that is not a JSON object. */
export class DatasetParseError extends LisaError {
  constructor(source: string, line: number, what: string, cause?: unknown) {
    super('DATA_LINE_INVALID', `${source}:${line}: ${what}; expected one JSON object per line`, { source, line }, { cause });
  }
}

/** A JSONL object without one of the mapped fields. */
export class MissingFieldError extends LisaError {
  constructor(source: string, line: number, field: string, present: string[], mapping: string[]) {
    super(
      'DATA_MISSING_FIELD',
      `${source}:${line}: missing field "${field}" (the line has: ${present.join(', ') || 'no fields'}; the field mapping is: ${mapping.join(', ')})`,
      { source, line, field, present, mapping },
    );
  }
}

/** A mapped field whose value is not text. */
export class FieldTypeError extends LisaError {
  constructor(source: string, line: number, field: string, got: string) {
    super('DATA_FIELD_TYPE', `${source}:${line}: field "${field}" must be a string or a number, got ${got}`, { source, line, field });
  }
}

/** Nothing to train on (or to evaluate). */
export class EmptyDatasetError extends LisaError {
  constructor(source: string, why: string) {
    super('DATA_EMPTY', `${source}: ${why}`, { source });
  }
}

export class UnknownFormatError extends LisaError {
  constructor(source: string, format: string, supported: readonly string[]) {
    super('DATA_UNKNOWN_FORMAT', `${source}: unknown dataset format ${JSON.stringify(format)}; supported: ${supported.join(', ')}`, {
      source,
      format,
    });
  }
}

/** A data option outside its domain: field mapping, template, lengths, batch size, cursor. */
export class DataConfigError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('DATA_CONFIG_INVALID', message, details);
  }
}

/** A chat row that is not a conversation with an assistant turn: messages / prompt-completion shape, roles, content. */
export class ChatRowError extends LisaError {
  constructor(code: 'DATA_CHAT_ROW_INVALID' | 'DATA_CHAT_ASSISTANT_MISSING', source: string, line: number, what: string) {
    super(code, `${source}:${line}: ${what}`, { source, line });
  }
}

/** A chat template that does not parse, fails to render a row, or renders a row's prefixes inconsistently. */
export class ChatTemplateError extends LisaError {
  constructor(code: 'DATA_CHAT_TEMPLATE_INVALID' | 'DATA_CHAT_TEMPLATE_UNSTABLE', message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}
