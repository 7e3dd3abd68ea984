/**
 * The library as its front ends (cli/, functions/) see it: the run operations (core/runs/), the
 * schemas and types they take and return, the model tools, the engine and the errors. The front
 * ends import nothing else from core (eslint's no-restricted-imports holds them to it), so every
 * run rule lives in core once.
 */
export { ERROR_CODES, ERROR_KINDS, LisaError, type ErrorCode, type ErrorKind } from './errors.ts';
export * from './runs/index.ts';
export { applyDeltaPackage, convertLlama2cFiles, openModelDir, readChatTemplate, type TextModel } from './runs/models.ts';
export { chatFormat, chatPrompt } from './data/index.ts';
export { acceleratorInUse, BACKENDS, engineMemory, initEngine, parseBackend, type BackendName } from './engine/index.ts';
export { METHODS, RunConfigSchema, type Method, type RunConfig, type RunConfigInput, type RunSpec } from './store/run-spec.ts';
export type { ChunkManifest } from './store/manifest.ts';
export type { StoreEnv } from './store/s3-store.ts';
export type { GcResult } from './store/gc.ts';
export type { StepEvent } from './train/chunk.ts';
export type { RunModel } from './train/run-model.ts';
export { heldOutLoss } from './train/evaluate.ts';
export { generateText } from './models/textgen.ts';
export {
  CompositionRequestSchema,
  EXPORT_DTYPES,
  ExportRequestSchema,
  MERGE_METHODS,
  parseSize,
  type ComposeRun,
  type ComposeSummary,
  type ExportDtype,
  type ExportSummary,
  type MergeMethod,
  type RunExportSummary,
  type WriteProgress,
} from './merge/index.ts';
