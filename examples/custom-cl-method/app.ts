/**
 * A simulation client app with a CL method of its own: "replay-ramp", experience
 * replay whose share of replayed samples grows with the tasks the device has
 * seen (more old classes to keep, more replay). The simulation's workers load
 * this module themselves; name the method in the training config:
 *
 *   strata simulate --cl --client-app dist-examples/custom-cl-method/app.js --method replay-ramp
 */
import { builtinModel } from 'strata';
import { BUILTIN_CL_METHODS, type ClMethod, type ClMethodFactory } from 'strata/device';
import { defineClientApp } from 'strata/simulation';

const replayRamp: ClMethodFactory = {
  name: 'replay-ramp',
  create(settings): ClMethod {
    let tasksSeen = 0;
    return {
      name: 'replay-ramp',
      usesMemory: true,
      storesLogits: false,
      beforeTask() {
        tasksSeen++;
      },
      // Task 1: a quarter of the configured replay; from task 4 on, all of it.
      replayCount: (_stream, memorySize) => Math.min(memorySize, Math.round((settings.replay * Math.min(4, tasksSeen)) / 4)),
    };
  },
};

export default defineClientApp({
  model: (shape, context) => builtinModel('mlp')(shape, context.seed),
  methods: [...BUILTIN_CL_METHODS, replayRamp],
});
