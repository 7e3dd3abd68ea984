/**
 * Chat data: JSONL conversations rendered with the base's chat template (Jinja, through
 * @huggingface/jinja), with the loss on the assistant's tokens only.
 *
 * Rows: {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]} (OpenAI and
 * TRL's conversational format, multi-turn included), or {"prompt": "...", "completion": "..."},
 * which is the conversation [user: prompt, assistant: completion].
 *
 * How the mask is derived: the whole conversation is rendered once and tokenized once. For each
 * assistant turn i, the template renders the messages before it with the generation prompt; that
 * text must be a prefix of the whole (else the template is not prefix-stable and the row is
 * refused), and the turn starts where it ends. The turn ends where the rendering of messages 0..i
 * (no generation prompt) stops agreeing with the whole text, so whatever the template appends to
 * a reply (an end-of-turn token, eos, a newline) is trained and whatever it appends only at the
 * very end of a conversation is not. (A template that always appends a generation prompt, as the
 * first Llama 3 Instruct one does, also trains the tokens after the end-of-turn token that agree
 * with it; they follow the stop token, so no generation reaches them.) A character offset c becomes a token offset as the number of
 * leading tokens encode(text[0..c)) shares with encode(text): a token straddling the start of a
 * turn is trained, one straddling its end is not. The prompt part therefore tokenizes exactly as
 * `lisa generate --chat` tokenizes the same history.
 */
import { Template } from '@huggingface/jinja';
import type { ChatTokens } from '../tokenizers/tokenizer.ts';
import { ChatRowError, ChatTemplateError, DataConfigError } from './errors.ts';
import type { DataTokenizer, Encoded } from './example.ts';
import { jsonObjects } from './jsonl.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatRow {
  line: number;
  messages: ChatMessage[];
}

const ROLES = ['system', 'user', 'assistant'];

/** Every non-blank JSONL line as a conversation with at least one assistant turn. */
export function parseChatRows(text: string, source: string): ChatRow[] {
  return jsonObjects(text, source).map(({ line, obj }) => ({ line, messages: rowMessages(obj, source, line) }));
}

function rowMessages(obj: Record<string, unknown>, source: string, line: number): ChatMessage[] {
  const bad = (what: string): never => {
    throw new ChatRowError('DATA_CHAT_ROW_INVALID', source, line, what);
  };
  let messages: ChatMessage[];
  if (Object.hasOwn(obj, 'messages')) {
    if (!Array.isArray(obj.messages)) bad('"messages" must be an array of {"role", "content"} objects');
    messages = (obj.messages as unknown[]).map((m, i) => {
      const msg = m as Record<string, unknown>;
      if (typeof m !== 'object' || m === null || !ROLES.includes(msg.role as string)) {
        bad(`messages[${i}] must have "role" ${ROLES.map((r) => `"${r}"`).join(', ')}; got ${JSON.stringify((msg ?? {}).role ?? null)}`);
      }
      if (typeof msg.content !== 'string') bad(`messages[${i}].content must be a string; got ${JSON.stringify(msg.content ?? null)}`);
      return { role: msg.role as ChatMessage['role'], content: msg.content as string };
    });
  } else if (Object.hasOwn(obj, 'prompt') || Object.hasOwn(obj, 'completion')) {
    if (typeof obj.prompt !== 'string' || typeof obj.completion !== 'string') bad('"prompt" and "completion" must both be strings');
    messages = [
      { role: 'user', content: obj.prompt as string },
      { role: 'assistant', content: obj.completion as string },
    ];
  } else {
    return bad(`expected "messages" or "prompt" and "completion"; the line has: ${Object.keys(obj).join(', ') || 'no fields'}`);
  }
  if (!messages.some((m) => m.role === 'assistant')) {
    throw new ChatRowError('DATA_CHAT_ASSISTANT_MISSING', source, line, 'the conversation has no assistant turn, so nothing to train on');
  }
  return messages;
}

/** A compiled chat template with the tokens it references. */
export interface ChatFormat {
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string;
}

/**
 * The chat template to use: `override` (the text of --chat-template FILE) or the base's
 * tokenizer_config.json chat_template. `where` names the override in errors.
 */
export function chatFormat(tokens: ChatTokens | undefined, override?: { text: string; where: string }): ChatFormat {
  const source = override?.text ?? tokens?.template;
  const where = override?.where ?? "the base's tokenizer_config.json chat_template";
  if (source === undefined) {
    throw new DataConfigError(
      `no chat template: the base's tokenizer_config.json has no chat_template${tokens ? '' : ' (its tokenizer is not a Hugging Face tokenizer.json)'}; pass one with --chat-template FILE`,
    );
  }
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new ChatTemplateError('DATA_CHAT_TEMPLATE_INVALID', `${where} does not parse: ${(err as Error).message}`, { where });
  }
  return {
    render(messages, addGenerationPrompt) {
      return template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
        bos_token: tokens?.bosToken ?? '',
        eos_token: tokens?.eosToken ?? '',
      });
    },
  };
}

/** Leading elements (tokens, or UTF-16 code units) two sequences share. */
function sharedPrefix<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** One conversation as ids with the loss on its assistant turns (see the file comment), cut to seqLen + 1 ids. */
export function encodeChat(tok: DataTokenizer, format: ChatFormat, row: ChatRow, seqLen: number, source: string): Encoded {
  const render = (messages: readonly ChatMessage[], gen: boolean): string => {
    try {
      return format.render(messages, gen);
    } catch (err) {
      throw new ChatTemplateError('DATA_CHAT_TEMPLATE_INVALID', `${source}:${row.line}: the chat template fails to render this conversation: ${(err as Error).message}`, {
        source,
        line: row.line,
      });
    }
  };
  const text = render(row.messages, false);
  const ids = tok.encode(text);
  const mask = new Array<number>(ids.length).fill(0);
  const tokenAt = (chars: number) => sharedPrefix(tok.encode(text.slice(0, chars)), ids);
  row.messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = render(row.messages.slice(0, i), true);
    if (!text.startsWith(before)) {
      throw new ChatTemplateError(
        'DATA_CHAT_TEMPLATE_UNSTABLE',
        `${source}:${row.line}: the chat template renders messages 0..${i - 1} with the generation prompt as text that does not begin the whole conversation, so the assistant turn ${i} cannot be located; use a template that renders a conversation's prefixes as prefixes`,
        { source, line: row.line, turn: i },
      );
    }
    const end = sharedPrefix(render(row.messages.slice(0, i + 1), false), text);
    for (let t = tokenAt(before.length); t < tokenAt(Math.max(end, before.length)); t++) mask[t] = 1;
  });
  return { example: { ids: ids.slice(0, seqLen + 1), mask: mask.slice(0, seqLen + 1) }, truncated: ids.length > seqLen + 1 };
}

/** A chat prompt ready to generate from: the template applied with the generation prompt, and the ids that end a reply. */
export interface ChatPrompt {
  ids: number[];
  /** the template's end-of-turn token, the tokenizer's EOS */
  stopIds: number[];
}

/**
 * The conversation [system?, user: prompt] rendered with the generation prompt, for `lisa generate
 * --chat`. The end-of-turn token is the one the template writes right after a reply's content
 * (<|im_end|>, <|eot_id|>, </s>, <|end|>): the first token of what the trained spans of two
 * one-turn conversations with different replies ("A", "B") end with alike.
 */
export function chatPrompt(tok: DataTokenizer, format: ChatFormat, prompt: string, system?: string): ChatPrompt {
  const messages: ChatMessage[] = [...(system === undefined ? [] : [{ role: 'system' as const, content: system }]), { role: 'user', content: prompt }];
  const ids = tok.encode(format.render(messages, true));
  const replySpan = (reply: string) => {
    const { example } = encodeChat(tok, format, { line: 0, messages: [...messages, { role: 'assistant', content: reply }] }, Number.MAX_SAFE_INTEGER, 'chat prompt');
    return example.ids.filter((_, i) => example.mask[i] === 1).reverse();
  };
  const [a, b] = [replySpan('A'), replySpan('B')];
  const tail = sharedPrefix(a, b);
  const stopIds = [...new Set([...(tail > 0 ? [a[tail - 1]] : []), tok.eosId].filter((id) => id >= 0))];
  return { ids, stopIds };
}
