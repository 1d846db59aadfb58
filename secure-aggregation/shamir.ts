import { randomBytes } from 'node:crypto';

/**
 * Shamir secret sharing over the prime field GF(2^521 - 1) (a Mersenne
 * prime, so a 32-byte secret always fits): `split` evaluates a random
 * polynomial of degree t - 1 whose constant term is the secret at each
 * holder's x (1-based, never 0); any t shares `reconstruct` it by Lagrange
 * interpolation at 0, fewer reveal nothing about it.
 */
export const SHAMIR_PRIME = (1n << 521n) - 1n;
/** Bytes of a share value on the wire (521 bits). */
export const SHARE_BYTES = 66;

export interface Share {
  x: number;
  y: bigint;
}

function mod(a: bigint): bigint {
  const r = a % SHAMIR_PRIME;
  return r < 0n ? r + SHAMIR_PRIME : r;
}

function randomElement(): bigint {
  // 66 random bytes reduced: bias below 2^-7 x 2^-521 per coefficient, nothing to see.
  return mod(bytesToBigInt(randomBytes(SHARE_BYTES)));
}

/** Modular inverse by the extended Euclidean algorithm (far cheaper than a 521-bit exponentiation). */
function inverse(a: bigint): bigint {
  let [r0, r1] = [SHAMIR_PRIME, mod(a)];
  let [t0, t1] = [0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return mod(t0);
}

export function bytesToBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  return v;
}

export function bigIntToBytes(v: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = v;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (x !== 0n) throw new RangeError(`value does not fit in ${length} bytes`);
  return out;
}

/** Shares of `secret` for holders at `xs` (distinct, >= 1); any `threshold` of them reconstruct it. */
export function split(secret: Uint8Array, xs: readonly number[], threshold: number): Share[] {
  if (threshold < 1 || threshold > xs.length) throw new RangeError(`threshold ${threshold} for ${xs.length} shares`);
  const coefficients = [mod(bytesToBigInt(secret))];
  for (let i = 1; i < threshold; i++) coefficients.push(randomElement());
  return xs.map((x) => {
    if (!Number.isSafeInteger(x) || x < 1) throw new RangeError(`share x must be an integer >= 1 (got ${x})`);
    const bx = BigInt(x);
    let y = 0n;
    for (let i = coefficients.length - 1; i >= 0; i--) y = (y * bx + coefficients[i]!) % SHAMIR_PRIME;
    return { x, y };
  });
}

/** The secret (as `length` bytes) from at least threshold shares with distinct x; undefined when what they interpolate is no such secret (too few or wrong shares). */
export function reconstruct(shares: readonly Share[], length: number): Buffer | undefined {
  // Lagrange at 0 over one common denominator: secret = sum(y_i n_i D / d_i) / D, one inverse in all.
  const xs = shares.map((s) => BigInt(s.x));
  const nums: bigint[] = [];
  const dens: bigint[] = [];
  for (let i = 0; i < xs.length; i++) {
    let num = 1n;
    let den = 1n;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      num = (num * xs[j]!) % SHAMIR_PRIME;
      den = mod(den * (xs[j]! - xs[i]!));
    }
    nums.push(num);
    dens.push(den);
  }
  let total = 0n;
  let denominator = 1n;
  for (let i = 0; i < xs.length; i++) {
    // total/denominator + y_i num_i/den_i
    total = mod(total * dens[i]! + shares[i]!.y * nums[i]! % SHAMIR_PRIME * denominator);
    denominator = (denominator * dens[i]!) % SHAMIR_PRIME;
  }
  const secret = (total * inverse(denominator)) % SHAMIR_PRIME;
  return secret >> BigInt(8 * length) === 0n ? bigIntToBytes(secret, length) : undefined;
}

export function shareToBytes(y: bigint): Buffer {
  return bigIntToBytes(y, SHARE_BYTES);
}

export function shareFromBytes(b: Uint8Array): bigint {
  return bytesToBigInt(b);
}
