/** The storage tier: SQLite stores for samples (and, later, checkpoints and coordinator state). */
export { SampleStore, type IngestResult, type SampleStoreState, type StoreBytes } from './sample-store.js';
export {
  compileSampleStoreOptions,
  type CompiledSampleStoreOptions,
  type SampleStoreOptions,
  type StorageCapacity,
} from './sample-store-options.js';
export type { FeatureDType, Features, SampleInput, StoredSample } from './sample-codec.js';
export { migrate, sampleStoreMigrations, type Migration, type MigrationResult } from './migrations.js';
export { openStoreFile, STRATA_APPLICATION_ID, SAMPLE_STORE_KIND, COORDINATOR_STORE_KIND, type StoreKind, type IntegrityCheck, type OpenedStoreFile, type StoreFileOptions, type Synchronous } from './store-file.js';
export type { SqliteDatabase, SqliteStatement } from './sqlite.js';
