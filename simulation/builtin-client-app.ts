/**
 * Strata's own client app (what `strata simulate` runs): the built-in model
 * the `model` setting names, on the `dataset` setting's data, with the
 * built-in CL methods.
 */
import { parseModelKind, createModel } from '../ml/models.js';
import { defineClientApp } from './client-app.js';

export default defineClientApp({
  model: (shape, context) => createModel({ kind: parseModelKind(context.model, 'model'), ...shape, seed: context.seed }),
});
