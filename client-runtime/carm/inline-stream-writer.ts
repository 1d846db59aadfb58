import { SampleStore } from '../../storage-tier/sample-store.js';
import type { StorageCapacity } from '../../storage-tier/sample-store-options.js';
import type { StreamFlushResult, StreamSample } from './stream-writer.js';

/**
 * The stream writer of `--swap sync`: every step's stream samples committed
 * on the training thread as they come, like the swaps' reads. With reads and
 * writes inline, a device's run no longer hangs on thread timing (which
 * samples a swap can find in the store is decided by the step, not by how
 * far a background writer has got), so a run repeats exactly.
 */
export class InlineStreamWriter {
  readonly #store: SampleStore;
  #written = 0;

  private constructor(store: SampleStore) {
    this.#store = store;
  }

  static open(options: { storeFile: string; capacity: StorageCapacity }): InlineStreamWriter {
    return new InlineStreamWriter(SampleStore.open(options.storeFile, { capacity: options.capacity }));
  }

  write(samples: readonly StreamSample[]): void {
    this.#store.ingest(samples);
    this.#written += samples.length;
  }

  async flush(): Promise<StreamFlushResult> {
    const counts = this.#store.countsByClass();
    const bytes = this.#store.bytesUsed();
    return { stored: this.#store.count(), countsByClass: Object.fromEntries(counts), bytes: bytes.payloadBytes, fileBytes: bytes.fileBytes, written: this.#written };
  }

  async close(): Promise<void> {
    this.#store.close();
  }
}
