/** core/data's public surface: what the trainer and the CLI import. */
export { nextBatch, makeBatch, epochOrder, PAD_ID, type Batch, type Cursor } from './batch.ts';
export { prepareDataset, DATA_FORMATS, type DataFormat, type DatasetOptions, type DatasetStats, type PreparedDataset } from './dataset.ts';
export { evaluate, type BatchLossFn, type EvalResult } from './evaluate.ts';
export { lossTokens, type DataTokenizer, type Example } from './example.ts';
export { promptFormat, ALPACA_FIELDS, ALPACA_TEMPLATE, type PromptFormat } from './template.ts';
export { chatFormat, chatPrompt, encodeChat, parseChatRows, type ChatFormat, type ChatMessage, type ChatPrompt, type ChatRow } from './chat.ts';
export * from './errors.ts';
