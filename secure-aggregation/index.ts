export { FIELD_PRIME, quantizationBound, quantizationScale } from './field.js';
export { expandMask } from './mask-prg.js';
export { split as shamirSplit, reconstruct as shamirReconstruct, SHAMIR_PRIME, type Share } from './shamir.js';
export { NeighbourGraph, defaultNeighbours, shareThreshold } from './neighbour-graph.js';
export { SecAggClient, type MaskedUpdate } from './secagg-client.js';
export { SecAggRound, MIN_SECAGG_PARTIES, type SecAggRoundOptions, type SecAggStage } from './secagg-round.js';
export { checkSecureAggregation, type SecureAggregationOptions, type SecAggWeighting } from './compatibility.js';
