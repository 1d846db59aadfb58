export { DifferentialPrivacy, type DifferentialPrivacyOptions } from './differential-privacy.js';
export { RdpAccountant, DEFAULT_RDP_ORDERS, rdpToEpsilon, sampledGaussianRdp } from './rdp-accountant.js';
export { GaussianNoise, type NormalSource } from './gaussian-noise.js';
export { privatizeUpdate, deviceNoiseStd, type PrivatizedUpdate } from './device-privacy.js';
export { checkPrivacyFloor, type PrivacyFloor } from './privacy-floor.js';
