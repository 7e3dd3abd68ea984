/** Object keys of a run, per README.md "Store layout". Relative to the store root. */

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function isValidRunId(id: string): boolean {
  return RUN_ID.test(id);
}

export const runPrefix = (runId: string): string => `runs/${runId}/`;
export const runSpecKey = (runId: string): string => `runs/${runId}/run.json`;
export const chunksPrefix = (runId: string): string => `runs/${runId}/chunks/`;
export const unitsPrefix = (runId: string): string => `runs/${runId}/units/`;

const pad = (seq: number): string => String(seq).padStart(8, '0');

export const manifestKey = (runId: string, seq: number): string => `${chunksPrefix(runId)}${pad(seq)}.json`;

/** `attempt` tells concurrent attempts at one seq apart, so a loser never overwrites a winner's unit. */
export const unitKey = (runId: string, unit: string, seq: number, attempt: string): string =>
  `${unitsPrefix(runId)}${unit}/${pad(seq)}-${attempt}.safetensors`;

/** The seq a manifest key names, or null for any other key. */
export function seqOfManifestKey(runId: string, key: string): number | null {
  const prefix = chunksPrefix(runId);
  if (!key.startsWith(prefix)) return null;
  const m = /^(\d{8})\.json$/.exec(key.slice(prefix.length));
  return m ? Number(m[1]) : null;
}

/** The run id a run.json key names, or null for any other key. */
export function runIdOfSpecKey(key: string): string | null {
  const m = /^runs\/([^/]+)\/run\.json$/.exec(key);
  return m && isValidRunId(m[1]) ? m[1] : null;
}
