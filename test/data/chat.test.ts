import { describe, expect, it } from 'vitest';
import { chatFormat, chatPrompt, encodeChat, parseChatRows, prepareDataset, type ChatRow } from '../../core/data/index.ts';
import { loadTokenizerDir, type Tokenizer } from '../../core/tokenizers/index.ts';
import { familyDir } from '../models/families.ts';

const conversation: ChatRow = {
  line: 1,
  messages: [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: '2+2?' },
    { role: 'assistant', content: '4' },
  ],
};

/** ids and mask of `parts`: [text, trained] pieces, each encoded alone (they meet at special tokens). */
function expected(tok: Tokenizer, parts: Array<[string, 0 | 1]>) {
  const ids: number[] = [];
  const mask: number[] = [];
  for (const [text, trained] of parts) {
    const piece = tok.encode(text);
    ids.push(...piece);
    mask.push(...piece.map(() => trained));
  }
  return { ids, mask };
}

describe('chat masking, multi-turn, at token level', () => {
  it('qwen2 ChatML: the loss covers each reply, its <|im_end|> and the newline after it, nothing else', async () => {
    const tok = await loadTokenizerDir(familyDir('qwen2'));
    const format = chatFormat(tok.chat);
    const { example, truncated } = encodeChat(tok, format, conversation, 512, 'chat.jsonl');
    expect(truncated).toBe(false);
    const imStart = tok.encode('<|im_start|>');
    const imEnd = tok.encode('<|im_end|>');
    expect([imStart.length, imEnd.length, imStart[0], imEnd[0]]).toEqual([1, 1, 385, 386]);
    const want = expected(tok, [
      ['<|im_start|>', 0], ['system\nYou are a helpful assistant.', 0], ['<|im_end|>', 0], ['\n', 0],
      ['<|im_start|>', 0], ['user\nHi', 0], ['<|im_end|>', 0], ['\n', 0],
      ['<|im_start|>', 0], ['assistant\n', 0], ['Hello!', 1], ['<|im_end|>', 1], ['\n', 1],
      ['<|im_start|>', 0], ['user\n2+2?', 0], ['<|im_end|>', 0], ['\n', 0],
      ['<|im_start|>', 0], ['assistant\n', 0], ['4', 1], ['<|im_end|>', 1], ['\n', 1],
    ]);
    expect(example.ids).toEqual(want.ids);
    expect(example.mask).toEqual(want.mask);
    expect(example.mask.reduce((a, b) => a + b, 0)).toBe(tok.encode('Hello!').length + tok.encode('4').length + 4);
    // the prompt of the second reply tokenizes as `lisa generate --chat` tokenizes that history
    const prompt = tok.encode(format.render(conversation.messages.slice(0, 3), true));
    expect(example.ids.slice(0, prompt.length)).toEqual(prompt);
    expect(example.mask[prompt.length]).toBe(1);
    expect(example.mask[prompt.length - 1]).toBe(0);
  });

  it.each([
    ['qwen2', ['Hello!<|im_end|>\n', '4<|im_end|>\n']],
    // the cut vocabulary has no "▁" piece: each space is its 3 UTF-8 bytes; the template's space after </s> is a reply's tail
    ['mistral', ['Hello!</s>▁▁', '4</s>▁▁']],
    // <|assistant|> and <|end|> strip the newline after them (rstrip), so the reply starts a segment with the dummy "▁"
    ['phi3', ['▁Hello!<|end|>', '▁4<|end|><|endoftext|>']],
    // this (first) Llama 3 Instruct template always appends an assistant header: the tokens after <|eot_id|> that agree
    // with it are trained too; they follow the stop token, so no generation ever reaches them
    ['llama3', ['Hello!<|eot_id|><|start_header_id|>', '4<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n']],
  ])('%s: the trained spans, token by token', async (family, spans) => {
    const tok = await loadTokenizerDir(familyDir(family));
    const { example } = encodeChat(tok, chatFormat(tok.chat), conversation, 512, 'chat.jsonl');
    expect(example.ids).toEqual(tok.encode(chatFormat(tok.chat).render(conversation.messages, false)));
    expect(trainedSpans(tok, example.ids, example.mask)).toEqual(spans);
  });

  it('prompt/completion rows are a user turn and an assistant turn', () => {
    const [row] = parseChatRows('{"prompt": "Hi", "completion": "Hello!"}\n', 'pc.jsonl');
    expect(row.messages).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ]);
  });
});

/** The text of each run of trained tokens, from the tokens' own bytes. */
function trainedSpans(tok: Tokenizer, ids: number[], mask: number[]): string[] {
  const spans: number[][] = [];
  ids.forEach((id, i) => {
    if (mask[i] !== 1) return;
    if (i === 0 || mask[i - 1] !== 1) spans.push([]);
    spans[spans.length - 1].push(id);
  });
  return spans.map((span) => Buffer.concat(span.map((id) => tok.pieceBytes(-1, id))).toString('utf8'));
}

describe('chat prompts for generation', () => {
  it.each([
    ['qwen2', ['<|im_end|>']],
    ['llama3', ['<|eot_id|>']],
    ['mistral', ['</s>']],
    ['phi3', ['<|end|>', '<|endoftext|>']],
  ])('%s: the rendered history with the generation prompt; stops at the end-of-turn token and EOS', async (family, stops) => {
    const tok = await loadTokenizerDir(familyDir(family));
    const format = chatFormat(tok.chat);
    const p = chatPrompt(tok, format, 'Hi');
    expect(p.ids).toEqual(tok.encode(format.render([{ role: 'user', content: 'Hi' }], true)));
    expect(p.stopIds).toEqual(stops.map((s) => tok.encode(s)[0]));
  });
});

describe('chat data errors name the row', () => {
  const tokP = loadTokenizerDir(familyDir('qwen2'));
  const prepare = async (text: string, chatTemplate?: string) =>
    prepareDataset(text, {
      source: 'chat.jsonl',
      format: 'chat',
      maxSeqLen: 512,
      seed: 0,
      tokenizer: await tokP,
      chatTemplate: chatTemplate === undefined ? undefined : { text: chatTemplate, where: 'bad.jinja' },
    });
  const code = async (p: Promise<unknown>) => (await p.then(() => null, (e: { code: string; message: string }) => e))!;

  it('a conversation without an assistant turn', async () => {
    const err = await code(prepare('{"messages": [{"role": "user", "content": "Hi"}]}\n'));
    expect([err.code, err.message]).toEqual(['DATA_CHAT_ASSISTANT_MISSING', 'chat.jsonl:1: the conversation has no assistant turn, so nothing to train on']);
  });

  it('a malformed row', async () => {
    const ok = JSON.stringify({ messages: conversation.messages });
    const err = await code(prepare(`${ok}\n{"messages": [{"role": "bot", "content": "x"}]}\n`));
    expect([err.code, err.message]).toEqual(['DATA_CHAT_ROW_INVALID', 'chat.jsonl:2: messages[0] must have "role" "system", "user", "assistant"; got "bot"']);
    expect((await code(prepare('{"question": "x"}\n'))).message).toBe('chat.jsonl:1: expected "messages" or "prompt" and "completion"; the line has: question');
  });

  it('a template that fails to render, with its message and the row', async () => {
    const tok = await loadTokenizerDir(familyDir('mistral'));
    const rows = [JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, ...conversation.messages] })];
    const err = await code(
      Promise.resolve().then(() => prepareDataset(rows.join('\n'), { source: 'chat.jsonl', format: 'chat', maxSeqLen: 512, seed: 0, tokenizer: tok })),
    );
    expect(err.code).toBe('DATA_CHAT_TEMPLATE_INVALID');
    expect(err.message).toBe('chat.jsonl:1: the chat template fails to render this conversation: Conversation roles must alternate user/assistant/user/assistant/...');
  });

  it('a template that does not parse, and one whose prefixes are not prefixes', async () => {
    const ok = JSON.stringify({ messages: conversation.messages });
    const err = await code(prepare(`${ok}\n`, '{% for m in messages %}'));
    expect(err.code).toBe('DATA_CHAT_TEMPLATE_INVALID');
    expect(err.message).toMatch(/^bad\.jinja does not parse: /);
    const reversed = '{% for m in messages|reverse %}{{ m.content }};{% endfor %}';
    const unstable = await code(prepare(`${ok}\n`, reversed));
    expect(unstable.code).toBe('DATA_CHAT_TEMPLATE_UNSTABLE');
    expect(unstable.message).toMatch(/^chat\.jsonl:1: the chat template renders messages 0\.\.0 with the generation prompt/);
  });

  it('no template at all', async () => {
    const tok = await tokP;
    const err = await code(
      Promise.resolve().then(() =>
        prepareDataset('{"prompt": "a", "completion": "b"}\n', { source: 'c.jsonl', format: 'chat', maxSeqLen: 64, seed: 0, tokenizer: { ...tok, encode: tok.encode.bind(tok), chat: { ...tok.chat!, template: undefined } } }),
      ),
    );
    expect([err.code, err.message]).toEqual(['DATA_CONFIG_INVALID', "no chat template: the base's tokenizer_config.json has no chat_template; pass one with --chat-template FILE"]);
  });
});
