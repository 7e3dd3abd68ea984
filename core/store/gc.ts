import type { ObjectStore } from './object-store.ts';
import { runPrefix, unitsPrefix } from './keys.ts';
import { listSeqs, readManifest } from './manifest.ts';
import { readRunSpec } from './run-spec.ts';

export interface GcResult {
  referenced: number;
  deleted: string[];
  /** unreferenced objects of a seq not yet committed, younger than the grace period */
  pending: string[];
  /** what crashed writes left under the run, older than the grace period (see ObjectStore.sweep) */
  swept: string[];
}

/**
 * Deletes unit objects that no manifest references: losers of a commit race and crashed
 * attempts. An object written for a seq that is already committed can never become referenced,
 * so it goes at once; one for a later seq may belong to a chunk still uploading, so it goes only
 * after `graceSeconds`. Referenced objects are never touched. What a killed process left
 * half-written anywhere under the run (temp files, incomplete multipart uploads) goes after
 * `graceSeconds` too.
 */
export async function gcRun(
  store: ObjectStore,
  runId: string,
  opts: { graceSeconds?: number; now?: Date } = {},
): Promise<GcResult> {
  await readRunSpec(store, runId);
  const seqs = await listSeqs(store, runId);
  const headSeq = seqs.at(-1) ?? -1;
  const referenced = new Set<string>();
  for (const seq of seqs) for (const ref of Object.values((await readManifest(store, runId, seq)).units)) referenced.add(ref.key);
  const now = (opts.now ?? new Date()).getTime();
  const graceMs = (opts.graceSeconds ?? 3600) * 1000;
  const deleted: string[] = [];
  const pending: string[] = [];
  for (const key of await store.list(unitsPrefix(runId))) {
    if (referenced.has(key)) continue;
    const seq = Number(/\/(\d{8})-[^/]*$/.exec(key)?.[1] ?? NaN);
    if (!(seq <= headSeq)) {
      const head = await store.head(key);
      if (!head || now - head.lastModified.getTime() < graceMs) {
        pending.push(key);
        continue;
      }
    }
    await store.delete(key);
    deleted.push(key);
  }
  const swept = await store.sweep(runPrefix(runId), new Date(now - graceMs));
  return { referenced: referenced.size, deleted, pending, swept };
}
