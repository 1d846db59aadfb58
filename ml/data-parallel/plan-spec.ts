import * as tf from '@tensorflow/tfjs';
import type { ParamRef, PlanOp } from '../fast-step/layer-plan.js';

/** One weight tensor of a plan, as a slot of the shared weight and gradient areas. */
export interface ParamSlot {
  shape: number[];
  size: number;
  /** First float of its values in the weight area. */
  offset: number;
  /** Index in the trainer's trainable variables, -1 when frozen (no gradient slot). */
  trainable: number;
  /** First float of its gradient in a gradient area (-1 when frozen). */
  gradOffset: number;
}

type Slotted<T> = T extends { kernel: ParamRef } ? Omit<T, 'kernel' | 'bias'> & { kernel: number; bias: number | undefined } : T;

/** A planned op with slot numbers for its weights: structured-cloneable, so it can go to another thread. */
export type SpecOp = Slotted<PlanOp>;

/** A layer plan as another thread rebuilds it (`rebuildPlan`). */
export interface PlanSpec {
  ops: SpecOp[];
  params: ParamSlot[];
  inputSize: number;
  classes: number;
  /** Trainable variables (gradients, index-aligned with the trainer's). */
  trainableCount: number;
  weightFloats: number;
  gradFloats: number;
}

/**
 * The plan's weights as slots (every weight it reads, frozen ones too: the
 * other thread needs their values), or a reason it cannot be shipped: a
 * trainable variable the plan never reads would have no gradient there.
 */
export function planSpec(ops: readonly PlanOp[], vars: readonly tf.Variable[], inputSize: number, classes: number):
  { ok: true; spec: PlanSpec; refs: tf.Variable[] } | { ok: false; reason: string } {
  const params: ParamSlot[] = [];
  const refs: tf.Variable[] = [];
  let weightFloats = 0;
  let gradFloats = 0;
  const slot = (ref: ParamRef): number => {
    const at = refs.indexOf(ref.variable);
    if (at >= 0) return at;
    const shape = [...ref.variable.shape];
    const size = ref.variable.size;
    params.push({ shape, size, offset: weightFloats, trainable: ref.index, gradOffset: ref.index >= 0 ? gradFloats : -1 });
    refs.push(ref.variable);
    weightFloats += size;
    if (ref.index >= 0) gradFloats += size;
    return params.length - 1;
  };
  const specOps: SpecOp[] = ops.map((op) => {
    if (op.kind !== 'dense' && op.kind !== 'conv2d') return op;
    return { ...op, kernel: slot(op.kernel), bias: op.bias === undefined ? undefined : slot(op.bias) } as SpecOp;
  });
  const seen = new Set(params.map((p) => p.trainable).filter((i) => i >= 0));
  if (seen.size !== vars.length) return { ok: false, reason: 'a trainable variable is not read by the layer plan' };
  return { ok: true, spec: { ops: specOps, params, inputSize, classes, trainableCount: vars.length, weightFloats, gradFloats }, refs };
}

/**
 * The plan on this thread's backend: a variable per slot (zeros until the
 * weights arrive), the ops reading them, and the trainable ones
 * index-aligned with the original trainer's variables.
 */
export function rebuildPlan(spec: PlanSpec): { ops: PlanOp[]; slots: tf.Variable[]; vars: tf.Variable[] } {
  const slots = spec.params.map((p) => tf.variable(tf.zeros(p.shape), p.trainable >= 0));
  const vars: tf.Variable[] = new Array<tf.Variable>(spec.trainableCount);
  spec.params.forEach((p, i) => {
    if (p.trainable >= 0) vars[p.trainable] = slots[i]!;
  });
  const ref = (i: number): ParamRef => ({ index: spec.params[i]!.trainable, variable: slots[i]! });
  const ops = spec.ops.map((op): PlanOp => {
    if (op.kind !== 'dense' && op.kind !== 'conv2d') return op;
    return { ...op, kernel: ref(op.kernel), bias: op.bias === undefined ? undefined : ref(op.bias) } as PlanOp;
  });
  return { ops, slots, vars };
}
