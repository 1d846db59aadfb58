/**
 * The log lines other programs may key on (tests that sequence real
 * processes, an operator's log pipeline): each carries an `event` field with
 * one of these names, beside its structured fields. The human message may be
 * reworded at any time; these names are kept, as error codes are.
 */
export const LOG_EVENTS = [
  /** The coordinator serves (fields: url, modelVersion, strategy, params). */
  'coordinator.listening',
  /** An agent finished its handshake (agentId, profile, remote). */
  'coordinator.agent-connected',
  /** A round closed and its model was applied (roundId, modelVersion, seconds, ...). */
  'coordinator.round-completed',
  /** An update was taken into the open round, is durable and its agent acked (roundId, agentId, accepted). */
  'coordinator.update-accepted',
  /** At start-up the open round was resumed from the update log (roundId, ...). */
  'coordinator.round-resumed',
  /** A selected agent left mid-round (roundId, agentId). */
  'coordinator.agent-dropped',
  /** Idle agents were assigned in place of ones that left (roundId, replacements). */
  'coordinator.replacement-assigned',
  /** An agent received its round assignment (roundId, modelVersion). */
  'agent.assignment-received',
  /** An agent trained a round and sent its update (roundId, ...). */
  'agent.round-trained',
  /** An agent's training of a round failed (roundId, code). */
  'agent.training-failed',
  /** An agent's connection closed and it will reconnect (code, attempt, delayMs). */
  'agent.reconnecting',
  /** The deadline passed with fewer updates than the minimum: the round waits on (roundId, accepted, needed). */
  'coordinator.deadline-extended',
  /** At the end of a federation the coordinator said `bye` to its agents (reason, agents). */
  'coordinator.said-bye',
  /** An agent's data (its stream, its store) is ready before it connects (dataset, samples, ...). */
  'agent.data-ready',
  /** The coordinator told an agent the federation is over (reason, final, roundsCompleted). */
  'agent.bye-received',
  /** The coordinator got SIGINT/SIGTERM and drains: the open round gets its grace, then it stops (signal). */
  'coordinator.draining',
  /** The coordinator stopped (its state saved). */
  'coordinator.stopped',
  /** The coordinator answered an agent's update (roundId, accepted, code). */
  'agent.update-acknowledged',
  /** A `strata worker` host is ready to take client jobs (queue, workers, slots). */
  'worker-host.ready',
] as const;

export type LogEvent = (typeof LOG_EVENTS)[number];

/** The field that marks a log line as `event`: `log.info({ ...logEvent('agent.round-trained'), roundId }, 'round trained')`. */
export function logEvent(event: LogEvent): { event: LogEvent } {
  return { event };
}
