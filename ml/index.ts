export { initBackend, activeBackend, parseBackendRequest, BACKEND_NAMES, type BackendInfo, type BackendName, type BackendOptions, type BackendRequest, type Parallelism } from './backend.js';
export { trainingThreads, autoTrainingThreads, defaultTrainingThreads, availableCores, cgroupCpuLimit, parseThreadsRequest, MAX_TRAINING_THREADS, type ThreadsRequest, type TrainingThreadsOptions, type AutoThreads } from './threads.js';
export * from './models.js';
export { badSpec, type SpecOrigin } from './spec-origin.js';
export { layoutOf, flatModel, getFlatWeights, setFlatWeights, sameLayout, type WeightLayout, type WeightEntry } from './weights.js';
export { Trainer, evaluateModel, type TrainerOptions, type EpochOptions, type FitResult, type EvalResult, type LossTerm, type StepPath } from './trainer.js';
export { BatchBuilder } from './batches.js';
export { Rng, permutation } from './rng.js';
export * from './datasets/index.js';
export {
  countModelWork, inferenceFlops, optimizerStepFlops, trainingFlops, trainingWork, ACTIVATION_FLOPS, COUNTED_LAYER_CLASSES, OPTIMIZER_FLOPS_PER_PARAM,
  type LayerWork, type ModelWork, type TrainingWork,
} from './work-count.js';
export { testSetEvaluator } from './test-evaluator.js';
