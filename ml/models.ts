/** The models module: built-ins, model specs (built-in names and model.json files), factories, and the one builder. */
export { createModel, isModelKind, parseModelKind, parameterCount, MODEL_KINDS, type ModelKind, type ModelOptions, type ModelShape } from './models/builtin-models.js';
export { parseModelSpec, modelSpecName, type ModelSpec, type ModelFactory, type ModelSource } from './models/model-spec.js';
export { buildModel, checkModelShape, modelFactory, type BuildModelOptions } from './models/build-model.js';
export { readModelFile, loadModelFile, saveModelFile, strataTopology, checkFileInput, modelInputShape, INPUT_RESHAPE_LAYER, type ModelFile } from './models/model-file.js';
export { assertTrainable, findMissingKernel, type MissingKernel } from './models/trainability.js';
