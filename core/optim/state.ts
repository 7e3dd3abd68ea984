/**
 * Building, saving and disposing the optimizer state of one group. Frozen units hold no state:
 * the trainer builds groups only for the active units and disposes them after the chunk.
 * Whether a resampled unit gets its stored moments back (`restore`) or zeros (`reset`) is the
 * trainer's policy: it passes `state` or leaves it out.
 */
import * as tf from '@tensorflow/tfjs-core';
import { OptimStateError } from './errors.ts';
import type { ParamGroup } from './adamw.ts';

export interface SlotState {
  m: Float32Array;
  v: Float32Array;
}

/** A group's optimizer state as plain F32 arrays, the form units are stored in. */
export interface GroupState {
  step: number;
  slots: Map<string, SlotState>;
}

/**
 * A group over `params` (name → variable; the model keeps owning them) with moments from `state`,
 * or zero moments and step 0 without it. State must cover exactly these parameters.
 */
export function createParamGroup(unit: string, params: Iterable<readonly [string, tf.Variable]>, state?: GroupState): ParamGroup {
  const list = [...params];
  if (state) checkState(unit, list, state);
  const slots = list.map(([name, param]) => {
    const s = state?.slots.get(name);
    const moment = (data: Float32Array | undefined) =>
      tf.tidy(() => tf.variable(data ? tf.tensor(data, param.shape, 'float32') : tf.zeros(param.shape, 'float32'), false));
    return { name, param, m: moment(s?.m), v: moment(s?.v) };
  });
  return { unit, slots, step: state?.step ?? 0 };
}

/** Copies a group's step and moments out of tensors (for the unit object). */
export async function readGroupState(group: ParamGroup): Promise<GroupState> {
  const slots = new Map<string, SlotState>();
  for (const s of group.slots) {
    const [m, v] = await Promise.all([s.m.data(), s.v.data()]);
    slots.set(s.name, { m: new Float32Array(m as Float32Array), v: new Float32Array(v as Float32Array) });
  }
  return { step: group.step, slots };
}

/** Disposes the moments; the parameters belong to the model. */
export function disposeParamGroup(group: ParamGroup): void {
  for (const s of group.slots) {
    s.m.dispose();
    s.v.dispose();
  }
}

function checkState(unit: string, params: (readonly [string, tf.Variable])[], state: GroupState): void {
  if (!Number.isInteger(state.step) || state.step < 0) {
    throw new OptimStateError(`optimizer state of ${unit}: step must be a non-negative integer, got ${state.step}`, { unit });
  }
  const names = new Set(params.map(([n]) => n));
  for (const [name, param] of params) {
    const s = state.slots.get(name);
    if (!s) throw new OptimStateError(`optimizer state of ${unit} has no moments for ${name}`, { unit, name });
    for (const k of ['m', 'v'] as const) {
      if (s[k].length !== param.size) {
        throw new OptimStateError(`optimizer state of ${unit}: ${name}.${k} has ${s[k].length} values, the parameter [${param.shape}] has ${param.size}`, {
          unit,
          name,
        });
      }
    }
  }
  const extra = [...state.slots.keys()].filter((n) => !names.has(n));
  if (extra.length > 0) throw new OptimStateError(`optimizer state of ${unit} has moments for unknown parameters: ${extra.join(', ')}`, { unit, extra });
}
