import { StrataError } from '../common/strata-error.js';
import type { WeightsLayout } from '../protocol/index.js';
import type { Evaluator } from '../coordinator/round-engine-types.js';

/** The model `strata coordinator` names (`--model mlp | cnn | PATH | flat:N` on `--dataset`): what the coordinator needs of it, and the test-set evaluator its strategy scores with. */
export interface ModelHost {
  description: string;
  layout: WeightsLayout;
  initialWeights: () => Float32Array;
  evaluate?: Evaluator;
  /** e.g. the tfjs backend in use. */
  info: Record<string, unknown>;
}

/**
 * `--model flat:N`: a bare vector of N parameters with no network and no
 * evaluation — for load tests and benchmarks of the coordinator itself.
 */
export function flatModelHost(numParams: number): ModelHost {
  if (!Number.isSafeInteger(numParams) || numParams < 1) {
    throw new StrataError('STRATA_ERR_BAD_FLAG', `--model: flat:N needs a positive integer N (got ${numParams})`, { flag: '--model' });
  }
  return { description: `flat:${numParams}`, layout: [{ name: 'flat', shape: [numParams] }], initialWeights: () => new Float32Array(numParams), info: {} };
}

/**
 * An ml model (mlp | cnn | a model.json) on a data set: layout and initial
 * weights from the model, evaluation on the data set's test split after
 * every round. tfjs is imported lazily so the coordinator core never loads it.
 */
export async function mlModelHost(options: { dataset: string; model: string; seed: number; backend?: string | undefined; evalSamples?: number | undefined }): Promise<ModelHost> {
  const ml = await import('../ml/index.js');
  const spec = ml.parseDatasetSpec(options.dataset);
  const modelSpec = ml.parseModelSpec(options.model, '--model');
  const kind = ml.modelSpecName(modelSpec);
  const backend = await ml.initBackend({ backend: options.backend });
  const ds = await ml.loadDataset(spec, { inputShape: ml.modelInputShape(modelSpec) });
  const model = await ml.buildModel(modelSpec, ds, options.seed);
  const layout = ml.layoutOf(model).entries.map((e) => ({ name: e.name, shape: e.shape }));
  const n = Math.min(ds.test.count, options.evalSamples ?? ds.test.count);
  return {
    description: `${kind} on ${ds.name}`,
    layout,
    initialWeights: () => ml.getFlatWeights(model),
    evaluate: ml.testSetEvaluator(model, ds, n),
    info: { backend: backend.name, dataset: ds.name, model: kind, testSamples: n },
  };
}

/** `mlp`, `cnn`, a model.json path (with a data set) or `flat:N`. */
export async function createModelHost(options: { dataset: string; model: string; seed: number; backend?: string | undefined }): Promise<ModelHost> {
  const flat = /^flat:(\d+)$/.exec(options.model);
  if (flat) return flatModelHost(Number(flat[1]));
  return mlModelHost(options);
}
