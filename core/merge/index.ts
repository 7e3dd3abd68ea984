/** Export, delta packages and composition of runs; see each module's doc. */
export { exportRun, applyDelta, readDeltaInfo, parseSize, DeltaBaseMismatchError, InvalidDeltaError, ExportArgumentError, DEFAULT_SHARD_SIZE } from './export.ts';
export type { ExportRunOptions, ApplyDeltaOptions, RunExportSummary, OutputOptions, DeltaInfo } from './export.ts';
export { composeRuns, ComposeBaseMismatchError } from './compose.ts';
export type { ComposeOptions, ComposeRun, ComposeSummary } from './compose.ts';
export { EXPORT_DTYPES, type ExportDtype, type ExportSummary, type WriteProgress } from './writer.ts';
export { MERGE_METHODS, MergeParameterError, type MergeMethod } from './kernels.ts';
export { OutputExistsError } from './destination.ts';
export { ExportRequestSchema, CompositionRequestSchema, type ExportRequest, type CompositionRequest } from './schemas.ts';
