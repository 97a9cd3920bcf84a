/**
 * The content of a first frame's padding (docs/snell.md §3, "What writers do"). Receivers throw it away;
 * only someone fingerprinting the wire sees it. Two styles:
 *
 * - `opensnell`: the bits of the padding are balanced against the sealed payload, as OpenSnell's
 *   writer does (`components/snell/v4.go`: `makeV4Padding`, `makeV4BitCountPadding`) and, by
 *   sing-snell's reverse engineering (`snellv4/record.go`), Surge 6.7 too. Payload ones are
 *   counted over its first `len & ~3` bytes, zeros over all of it; when ones/zeros lies in
 *   (0.5, 1.6) the padding carries just enough ones to bring the whole of padding and payload
 *   to a ones/zeros ratio of 1.6 (0.4 when ones outnumber zeros) plus U[0, 0.1), placed at
 *   uniformly random bit positions; otherwise, and when that count does not fit, random bytes.
 * - `random`: random bytes (what authkit sent before; no known client does).
 */
import { randomPooled, randomUint32 } from '../../shared/random-pool.js';

export type PaddingStyle = 'opensnell' | 'random';
export const PADDING_STYLES: readonly PaddingStyle[] = ['opensnell', 'random'];

/** Where the randomness comes from (tests pass a fixed one). */
export interface PaddingRandom {
  bytes(n: number): Uint8Array;
  /** Uniform in [0, 1). */
  unit(): number;
  /** Uniform in [0, below). */
  index(below: number): number;
}

/**
 * Crypto randomness. An index takes 32 random bits scaled to the range: the bias is below
 * 2^-19 for any padding length a frame can carry, far under what a fingerprint could see.
 */
export function cryptoPaddingRandom(): PaddingRandom {
  return CRYPTO_PADDING_RANDOM;
}

const CRYPTO_PADDING_RANDOM: PaddingRandom = {
  bytes: (n) => randomPooled(n),
  unit: () => (randomUint32() * 2 ** 21 + (randomUint32() >>> 11)) / 2 ** 53,
  index: (below) => Math.floor((randomUint32() / 2 ** 32) * below),
};

/**
 * `length` bytes with exactly `ones` bits set, every such arrangement equally likely; bit i is
 * bit (i mod 8), low bit first, of byte i / 8, as OpenSnell packs its shuffled bit set.
 */
export function bitCountPadding(length: number, ones: number, random: PaddingRandom = cryptoPaddingRandom()): Uint8Array {
  const bits = 8 * length;
  if (!Number.isInteger(ones) || ones < 0 || ones > bits) throw new RangeError(`${ones} one-bits do not fit in ${length} bytes`);
  // Choose the smaller of the two sets by a partial Fisher-Yates shuffle of the bit positions: a
  // uniform subset of that size, with as many draws as the set has members.
  const invert = ones > bits / 2;
  const chosen = invert ? bits - ones : ones;
  const { positions, swaps } = shuffleSpace(bits, chosen);
  let done = 0;
  try {
    for (; done < chosen; done++) {
      const j = done + random.index(bits - done);
      swaps[done] = j;
      const t = positions[done]!;
      positions[done] = positions[j]!;
      positions[j] = t;
    }
    const padding = new Uint8Array(length).fill(invert ? 0xff : 0);
    for (let i = 0; i < chosen; i++) {
      const bit = positions[i]!;
      padding[bit >> 3] = padding[bit >> 3]! ^ (1 << (bit & 7));
    }
    return padding;
  } finally {
    // Undo the swaps, last first: the identity is ready for the next frame, with no fill of every bit.
    for (let i = done - 1; i >= 0; i--) {
      const j = swaps[i]!;
      const t = positions[i]!;
      positions[i] = positions[j]!;
      positions[j] = t;
    }
  }
}

/**
 * The bit positions 0..bits-1 in order, kept between frames (a reply per connection allocated
 * and filled thousands of them), and room to record the swaps that undo a shuffle.
 */
let identity = new Uint32Array(0);
let swapLog = new Uint32Array(0);

function shuffleSpace(bits: number, chosen: number): { positions: Uint32Array; swaps: Uint32Array } {
  if (identity.length < bits) {
    const grown = new Uint32Array(Math.max(bits, 2 * identity.length));
    for (let i = 0; i < grown.length; i++) grown[i] = i;
    identity = grown;
  }
  if (swapLog.length < chosen) swapLog = new Uint32Array(Math.max(chosen, 2 * swapLog.length));
  return { positions: identity, swaps: swapLog };
}

function onesIn(bytes: Uint8Array): number {
  let ones = 0;
  for (const byte of bytes) {
    let b = byte;
    while (b) {
      ones += b & 1;
      b >>= 1;
    }
  }
  return ones;
}

/** The `opensnell` style: padding for a frame whose sealed payload (before the swap) is `sealedPayload`. */
export function balancedPadding(sealedPayload: Uint8Array, length: number, random: PaddingRandom = cryptoPaddingRandom()): Uint8Array {
  if (length <= 0) return new Uint8Array(0);
  // The quirk both writers share: ones over whole 4-byte groups, zeros against the full length.
  const payloadOnes = onesIn(sealedPayload.subarray(0, sealedPayload.length & ~3));
  const payloadZeros = 8 * sealedPayload.length - payloadOnes;
  if (payloadZeros <= 0) return random.bytes(length);
  const ratio = payloadOnes / payloadZeros;
  if (ratio <= 0.5 || ratio >= 1.6) return random.bytes(length);
  const target = (payloadZeros < payloadOnes ? 0.4 : 1.6) + random.unit() / 10;
  const totalBits = 8 * (length + sealedPayload.length);
  // Go's int() truncates toward zero.
  const ones = Math.trunc(totalBits * (target / (target + 1)) - payloadOnes);
  if (ones < 0 || ones > 8 * length) return random.bytes(length);
  return bitCountPadding(length, ones, random);
}

/** How sealFrame gets padding whose content depends on the sealed payload. */
export interface PaddingPlan {
  length: number;
  make(sealedPayload: Uint8Array): Uint8Array;
}

export function paddingPlan(style: PaddingStyle, length: number): PaddingPlan {
  return {
    length,
    make: (sealedPayload) => (style === 'opensnell' ? balancedPadding(sealedPayload, length) : randomPooled(length)),
  };
}
