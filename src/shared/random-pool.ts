/**
 * Cryptographic random bytes taken from a pool refilled 4 KiB at a time: a salt or a padding
 * draw per connection then costs a copy, not a call into OpenSSL (~3 µs each, most of it the call).
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let at = POOL_BYTES;

/** Where the next `n` unused bytes of the pool start, refilling it when it has fewer left. */
function take(n: number): number {
  if (at + n > POOL_BYTES) {
    randomFillSync(pool);
    at = 0;
  }
  at += n;
  return at - n;
}

/** `n` fresh random bytes, in an array of their own (never handed out twice). */
export function randomPooled(n: number): Uint8Array {
  if (n > POOL_BYTES / 4) return randomFillSync(new Uint8Array(n));
  const from = take(n);
  return pool.slice(from, from + n);
}

/** A random unsigned 32-bit integer from the same pool. */
export function randomUint32(): number {
  const from = take(4);
  return (pool[from]! | (pool[from + 1]! << 8) | (pool[from + 2]! << 16) | (pool[from + 3]! << 24)) >>> 0;
}
