/**
 * Strata's own client app (what `strata simulate` runs): the model the
 * `model` setting names (a built-in or a model.json), on the `dataset`
 * setting's data, with the built-in CL methods.
 */
import { buildModel } from '../ml/models.js';
import { defineClientApp } from './client-app.js';

export default defineClientApp({
  // The `model` setting: a built-in (mlp, cnn) or a tfjs Layers model.json (checked where the app's model is built).
  model: (shape, context) => buildModel(context.model, shape, context.seed, { origin: { option: 'model' }, checkTrainable: false }),
});
