import { StrataError } from '../common/strata-error.js';
import { ArrivalLog, type AppendResult, type ArrivingSample } from '../storage-tier/arrival-log.js';
import type { DataSplit } from '../ml/datasets/dataset.js';
import type { SampleStream, StreamPosition, StreamRound } from './device-stream.js';

/**
 * A device fed live: samples arrive whenever they come (`ingest`), each
 * batch committed to the device's store file (`ArrivalLog`) before
 * `ingest` returns, so a power cut loses nothing. Each round learns from
 * everything that arrived since the last one (new classes among them are
 * a task boundary) and then lets the memory hierarchy keep it; samples
 * Miro holds out for validation stay in the log for good.
 */
export class LiveStream implements SampleStream {
  readonly log: ArrivalLog;
  readonly featureSize: number;

  /** The arrival log in `storeFile` (the device's sample store), for samples of `featureSize` values of `featureType`. */
  constructor(storeFile: string, options: { featureSize: number; featureType: 'uint8' | 'float32' }) {
    this.log = ArrivalLog.open(storeFile, options);
    this.featureSize = options.featureSize;
  }

  get featureType(): 'uint8' | 'float32' {
    return this.log.featureType;
  }

  /** Commits arriving samples (all or none); returns the newest arrival id. */
  ingest(samples: readonly ArrivingSample[], key?: string): AppendResult {
    return this.log.append(samples, key);
  }

  /** Samples that arrived after the device's last round (not counting held-out ones). */
  pending(from: StreamPosition): number {
    return this.log.read(from.taken).fresh.count;
  }

  open(roundId: number, from: StreamPosition): StreamRound {
    const { fresh, heldOut } = this.log.read(from.taken);
    if (fresh.count === 0) throw new StrataError('STRATA_ERR_DATASET_EMPTY', `${this.log.file}: nothing has arrived since the device's last round`, { file: this.log.file });
    // One split: the held-out samples first (rows 0..V-1), then this round's arrivals.
    const f = this.featureSize;
    const count = heldOut.count + fresh.count;
    const features = fresh.features instanceof Uint8Array ? new Uint8Array(count * f) : new Float32Array(count * f);
    features.set(heldOut.features, 0);
    features.set(fresh.features, heldOut.count * f);
    const labels = new Uint8Array(count);
    labels.set(heldOut.labels, 0);
    labels.set(fresh.labels, heldOut.count);
    const split: DataSplit = { features, labels, count };
    const rowIds = [...heldOut.ids, ...fresh.ids];
    const indices = Int32Array.from({ length: fresh.count }, (_, i) => heldOut.count + i);
    const classes = [...new Set(fresh.labels)].sort((a, b) => a - b);
    let held = Int32Array.from({ length: heldOut.count }, (_, i) => i);
    const last = fresh.ids.at(-1)!;
    return {
      split, arrivals: { train: { indices, classes }, backlog: [] }, next: { taken: last, lastRound: roundId }, validation: held,
      holdOut: (rows) => {
        this.log.holdOut(Array.from(rows, (r) => rowIds[r]!));
        return (held = Int32Array.from([...held, ...rows]));
      },
      keptValidation: () => [],
      commit: () => this.log.dropThrough(last),
    };
  }

  close(): void {
    this.log.close();
  }
}
