/**
 * What must hold of a run's objects after any fault, checked from the store alone:
 * the chain of manifests is gap-free and linear (each chunk starts where its parent stopped, so no
 * step is lost or counted twice), every manifest reads back whole, and every unit object the head
 * names exists and matches its sha256. Also the oracle for gc: which objects no manifest refers to.
 */
import { getVerified, listSeqs, readManifest, type ChunkManifest } from '../../core/store/manifest.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { unitsPrefix } from '../../core/store/keys.ts';
import { decodeUnitObject } from '../../core/store/unit-object.ts';

export interface RunState {
  seqs: number[];
  head: ChunkManifest | null;
  /** the unit objects any manifest refers to */
  referenced: Set<string>;
}

export class InvariantError extends Error {}

function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new InvariantError(what);
}

/** Reads the whole chain and checks it (see the module doc); throws InvariantError naming what broke. */
export async function checkRun(store: ObjectStore, runId: string): Promise<RunState> {
  const seqs = await listSeqs(store, runId);
  check(
    seqs.every((s, i) => s === i),
    `seqs ${seqs.join(',')} are not gap-free from 0`,
  );
  let parent: ChunkManifest | null = null;
  const referenced = new Set<string>();
  for (const seq of seqs) {
    const m = await readManifest(store, runId, seq);
    const start = parent?.globalStep ?? 0;
    check(m.startStep === start, `chunk ${seq} starts at step ${m.startStep}, its parent stopped at ${start}`);
    check(m.globalStep > m.startStep, `chunk ${seq} trained no step`);
    check(m.totals.steps === m.globalStep, `chunk ${seq}: totals.steps ${m.totals.steps} is not globalStep ${m.globalStep}`);
    for (const [unit, ref] of Object.entries(parent?.units ?? {})) {
      // a unit this chunk did not train is carried forward unchanged
      if (!m.activeUnits.includes(unit)) check(m.units[unit]?.key === ref.key, `chunk ${seq} lost unit ${unit}'s object ${ref.key}`);
    }
    for (const unit of m.activeUnits) check(m.units[unit]?.seq === seq, `chunk ${seq} trained ${unit} but refers to an older object`);
    for (const ref of Object.values(m.units)) referenced.add(ref.key);
    parent = m;
  }
  for (const ref of Object.values(parent?.units ?? {})) {
    const obj = await decodeUnitObject(ref.key, await getVerified(store, ref));
    check(obj.adamStep === ref.adamStep, `${ref.key} holds AdamW step ${obj.adamStep}, its manifest says ${ref.adamStep}`);
  }
  return { seqs, head: parent, referenced };
}

/** Unit objects of the run that no manifest refers to: what gc must delete, nothing more. */
export async function unreferencedUnits(store: ObjectStore, runId: string, state: RunState): Promise<string[]> {
  return (await store.list(unitsPrefix(runId))).filter((k) => !state.referenced.has(k));
}
