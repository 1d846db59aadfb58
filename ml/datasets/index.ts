export type { Dataset, DataSplit } from './dataset.js';
export { concatIndices, indicesOfClasses, subsetSplit } from './dataset.js';
export { readIdxFile, type IdxArray } from './idx-format.js';
export { loadIdxDataset } from './idx-dataset.js';
export { syntheticDataset, type SyntheticOptions } from './synthetic.js';
export { loadDataset, mnistDir, parseDatasetSpec, type DatasetSpec } from './load-dataset.js';
export { splitClassIncremental, seenTestIndices, type ClTask, type ClassIncrementalScenario, type ScenarioOptions } from './class-incremental.js';
export { PARTITION_PATTERN, classesPerDevice, deviceIndices, dirichlet, dominantClassesOf, formatPartition, parsePartition, partitionIndices, type Partition } from './partition.js';
