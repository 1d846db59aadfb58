import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

/**
 * X25519 key agreement and the keys derived from it (HKDF-SHA256), all from
 * `node:crypto`: each party of a secure-aggregation round holds one key pair
 * to encrypt the shares it deals (`c`) and one to agree pairwise mask seeds
 * (`s`). Public keys travel as 32 raw bytes (base64url).
 */
export interface KeyPair {
  publicKey: string;
  privateKey: KeyObject;
}

export function generateKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKey.export({ format: 'jwk' }).x!, privateKey };
}

/** The raw 32-byte private key (what is Shamir-shared). */
export function privateKeyBytes(k: KeyObject): Buffer {
  return Buffer.from(k.export({ format: 'jwk' }).d!, 'base64url');
}

/** A private key rebuilt from its raw bytes, or undefined when it does not belong to `publicKey` (a wrong reconstruction). */
export function privateKeyFrom(raw: Uint8Array, publicKey: string): KeyObject | undefined {
  try {
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(raw).toString('base64url'), x: publicKey }, format: 'jwk' });
    return createPublicKey(key).export({ format: 'jwk' }).x === publicKey ? key : undefined;
  } catch {
    return undefined;
  }
}

function publicKeyObject(x: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

/** A 32-byte key both ends derive alike: HKDF-SHA256(X25519(mine, theirs), salt, info). */
export function agreeKey(privateKey: KeyObject, theirPublicKey: string, salt: string, info: string): Buffer {
  const shared = diffieHellman({ privateKey, publicKey: publicKeyObject(theirPublicKey) });
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(salt), Buffer.from(info), 32));
}

/** AES-256-GCM with a fresh nonce: nonce || ciphertext || tag, bound to `aad`. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.from(aad));
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

/** The plaintext, or undefined when the box was not sealed with this key and aad (or was altered). */
export function open(key: Uint8Array, box: Uint8Array, aad: string): Buffer | undefined {
  if (box.length < 28) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, box.subarray(0, 12));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(box.subarray(box.length - 16));
    return Buffer.concat([d.update(box.subarray(12, box.length - 16)), d.final()]);
  } catch {
    return undefined;
  }
}

/** SHA-256 commitment to a share value, bound to the round, the dealer, the holder and the secret it is of. */
export function shareCommitment(roundId: number, dealer: string, holder: string, kind: 'self' | 'key', share: Uint8Array): string {
  return createHash('sha256').update(`strata-secagg|${roundId}|${dealer}|${holder}|${kind}|`).update(share).digest('base64url');
}
