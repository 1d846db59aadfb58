import type { Logger } from 'pino';
import { StrataError } from '../common/strata-error.js';
import type { ClientLink } from '../coordinator/client-link.js';
import type { RoundEngine } from '../coordinator/round-engine.js';
import { Rng } from '../ml/rng.js';
import {
  SECURE_AGGREGATION_FEATURE, UPLOAD_GRANT_FEATURE, decodeWeightFrame, encodeWeightFrame,
  type ProtocolError, type ProtocolErrorCode, type RoundAssignmentMessage, type SecAggCoordinatorMessage,
} from '../protocol/index.js';
import { GaussianNoise } from '../privacy/gaussian-noise.js';
import { privatizeUpdate } from '../privacy/device-privacy.js';
import { SecAggClient } from '../secure-aggregation/secagg-client.js';
import type { ClientJob, ClientResult } from './sim-messages.js';
import type { VirtualClock } from './virtual-clock.js';

/** One virtual client as the channel knows it. */
export interface VirtualClientSpec {
  clientId: string;
  index: number;
  profile: string;
  /** Chance the device drops out of an assignment (its profile's availability). */
  dropoutRate: number;
}

/** What the channel asks of its owner for each assignment. */
export interface JobSource {
  /** The job for an assignment, with a lower bound of its device seconds (it cannot arrive sooner). */
  job(client: VirtualClientSpec, assignment: RoundAssignmentMessage): { job: ClientJob; minSeconds: number };
  /** Runs it (on the worker pool, or a process per client). */
  run(job: ClientJob, model: { version: number; weights: Float32Array }): Promise<ClientResult>;
}

/** What the channel saw happen to a client, for the report. */
export interface ChannelObserver {
  completed?(e: { client: VirtualClientSpec; job: ClientJob; result: ClientResult; assignedAt: number; arrivesAt: number }): void;
  droppedOut?(e: { client: VirtualClientSpec; roundId: number; at: number }): void;
}

interface InFlight {
  link: VirtualClientLink;
  job: ClientJob;
  assignedAt: number;
  /** It cannot arrive before this (virtual ms). */
  earliest: number;
}

/**
 * The simulation's transport for the round engine: every virtual client is
 * a `ClientLink`; an assignment becomes a job on the worker pool, and the
 * job's result reaches the engine at the virtual time its device would
 * deliver it (assignment + the device seconds its runtime accounted:
 * download, training, storage, upload). Events run in virtual-time order
 * (`VirtualClock`); the channel only runs an event once no job still
 * running on the host could arrive before it, so the order (and every
 * round's outcome) is the same however the host schedules the jobs. Ties
 * in virtual time go by client index.
 *
 * A device may drop out of an assignment (its profile's dropout rate, drawn
 * per client and assignment from the run's seed): it disconnects partway,
 * and reconnects a while later.
 */
export class VirtualChannel {
  readonly #clock: VirtualClock;
  readonly #source: JobSource;
  readonly #log: Logger;
  readonly #seed: number;
  readonly #dropouts: boolean;
  readonly #observer: ChannelObserver;
  readonly #inFlight = new Map<number, InFlight>();
  /** Clients training (assigned, result not yet delivered): like an agent, they ignore a new assignment. */
  readonly #busy = new Set<string>();
  /** Assignments made to each client (seeds its dropout draws). */
  readonly #assignments = new Map<string, number>();
  /** Update frames waiting for the engine's request, by client. */
  readonly #frames = new Map<string, { roundId: number; frame: Buffer }>();
  /** Each client's part in its round's secure aggregation session, and a result waiting for the session's shares. */
  readonly #secagg = new Map<string, { client: SecAggClient; waiting?: () => void }>();
  /** Seeded noise for DP on the virtual devices (a run reproduces). */
  readonly #noise: GaussianNoise;
  #engine: RoundEngine | undefined;
  #model: { version: number; weights: Float32Array } | undefined;
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  /** Client events so far (assignments, arrivals, dropouts); an event that changes nothing is a timer the engine could not act on. */
  #activity = 0;
  #ignored = 0;

  constructor(o: { clock: VirtualClock; source: JobSource; logger: Logger; seed: number; dropouts: boolean; observer?: ChannelObserver }) {
    this.#clock = o.clock;
    this.#source = o.source;
    this.#log = o.logger;
    this.#seed = o.seed;
    this.#dropouts = o.dropouts;
    this.#observer = o.observer ?? {};
    this.#noise = GaussianNoise.seeded((o.seed ^ 0x5eed_d9) >>> 0);
  }

  /** Connects every client (before the engine starts, so the first round picks among all of them). */
  connectAll(engine: RoundEngine, clients: readonly VirtualClientSpec[]): void {
    this.#engine = engine;
    for (const c of clients) {
      engine.connect(new VirtualClientLink(c, this, this.#log));
    }
  }

  /** Assignments ignored because the client was still training. */
  get ignoredAssignments(): number {
    return this.#ignored;
  }

  /** Jobs running on the host now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Runs events in virtual-time order until `done()` holds. Throws a
   * client's failure, or STRATA_ERR_SIM_STALLED when nothing is left to
   * happen and the engine is still waiting.
   */
  async run(done: () => boolean): Promise<void> {
    let quiet = 0;
    while (!done()) {
      if (this.#failure !== undefined) throw this.#failure;
      const next = this.#clock.peek();
      let earliest = Number.POSITIVE_INFINITY;
      for (const f of this.#inFlight.values()) earliest = Math.min(earliest, f.earliest);
      if (next !== undefined && next < earliest) {
        const before = this.#activity;
        this.#clock.runNext();
        // Deadlines passing with nothing in flight, no client event to come and nobody assigned: the engine can do nothing
        // more (say, every update is refused).
        quiet = this.#activity === before && this.#inFlight.size === 0 && this.#clock.scheduled(0) === 0 ? quiet + 1 : 0;
        if (quiet > 3) {
          throw new StrataError('STRATA_ERR_SIM_STALLED', 'the simulation stalled: round deadlines pass and no client can be assigned (are all updates refused?)', {
            virtualSeconds: this.#clock.elapsedSeconds,
          });
        }
        continue;
      }
      if (this.#inFlight.size > 0) {
        await new Promise<void>((resolve) => { this.#wake = resolve; });
        this.#wake = undefined;
        continue;
      }
      // Nothing scheduled and nothing in flight. The engine may still be finishing (evaluating a model): let it, then look again.
      await this.#engine?.settled();
      if (done() || this.#clock.peek() !== undefined || this.#inFlight.size > 0) continue;
      throw new StrataError('STRATA_ERR_SIM_STALLED', 'the simulation has nothing left to happen: no client can be assigned and no deadline is set', {
        virtualSeconds: this.#clock.elapsedSeconds,
      });
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** The engine assigned `link` a round. */
  assign(link: VirtualClientLink, a: RoundAssignmentMessage, model: Buffer): void {
    this.#activity++;
    const c = link.spec;
    if (this.#busy.has(c.clientId)) {
      // An agent still training ignores a new assignment (the engine does not send one to a client it knows is busy).
      this.#ignored++;
      this.#log.warn({ clientId: c.clientId, roundId: a.roundId }, 'assignment while still training; ignored');
      return;
    }
    const n = (this.#assignments.get(c.clientId) ?? 0) + 1;
    this.#assignments.set(c.clientId, n);
    const now = this.#clock.now();
    if (a.secureAggregation !== undefined) {
      // Its keys go at once, as an agent's do (it trains meanwhile).
      const client = new SecAggClient(c.clientId, a.roundId);
      this.#secagg.set(c.clientId, { client });
      this.#clock.at(now, () => this.#engine!.secaggMessage(link, client.keys()), c.index);
    } else {
      this.#secagg.delete(c.clientId);
    }
    const weights = this.#weightsOf(a, model);
    const { job, minSeconds } = this.#source.job(c, a);
    if (this.#dropouts && c.dropoutRate > 0) {
      const rng = new Rng(dropSeed(this.#seed, c.index, n));
      if (rng.next() < c.dropoutRate) {
        // Gone partway through its work; back after about as long again.
        const gone = now + rng.next() * minSeconds * 1000;
        this.#clock.at(gone, () => {
          this.#activity++;
          this.#observer.droppedOut?.({ client: c, roundId: a.roundId, at: this.#clock.now() });
          this.#engine!.disconnect(link);
          const back = this.#clock.now() + (0.5 + rng.next()) * minSeconds * 1000;
          this.#clock.at(back, () => this.#engine!.connect(link), c.index);
        }, c.index);
        return;
      }
    }
    this.#busy.add(c.clientId);
    const flight: InFlight = { link, job, assignedAt: now, earliest: now + minSeconds * 1000 };
    this.#inFlight.set(job.jobId, flight);
    this.#source.run(job, weights).then(
      (r) => this.#completed(flight, r),
      (err: unknown) => {
        this.#failure ??= err instanceof Error ? err : new Error(String(err));
        this.#inFlight.delete(job.jobId);
        this.#wake?.();
      },
    );
  }

  #completed(f: InFlight, r: ClientResult): void {
    this.#inFlight.delete(f.job.jobId);
    const c = f.link.spec;
    const arrivesAt = f.assignedAt + r.result.metrics.deviceSeconds * 1000;
    this.#clock.at(arrivesAt, () => {
      this.#activity++;
      this.#busy.delete(c.clientId);
      this.#observer.completed?.({ client: c, job: f.job, result: r, assignedAt: f.assignedAt, arrivesAt });
      const deliver = (): void => {
        const frame = this.#outgoing(c.clientId, f.job.assignment, Buffer.from(r.frame.buffer, r.frame.byteOffset, r.frame.byteLength), r.result.metrics.numSamples);
        if (frame !== undefined) this.#frames.set(c.clientId, { roundId: f.job.assignment.roundId, frame });
        this.#engine!.result(f.link, r.result);
      };
      const session = this.#secagg.get(c.clientId);
      // Under secure aggregation the masked upload waits for the session's shares, as an agent's does.
      if (f.job.assignment.secureAggregation !== undefined && session !== undefined && !session.client.ready) {
        session.waiting = deliver;
        // A session that fails never relays: at the deadline the result goes without an upload (answered as not needed).
        this.#clock.at(Math.max(this.#clock.now(), f.job.assignment.deadlineAt), () => {
          if (session.waiting !== deliver) return;
          session.waiting = undefined;
          deliver();
        }, c.index);
      } else {
        deliver();
      }
    }, c.index);
    this.#wake?.();
  }

  /**
   * The frame a device sends for its trained delta: with DP, clipped and
   * noised (seeded); under secure aggregation, weighted and masked.
   * Undefined when the session it belonged to is gone (its result is then
   * answered as not needed).
   */
  #outgoing(clientId: string, a: RoundAssignmentMessage, frame: Buffer, numSamples: number): Buffer | undefined {
    const dp = a.config.dp;
    const sa = a.secureAggregation;
    if (dp === undefined && sa === undefined) return frame;
    let delta = decodeWeightFrame(frame, { kind: 'delta', copy: true }).weights;
    if (dp !== undefined) delta = privatizeUpdate(delta, dp, this.#noise).delta;
    const header = { roundId: a.roundId, modelVersion: a.modelVersion, layoutHash: a.layoutHash, numSamples };
    if (sa === undefined) return encodeWeightFrame({ kind: 'delta', ...header }, delta);
    const session = this.#secagg.get(clientId);
    if (session === undefined || session.client.roundId !== a.roundId || !session.client.ready) return undefined;
    const weight = sa.weighting === 'samples' ? Math.max(1, numSamples) : 1;
    if (weight !== 1) for (let i = 0; i < delta.length; i++) delta[i]! *= weight;
    const { payload } = session.client.mask(delta, weight);
    return encodeWeightFrame({ kind: 'masked', ...header }, new Float32Array(payload.buffer, payload.byteOffset, payload.length));
  }

  /** A secure aggregation message for a virtual client: its answer follows at once (the same virtual time). */
  secagg(link: VirtualClientLink, m: SecAggCoordinatorMessage): void {
    const session = this.#secagg.get(link.clientId);
    if (session === undefined || session.client.roundId !== m.roundId) return;
    this.#clock.at(this.#clock.now(), () => {
      if (m.type === 'secagg-setup') this.#engine!.secaggMessage(link, session.client.setup(m));
      else if (m.type === 'secagg-unmask') this.#engine!.secaggMessage(link, session.client.unmask(m));
      else {
        session.client.relay(m);
        const waiting = session.waiting;
        session.waiting = undefined;
        waiting?.();
      }
    }, link.spec.index);
  }

  /** The engine wants the update frame behind the result it took: it follows at once. */
  requestUpdate(link: VirtualClientLink, roundId: number): void {
    const f = this.#frames.get(link.clientId);
    if (f === undefined || f.roundId !== roundId) return;
    this.#frames.delete(link.clientId);
    this.#clock.at(this.#clock.now(), () => this.#engine!.update(link, f.frame), link.spec.index);
  }

  withdrawUpdate(link: VirtualClientLink, roundId: number): void {
    if (this.#frames.get(link.clientId)?.roundId === roundId) this.#frames.delete(link.clientId);
  }

  /** The engine answered a result: a frame it will not ask for is let go. */
  answered(link: VirtualClientLink, roundId: number | undefined): void {
    if (roundId === undefined || this.#frames.get(link.clientId)?.roundId === roundId) this.#frames.delete(link.clientId);
  }

  /** The model an assignment carries, decoded once per version (the engine sends one frame per round to all). */
  #weightsOf(a: RoundAssignmentMessage, frame: Buffer): { version: number; weights: Float32Array } {
    if (this.#model?.version === a.modelVersion) return this.#model;
    const payload = new Float32Array(a.numParams);
    new Uint8Array(payload.buffer).set(frame.subarray(frame.length - a.numParams * 4));
    this.#model = { version: a.modelVersion, weights: payload };
    return this.#model;
  }
}

/** What a virtual client offers: every optional feature the channel implements. */
const VIRTUAL_FEATURES: readonly string[] = Object.freeze([UPLOAD_GRANT_FEATURE, SECURE_AGGREGATION_FEATURE]);

/** A virtual client as the round engine's link to it. */
export class VirtualClientLink implements ClientLink {
  readonly spec: VirtualClientSpec;
  readonly #channel: VirtualChannel;
  readonly #log: Logger;

  constructor(spec: VirtualClientSpec, channel: VirtualChannel, log: Logger) {
    this.spec = spec;
    this.#channel = channel;
    this.#log = log;
  }

  get clientId(): string { return this.spec.clientId; }
  get profile(): string { return this.spec.profile; }
  get log(): Logger { return this.#log.child({ clientId: this.spec.clientId }); }
  readonly features: readonly string[] = VIRTUAL_FEATURES;

  secagg(message: SecAggCoordinatorMessage): void {
    this.#channel.secagg(this, message);
  }

  assign(assignment: RoundAssignmentMessage, model: Buffer): void {
    this.#channel.assign(this, assignment, model);
  }

  requestUpdate(roundId: number): void {
    this.#channel.requestUpdate(this, roundId);
  }

  withdrawUpdate(roundId: number): void {
    this.#channel.withdrawUpdate(this, roundId);
  }

  ack(roundId: number, accepted: boolean, _code?: ProtocolErrorCode): void {
    if (!accepted) this.#channel.answered(this, roundId);
  }

  refuse(_err: ProtocolError, roundId?: number): void {
    this.#channel.answered(this, roundId);
  }

  close(_err: ProtocolError): void {
    // A virtual client has one link for its whole life: never replaced.
  }
}

function dropSeed(seed: number, client: number, assignment: number): number {
  return (Math.imul(seed + 7, 0x27d4eb2d) ^ Math.imul(client + 1, 0x165667b1) ^ Math.imul(assignment, 0x9e3779b1)) >>> 0;
}
