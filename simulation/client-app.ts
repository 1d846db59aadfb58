import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import { checkClMethods } from '../client-runtime/cl-methods/index.js';
import type { ClMethodFactory } from '../client-runtime/cl-methods/cl-method.js';
import { runtimeFile } from '../common/runtime-file.js';
import { StrataError } from '../common/strata-error.js';
import type { Dataset } from '../ml/datasets/dataset.js';
import { loadDataset } from '../ml/datasets/load-dataset.js';
import { buildModel, modelInputShape, type ModelShape } from '../ml/models.js';

/** What a client app is told of the simulation it runs in. */
export interface ClientAppContext {
  /** The simulation's `model` and `dataset` settings: what the built-in app builds from; yours may ignore them. */
  model: string;
  dataset: string;
  /** The run's seed (initialise weights from it: every process must build the same initial model). */
  seed: number;
}

/**
 * The client code of a simulation: what every virtual client (and the
 * server's evaluator) builds, in every worker process and thread. It lives
 * in a module of its own, whose default export is a ClientApp, because the
 * simulation's workers load it themselves (as Temporal loads a workflows
 * path): pass the module's path or URL to `runSimulation({ clientApp })`.
 * The module must be JavaScript Node can import (compile TypeScript first).
 */
export interface ClientApp {
  /**
   * The model every client trains: the same layout, and the same initial
   * weights for the same seed, in every process. Its input may be flat or
   * `[h, w, c]`; its output one logit per class (no softmax).
   */
  model(shape: ModelShape, context: ClientAppContext): tf.LayersModel | Promise<tf.LayersModel>;
  /** The data set the simulation partitions among its clients (its test split scores the global model). Default: the `dataset` setting. */
  dataset?(context: ClientAppContext): Dataset | Promise<Dataset>;
  /** The CL methods the clients can run; the training config names one. Default: the built-ins. */
  methods?: readonly ClMethodFactory[];
}

/** Checks a client app's shape (use it as the module's default export). */
export function defineClientApp(app: ClientApp): ClientApp {
  if (typeof app !== 'object' || app === null || typeof app.model !== 'function') {
    throw new StrataError('STRATA_ERR_CLIENT_APP', 'a client app needs a model(shape, context) function', {});
  }
  if (app.dataset !== undefined && typeof app.dataset !== 'function') throw new StrataError('STRATA_ERR_CLIENT_APP', 'a client app\'s dataset must be a function', {});
  if (app.methods !== undefined) checkClMethods(app.methods, 'clientApp.methods');
  return app;
}

/** The module Strata's own client app is in: the built-in models (`mlp`, `cnn`) on the `dataset` setting. */
export const BUILTIN_CLIENT_APP: string = pathToFileURL(runtimeFile(import.meta.url, 'builtin-client-app')).href;

/** A client app module's path or URL as the `file:` URL workers import; the file must exist. */
export function clientAppUrl(ref: string | URL): string {
  const url = ref instanceof URL ? ref : /^[a-z][a-z0-9+.-]*:/i.test(ref) && !/^[a-z]:[\\/]/i.test(ref) ? new URL(ref) : pathToFileURL(path.resolve(ref));
  if (url.protocol !== 'file:') throw new StrataError('STRATA_ERR_BAD_OPTION', `clientApp: ${url.href} is not a file: URL or path`, { option: 'clientApp' });
  if (!existsSync(fileURLToPath(url))) throw new StrataError('STRATA_ERR_CLIENT_APP', `clientApp: ${fileURLToPath(url)} not found`, { option: 'clientApp', file: fileURLToPath(url) });
  return url.href;
}

const loaded = new Map<string, Promise<ClientApp>>();

/** Imports a client app module (once per process) and checks its default export. */
export function loadClientApp(url: string): Promise<ClientApp> {
  let app = loaded.get(url);
  if (app === undefined) {
    app = import(url).then(
      (mod: { default?: unknown }) => {
        if (mod.default === undefined) throw new StrataError('STRATA_ERR_CLIENT_APP', `${url}: the module has no default export (export default defineClientApp({ ... }))`, { file: url });
        return defineClientApp(mod.default as ClientApp);
      },
      (err: unknown) => {
        throw new StrataError('STRATA_ERR_CLIENT_APP', `${url}: cannot import the client app (${err instanceof Error ? err.message : String(err)})`, { file: url }, { cause: err });
      },
    );
    loaded.set(url, app);
  }
  return app;
}

/** The app's data set, or the `dataset` setting's (images and CSV decoded to the `model` setting's input, when it is a model file). */
export async function clientAppDataset(app: ClientApp, context: ClientAppContext): Promise<Dataset> {
  return app.dataset !== undefined ? await app.dataset(context) : loadDataset(context.dataset, { inputShape: modelInputShape(context.model, { option: 'model' }) });
}

/**
 * The app's model for `shape`, checked as every model Strata trains is
 * (`buildModel`: fits the data, counted work, and, with `checkTrainable`,
 * one training step per layer on this backend). The simulation's host
 * checks once; its workers skip the dry run.
 */
export function clientAppModel(app: ClientApp, shape: ModelShape, context: ClientAppContext, checkTrainable: boolean): Promise<tf.LayersModel> {
  return buildModel((s) => app.model(s, context), shape, context.seed, { origin: { option: 'clientApp.model' }, checkTrainable });
}
