/**
 * `strata`: the vocabulary every part shares. Errors and their codes, the
 * clock, the tfjs backend, models (bring your own: a `ModelFactory`), data
 * sets, device profiles and the flat weight layout. The three jobs are in
 * `strata/coordinator`, `strata/device` and `strata/simulation`; the wire
 * protocol in `strata/protocol`.
 *
 * @module strata
 */
export { StrataError, isStrataError, ERROR_CODES, STRATA_ERROR_CODES, isStrataErrorCode, type StrataErrorCode, LOG_EVENTS, type LogEvent } from './common/index.js';
export { systemClock, type Clock } from './common/clock.js';
export {
  initBackend, activeBackend, BACKEND_NAMES, type BackendInfo, type BackendName, type BackendOptions,
  trainingThreads, autoTrainingThreads, availableCores, MAX_TRAINING_THREADS, type ThreadsRequest,
  buildModel, createModel, builtinModel, parameterCount, parseModelSpec, loadModelFile, saveModelFile, modelInputShape, MODEL_KINDS,
  type ModelFactory, type ModelKind, type ModelOptions, type ModelShape, type ModelSource, type ModelSpec,
  layoutOf, flatModel, getFlatWeights, setFlatWeights, sameLayout, type WeightLayout, type WeightEntry,
  Trainer, evaluateModel, testSetEvaluator, type TrainerOptions, type EvalResult, type LossTerm,
  countModelWork, trainingWork, type ModelWork, type TrainingWork,
} from './ml/index.js';
export * from './ml/datasets/index.js';
export { loadProfile, listProfiles, parseProfile, type DeviceProfile } from './profiles/index.js';
