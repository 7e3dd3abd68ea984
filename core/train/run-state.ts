import PQueue from 'p-queue';
import type { ObjectStore } from '../store/object-store.ts';
import { getVerified, type ChunkManifest } from '../store/manifest.ts';
import { decodeUnitObject, InvalidUnitObjectError } from '../store/unit-object.ts';
import { unitOf } from '../models/units.ts';
import { adapterModule, adapterUnit } from '../models/lora.ts';
import type { ModelSpec } from '../models/config.ts';

export interface AdamState {
  m: Float32Array;
  v: Float32Array;
}

/**
 * A run's weights at one manifest: the frozen base overlaid with every unit the run has touched,
 * and the LoRA adapters its units hold (a LoRA run's unit objects hold adapters, never base tensors).
 */
export interface RunWeights {
  weights: Map<string, Float32Array>;
  /** adapter name -> weights, for the units that hold adapters */
  adapters: Map<string, Float32Array>;
  /** AdamW moments, only for the tensors of the units asked for */
  adam: Map<string, AdamState>;
  /** each touched unit's own AdamW step count */
  adamSteps: Map<string, number>;
}

/**
 * Downloads (in parallel, sha256-checked) the latest object of every unit the manifest references
 * and overlays it on the base. Untouched tensors are the base's own arrays, not copies.
 */
export async function materialize(
  store: ObjectStore,
  spec: ModelSpec,
  baseWeights: Map<string, Float32Array>,
  manifest: ChunkManifest | null,
  keepAdamFor: ReadonlySet<string>,
  concurrency = 8,
): Promise<RunWeights> {
  const weights = new Map(baseWeights);
  const adapters = new Map<string, Float32Array>();
  const adam = new Map<string, AdamState>();
  const adamSteps = new Map<string, number>();
  const queue = new PQueue({ concurrency });
  const refs = Object.values(manifest?.units ?? {});
  await Promise.all(
    refs.map((ref) =>
      queue.add(async () => {
        const obj = await decodeUnitObject(ref.key, await getVerified(store, ref));
        adamSteps.set(obj.unit, obj.adamStep);
        for (const t of obj.tensors) {
          // A unit object must hold tensors of its unit: the base's in the base's shapes, or adapters
          // (whose shapes the model checks against the run's LoRA configuration).
          const module = adapterModule(t.name);
          if (module !== null) {
            if (!weights.has(`${module}.weight`) || adapterUnit(spec, t.name) !== obj.unit) {
              throw new InvalidUnitObjectError(ref.key, `adapter ${t.name} does not belong to unit ${obj.unit} of this base`);
            }
            adapters.set(t.name, t.weight);
          } else {
            const baseTensor = weights.get(t.name);
            if (unitOf(spec, t.name) !== obj.unit || !baseTensor || baseTensor.length !== t.weight.length) {
              throw new InvalidUnitObjectError(ref.key, `tensor ${t.name} does not belong to unit ${obj.unit} of this base`);
            }
            weights.set(t.name, t.weight);
          }
          if (keepAdamFor.has(obj.unit)) adam.set(t.name, { m: t.m, v: t.v });
        }
      }),
    ),
  );
  return { weights, adapters, adam, adamSteps };
}
