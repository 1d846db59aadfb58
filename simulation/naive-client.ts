/**
 * `--mode naive`: one client in one fresh process (forked per client, one
 * after another; runs from the compiled dist/). It does what a framework
 * without a process manager or resource sharing does: start tfjs, load the
 * data set, build the model, train, exit. It is held to the same budget as
 * in scheduled mode (its whole process in a CPU group, or the duty cycle),
 * from the moment training starts: loading is not throttled, which only
 * favours this baseline.
 */
import path from 'node:path';
import { initBackend } from '../ml/backend.js';
import { clientAppDataset, clientAppModel, loadClientApp } from './client-app.js';
import { CpuGroup, type EnforcerKind } from './budget.js';
import { runClientJob, type SlotContext } from './client-job.js';
import type { ClientJob, ClientResult, EnforcerSpec, AppSpec } from './sim-messages.js';

export type NaiveRequest = { type: 'run'; spec: AppSpec; enforcer: EnforcerSpec; job: ClientJob; weights: Float32Array };
export type NaiveReply = { type: 'result'; result: ClientResult; loadSeconds: number } | { type: 'failed'; message: string };

async function run(req: NaiveRequest): Promise<NaiveReply> {
  const t0 = performance.now();
  // One training thread, like a slot: the client's budget holds this thread (XNNPACK's pool threads would run outside it).
  await initBackend({ threads: 1 });
  const app = await loadClientApp(req.spec.clientApp);
  const ds = await clientAppDataset(app, req.spec);
  const ctx: SlotContext = {
    model: await clientAppModel(app, { inputShape: ds.inputShape, numClasses: ds.numClasses }, req.spec, false),
    train: ds.train, featureSize: ds.featureSize, numClasses: ds.numClasses, scale: ds.scale, seed: req.spec.seed,
    ...(app.methods !== undefined ? { methods: app.methods } : {}),
  };
  const loadSeconds = (performance.now() - t0) / 1000;
  let enforcer: EnforcerKind = req.enforcer.kind;
  if ((enforcer === 'cgroup-v1' || enforcer === 'cgroup-v2') && req.enforcer.root !== null) {
    // Removed with the run's tree by the host once this process is gone (a cgroup with tasks cannot be removed).
    try {
      const g = CpuGroup.create(enforcer, path.join(req.enforcer.root, `naive-${process.pid}`));
      g.setShare(req.job.budget);
      g.addProcess(process.pid);
    } catch {
      enforcer = 'duty';
    }
  }
  const result = await runClientJob(ctx, req.job, req.weights, enforcer);
  return { type: 'result', result, loadSeconds };
}

// Ctrl-C reaches the whole process group: the host lets the running client finish.
process.on('SIGINT', () => undefined);

process.once('message', (req: NaiveRequest) => {
  run(req).then(
    (reply) => process.send?.(reply, () => process.exit(0)),
    (err: unknown) => process.send?.({ type: 'failed', message: err instanceof Error ? err.message : String(err) } satisfies NaiveReply, () => process.exit(1)),
  );
});
