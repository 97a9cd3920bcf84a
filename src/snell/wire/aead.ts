/**
 * The two AEADs Snell uses, through node:crypto (about 3 µs per open, several times faster
 * than a JavaScript implementation; the tests check it against @noble/ciphers).
 */
import * as crypto from 'node:crypto';
import { concatBytes } from '../../shared/bytes.js';

export type AeadName = 'aes-128-gcm' | 'chacha20-poly1305';
export const TAG_BYTES = 16;
export const NONCE_BYTES = 12;

/** v2-v5 key the AES-128-GCM with the first 16 bytes of the KDF output; v1 keys ChaCha20 with all 32. */
export function aeadKey(kdfOutput: Uint8Array, aead: AeadName): Uint8Array {
  return aead === 'aes-128-gcm' ? kdfOutput.subarray(0, 16) : kdfOutput.subarray(0, 32);
}

/** Snell's nonce: a 12-byte little-endian counter (docs/snell.md §2). */
export function counterNonce(counter: number): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeUIntLE(counter % 2 ** 48, 0, 6);
  nonce.writeUInt16LE(Math.floor(counter / 2 ** 48) & 0xffff, 6);
  return nonce;
}

const NONCE_ZERO = counterNonce(0);

function nonceFor(counter: number): Buffer {
  return counter === 0 ? NONCE_ZERO : counterNonce(counter);
}

/** Returns ciphertext || 16-byte tag. */
export function seal(aead: AeadName, key: Uint8Array, counter: number, plaintext: Uint8Array): Uint8Array {
  // Both AEADs expose the tag API; the cast only narrows the overload node's typings pick.
  const cipher = crypto.createCipheriv(aead, key, nonceFor(counter), { authTagLength: TAG_BYTES } as crypto.CipherGCMOptions) as crypto.CipherGCM;
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return concatBytes(head, tail, cipher.getAuthTag());
}

/** Returns the plaintext, or undefined when the tag does not verify (the normal outcome of a wrong key). */
export function open(aead: AeadName, key: Uint8Array, counter: number, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_BYTES) return undefined;
  const body = sealed.subarray(0, sealed.length - TAG_BYTES);
  const decipher = crypto.createDecipheriv(aead, key, nonceFor(counter), { authTagLength: TAG_BYTES } as crypto.CipherGCMOptions) as crypto.DecipherGCM;
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const head = decipher.update(body);
  try {
    const tail = decipher.final();
    return tail.length === 0 ? new Uint8Array(head.buffer, head.byteOffset, head.length) : Buffer.concat([head, tail]);
  } catch {
    return undefined;
  }
}

/**
 * One direction of a Snell stream: a key and a nonce counter that steps after every seal or
 * open, failed opens included, as OpenSnell and mihomo do.
 */
export class AeadDirection {
  private counter = 0;
  constructor(
    readonly aead: AeadName,
    private readonly key: Uint8Array,
  ) {}

  get nextNonce(): number {
    return this.counter;
  }

  seal(plaintext: Uint8Array): Uint8Array {
    return seal(this.aead, this.key, this.counter++, plaintext);
  }

  open(sealed: Uint8Array): Uint8Array | undefined {
    return open(this.aead, this.key, this.counter++, sealed);
  }
}
