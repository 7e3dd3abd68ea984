/** The run operations (runs.ts) and how to open them (open.ts); see each module's doc. */
export { Runs, type RunsOptions, type ChunkRequest, type ExportRequest, type ComposeRequest } from './runs.ts';
export { openRuns, type OpenRunsOptions } from './open.ts';
export { ANY_REF, tenantPrefix, tenantRefPolicy, type RefPolicy } from './refs.ts';
export { chunkSummary, runStatus, unitTraining, type ChunkSummary, type RunStatus, type RunTotals } from './status.ts';
export { keyHash, requestHash, checkIdempotencyKey, IdempotencyInProgressError, type ClaimOutcome, type StoredResponse } from './idempotency.ts';
export { type RunHistory, type RunOverview, type UnreadableObject } from './history.ts';
export { type OutputRecord, type ExportRecord, type CompositionRecord } from './outputs.ts';
