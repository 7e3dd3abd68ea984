import { LisaError } from '../errors.ts';

export interface EncodeOptions {
  /** Prepend the BOS id. Default false: callers that build training sequences decide. */
  bos?: boolean;
  /** Append the EOS id. Default false. */
  eos?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  encode(text: string, opts?: EncodeOptions): number[];
  /**
   * The bytes llama2.c's run.c prints for `id` when it follows `prev`: the piece, with the leading
   * space dropped right after BOS and `<0xNN>` turned into that raw byte. Streaming printers write
   * these bytes as they come, so a character split over several byte tokens reaches the terminal whole.
   */
  pieceBytes(prev: number, id: number): Uint8Array;
  /** pieceBytes as a string; a lone byte of a multi-byte character decodes to U+FFFD. */
  decodePiece(prev: number, id: number): string;
  /**
   * Text of a token sequence: the pieces' bytes concatenated and then decoded as UTF-8, so byte
   * fallback tokens join back into characters. BOS and EOS contribute nothing, and the leading space
   * at the start (the encoder's dummy prefix) is dropped, so decode(encode(text)) === text.
   */
  decode(ids: number[]): string;
  /** What a chat template renders with: tokenizer_config.json's chat_template and special tokens (Hugging Face tokenizers only). */
  readonly chat?: ChatTokens;
}

export interface ChatTokens {
  /** tokenizer_config.json's chat_template (the "default" one when it lists several); undefined when it has none */
  template: string | undefined;
  /** the special tokens' text, as templates reference them (bos_token, eos_token) */
  bosToken: string;
  eosToken: string;
}

export class TokenizerFormatError extends LisaError {
  constructor(file: string, offset: number | undefined, what: string) {
    super(
      'TOKENIZER_INVALID',
      offset === undefined ? `${file}: ${what}` : `${file}: at byte offset ${offset}: ${what}`,
      { file, offset },
    );
  }
}

export class TokenizerNotFoundError extends LisaError {
  constructor(dir: string) {
    super('TOKENIZER_NOT_FOUND', `${dir}: no tokenizer found; expected tokenizer.json (Hugging Face) or tokenizer.bin (llama2.c)`, { dir });
  }
}

export class TokenizerEncodeError extends LisaError {
  constructor(message: string) {
    super('TOKENIZER_ENCODE_FAILED', message);
  }
}

export class TokenIdError extends LisaError {
  constructor(id: number, vocabSize: number) {
    super('TOKENIZER_ID_INVALID', `token id ${id} is outside the vocabulary [0, ${vocabSize})`, { id, vocabSize });
  }
}
