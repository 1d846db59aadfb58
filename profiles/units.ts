/** Bytes per MB and bits per Mbit: profiles use decimal units. */
export const BYTES_PER_MB = 1e6;
export const BITS_PER_MBIT = 1e6;
