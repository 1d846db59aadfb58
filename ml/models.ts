/** The models module: built-ins, model specs (built-in names and model.json files), factories, and the one builder. */
export { createModel, parameterCount, type ModelOptions } from './models/builtin-models.js';
export { isModelKind, parseModelKind, parseModelSpec, modelSpecName, MODEL_KINDS, type ModelKind, type ModelShape, type ModelSpec, type ModelFactory, type ModelSource } from './models/model-spec.js';
export { buildModel, checkModelShape, modelFactory, type BuildModelOptions } from './models/build-model.js';
export { readModelFile, checkFileInput, modelInputShape, INPUT_RESHAPE_LAYER, type ModelFile } from './models/model-file-read.js';
export { loadModelFile, saveModelFile, strataTopology } from './models/model-file.js';
export { assertTrainable, findMissingKernel, type MissingKernel } from './models/trainability.js';
export { builtinModel } from './models/builtin-models.js';
