import type { EnforcerKind } from './budget.js';
import { trainLocal, type LocalOutcome, type TrainingContext } from './client-training.js';
import type { ClientJob, ClientResult } from './sim-messages.js';
import { DutyCycleThrottle, threadCpuSeconds } from './thread-cpu.js';

/**
 * Runs one client job on the calling thread and measures it: CPU time of
 * this thread and wall time, so `share` is the CPU share the client really
 * got under its budget. Under `duty` the thread paces itself; under cgroups
 * the kernel does (the caller has set the quota).
 */
export async function runJob(ctx: TrainingContext, job: ClientJob, global: Float32Array, enforcer: EnforcerKind): Promise<ClientResult> {
  const throttle = enforcer === 'duty' ? new DutyCycleThrottle(job.budget) : undefined;
  const pace = throttle === undefined ? () => undefined : () => throttle.pace();
  const cpu0 = threadCpuSeconds();
  const wall0 = performance.now();
  throttle?.start();
  let outcome: LocalOutcome;
  if (job.cl !== undefined) {
    const { trainLocalCl } = await import('./client-training-cl.js');
    outcome = await trainLocalCl(ctx, job, global, pace);
  } else {
    outcome = trainLocal(ctx, job, global, pace);
  }
  const cpuSeconds = threadCpuSeconds() - cpu0;
  const wallSeconds = (performance.now() - wall0) / 1000;
  return {
    jobId: job.jobId, round: job.round, clientId: job.clientId,
    delta: outcome.delta, numSamples: outcome.numSamples, loss: outcome.loss, flops: outcome.flops,
    cpuSeconds, wallSeconds, share: wallSeconds > 0 ? cpuSeconds / wallSeconds : 0, enforcer,
    ...(outcome.cl === undefined ? {} : { cl: outcome.cl }),
  };
}
