/**
 * Cryptographic random bytes taken from a pool refilled 4 KiB at a time: a salt or a padding
 * draw per connection then costs a copy, not a call into OpenSSL (~3 µs each, most of it the call).
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let at = POOL_BYTES;

/** `n` fresh random bytes, in an array of their own (never handed out twice). */
export function randomPooled(n: number): Uint8Array {
  if (n > POOL_BYTES / 4) return randomFillSync(new Uint8Array(n));
  if (at + n > POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  const bytes = pool.slice(at, at + n);
  at += n;
  return bytes;
}

/** A random unsigned 32-bit integer from the same pool. */
export function randomUint32(): number {
  if (at + 4 > POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  const value = (pool[at]! | (pool[at + 1]! << 8) | (pool[at + 2]! << 16) | (pool[at + 3]! << 24)) >>> 0;
  at += 4;
  return value;
}
