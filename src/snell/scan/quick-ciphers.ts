/**
 * The few block operations a trial needs per user, in plain JavaScript. Creating a node:crypto
 * cipher object costs ~2.3 µs, more than the work itself: AES-128 on one block here costs
 * ~0.3 µs, a ChaCha20 block ~0.2 µs. Each user of a scan needs one of each at most, and the
 * tag checks of the legacy test (GHASH, Poly1305) run only for the 1 user in 4 whose decrypted
 * length is plausible. A match is still confirmed by node:crypto's full AEAD open where a
 * server would use it (matchesV4); the legacy test's tag checks here are exact and tested
 * against node:crypto on random keys (test/snell/scan/quick-ciphers.test.ts).
 *
 * Not constant-time (table lookups): these keys are those of a testing tool's trial scan.
 * Written from FIPS-197 (AES), NIST SP 800-38D (GCM) and RFC 8439 (ChaCha20, Poly1305).
 */

const SBOX = new Uint8Array(256);
/** T-tables: Te0[x] is the MixColumns column of S[x] as a big-endian word; Te1..3 its rotations. */
// Int32 throughout: V8 keeps int32 values unboxed, where uint32 values above 2^31 become doubles.
const TE0 = new Int32Array(256);
const TE1 = new Int32Array(256);
const TE2 = new Int32Array(256);
const TE3 = new Int32Array(256);

/** Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (small factors only: 2 and 3). */
function gfMul8(a: number, b: number): number {
  let product = 0;
  for (; b > 0; b >>= 1) {
    if (b & 1) product ^= a;
    a = a & 0x80 ? ((a << 1) ^ 0x11b) & 0xff : a << 1;
  }
  return product;
}

{
  // The S-box from its definition: the multiplicative inverse (through powers of the
  // generator 3, so the tables cost microseconds at start-up), then the affine map.
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  for (let i = 0, x = 1; i < 255; i++, x = gfMul8(x, 3)) {
    exp[i] = x;
    log[x] = i;
  }
  const rotl8 = (x: number, n: number): number => ((x << n) | (x >> (8 - n))) & 0xff;
  for (let x = 0; x < 256; x++) {
    const b = x === 0 ? 0 : exp[(255 - log[x]!) % 255]!;
    const s = b ^ rotl8(b, 1) ^ rotl8(b, 2) ^ rotl8(b, 3) ^ rotl8(b, 4) ^ 0x63;
    SBOX[x] = s;
    const word = (gfMul8(s, 2) << 24) | (s << 16) | (s << 8) | gfMul8(s, 3);
    TE0[x] = word;
    TE1[x] = (word >>> 8) | (word << 24);
    TE2[x] = (word >>> 16) | (word << 16);
    TE3[x] = (word >>> 24) | (word << 8);
  }
}

const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

function be32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
}

/**
 * An AES-128 key schedule: 44 round-key words, big-endian, as int32. The key is the 16 bytes
 * at `at` (a view per user costs more than the schedule's first words).
 */
export function aes128Schedule(key: Uint8Array, w: Int32Array = new Int32Array(44), at = 0): Int32Array {
  for (let i = 0; i < 4; i++) w[i] = be32(key, at + 4 * i);
  for (let i = 4; i < 44; i++) {
    let t = w[i - 1]!;
    if (i % 4 === 0) {
      t = (SBOX[(t >>> 16) & 255]! << 24) | (SBOX[(t >>> 8) & 255]! << 16) | (SBOX[t & 255]! << 8) | SBOX[t >>> 24]!;
      t ^= RCON[(i >> 2) - 1]! << 24;
    }
    w[i] = w[i - 4]! ^ t;
  }
  return w;
}

/**
 * Encrypts the block whose last word is `counter` and first three are zero (GCM's counter
 * blocks for Snell's all-zero nonce; counter 0 is the hash key H), into out[0..3] as big-endian words.
 */
export function aes128CounterBlock(w: Int32Array, counter: number, out: Int32Array): void {
  let s0 = w[0]!, s1 = w[1]!, s2 = w[2]!, s3 = counter ^ w[3]!;
  let k = 4;
  for (let round = 1; round < 10; round++, k += 4) {
    const t0 = TE0[s0 >>> 24]! ^ TE1[(s1 >>> 16) & 255]! ^ TE2[(s2 >>> 8) & 255]! ^ TE3[s3 & 255]! ^ w[k]!;
    const t1 = TE0[s1 >>> 24]! ^ TE1[(s2 >>> 16) & 255]! ^ TE2[(s3 >>> 8) & 255]! ^ TE3[s0 & 255]! ^ w[k + 1]!;
    const t2 = TE0[s2 >>> 24]! ^ TE1[(s3 >>> 16) & 255]! ^ TE2[(s0 >>> 8) & 255]! ^ TE3[s1 & 255]! ^ w[k + 2]!;
    const t3 = TE0[s3 >>> 24]! ^ TE1[(s0 >>> 16) & 255]! ^ TE2[(s1 >>> 8) & 255]! ^ TE3[s2 & 255]! ^ w[k + 3]!;
    s0 = t0; s1 = t1; s2 = t2; s3 = t3;
  }
  out[0] = lastRound(s0, s1, s2, s3, w[40]!);
  out[1] = lastRound(s1, s2, s3, s0, w[41]!);
  out[2] = lastRound(s2, s3, s0, s1, w[42]!);
  out[3] = lastRound(s3, s0, s1, s2, w[43]!);
}

/** SubBytes and ShiftRows of the last round (no MixColumns), then its round key. */
function lastRound(a: number, b: number, c: number, d: number, key: number): number {
  return ((SBOX[a >>> 24]! << 24) | (SBOX[(b >>> 16) & 255]! << 16) | (SBOX[(c >>> 8) & 255]! << 8) | SBOX[d & 255]!) ^ key;
}

/** V·x in GHASH's field (SP 800-38D §6.3: a right shift, 0xe1 folded in when a bit falls off). */
function timesX(v: Int32Array, at: number, out: Int32Array, to: number): void {
  const carry = v[at + 3]! & 1;
  out[to + 3] = (v[at + 3]! >>> 1) | (v[at + 2]! << 31);
  out[to + 2] = (v[at + 2]! >>> 1) | (v[at + 1]! << 31);
  out[to + 1] = (v[at + 1]! >>> 1) | (v[at]! << 31);
  out[to] = (v[at]! >>> 1) ^ (carry ? 0xe1000000 | 0 : 0);
}

/** What x^4 folds into the top word for the four bits a 4-bit right shift drops (Shoup's method). */
const REDUCE4 = new Int32Array(16);
{
  const v = new Int32Array(4);
  for (let rem = 0; rem < 16; rem++) {
    v.fill(0);
    v[3] = rem;
    for (let k = 0; k < 4; k++) timesX(v, 0, v, 0);
    REDUCE4[rem] = v[0]!;
  }
}

/** n·H for each 4-bit n (its high bit the x^0 coefficient), four words each. */
const hTable = new Int32Array(64);

function buildHTable(h: Int32Array): void {
  hTable.fill(0, 0, 4);
  hTable.set(h, 32); // 8·H = H
  timesX(hTable, 32, hTable, 16); // 4·H = H·x
  timesX(hTable, 16, hTable, 8); // 2·H
  timesX(hTable, 8, hTable, 4); // 1·H
  for (const n of [3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15]) {
    const high = n & (n - 1); // n less its lowest set bit (n is no power of two)
    const low = n ^ high;
    for (let k = 0; k < 4; k++) hTable[4 * n + k] = hTable[4 * high + k]! ^ hTable[4 * low + k]!;
  }
}

/**
 * X·H (H in hTable), result into x: Horner's rule over X's 4-bit pieces from the last, a
 * table lookup and a 4-bit shift each. `nibbles`: X is zero past its first `nibbles` pieces.
 */
function ghashMul(x: Int32Array, nibbles = 32): void {
  let z0 = 0, z1 = 0, z2 = 0, z3 = 0;
  for (let j = nibbles - 1; j >= 0; j--) {
    const n = (x[j >>> 3]! >>> (28 - 4 * (j & 7))) & 15;
    const rem = z3 & 15;
    z3 = (z3 >>> 4) | (z2 << 28);
    z2 = (z2 >>> 4) | (z1 << 28);
    z1 = (z1 >>> 4) | (z0 << 28);
    z0 = (z0 >>> 4) ^ REDUCE4[rem]!;
    z0 ^= hTable[4 * n]!;
    z1 ^= hTable[4 * n + 1]!;
    z2 ^= hTable[4 * n + 2]!;
    z3 ^= hTable[4 * n + 3]!;
  }
  x[0] = z0; x[1] = z1; x[2] = z2; x[3] = z3;
}

const scratch = new Int32Array(4);
const hashKey = new Int32Array(4);
const acc = new Int32Array(4);

/**
 * Does `sealed` (a 2-byte ciphertext and its 16-byte tag) verify under AES-128-GCM with the
 * all-zero nonce and no associated data? The tag is E(J0) xor GHASH(C || lengths).
 */
export function gcmTwoByteTagMatches(w: Int32Array, sealed: Uint8Array): boolean {
  aes128CounterBlock(w, 0, hashKey);
  buildHTable(hashKey);
  acc[0] = (sealed[0]! << 24) | (sealed[1]! << 16);
  acc[1] = 0; acc[2] = 0; acc[3] = 0;
  ghashMul(acc, 4); // the two-byte block: four 4-bit pieces, the rest zero
  acc[3] = acc[3]! ^ 16; // len(A) = 0, len(C) = 16 bits
  ghashMul(acc);
  aes128CounterBlock(w, 1, scratch);
  for (let i = 0; i < 4; i++) if ((acc[i]! ^ scratch[i]!) !== be32(sealed, 2 + 4 * i)) return false;
  return true;
}

const chachaOut = new Uint32Array(16);

function le32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/**
 * One ChaCha20 block (RFC 8439 §2.3) for the 32-byte key at `at`, the all-zero nonce and
 * `counter`, into chachaOut as little-endian words; `words` limits how many output words are finished.
 */
function chachaBlock(key: Uint8Array, counter: number, words: number, at: number): Uint32Array {
  const k0 = le32(key, at), k1 = le32(key, at + 4), k2 = le32(key, at + 8), k3 = le32(key, at + 12);
  const k4 = le32(key, at + 16), k5 = le32(key, at + 20), k6 = le32(key, at + 24), k7 = le32(key, at + 28);
  let x0 = 0x61707865, x1 = 0x3320646e, x2 = 0x79622d32, x3 = 0x6b206574;
  let x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
  let x12 = counter, x13 = 0, x14 = 0, x15 = 0;
  for (let i = 0; i < 10; i++) {
    // Column rounds, then diagonal rounds; each line is one quarter round.
    x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16); x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20); x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24); x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25);
    x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16); x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20); x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24); x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25);
    x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16); x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20); x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24); x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25);
    x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16); x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20); x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24); x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25);
    x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16); x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20); x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24); x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25);
    x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16); x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20); x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24); x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25);
    x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16); x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 12) | (x7 >>> 20); x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24); x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 7) | (x7 >>> 25);
    x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16); x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 12) | (x4 >>> 20); x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24); x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 7) | (x4 >>> 25);
  }
  const o = chachaOut;
  o[0] = x0 + 0x61707865; o[1] = x1 + 0x3320646e; o[2] = x2 + 0x79622d32; o[3] = x3 + 0x6b206574;
  if (words > 4) {
    o[4] = x4 + k0; o[5] = x5 + k1; o[6] = x6 + k2; o[7] = x7 + k3;
  }
  return o;
}

/** The first keystream word (little-endian) that encrypts a ChaCha20-Poly1305 message: block counter 1. */
export function chachaFirstKeystreamWord(key: Uint8Array, at = 0): number {
  return chachaBlock(key, 1, 1, at)[0]!;
}

const P1305 = (1n << 130n) - 5n;
const R_CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn;
const MASK128 = (1n << 128n) - 1n;

function le128(words: Uint32Array, at: number): bigint {
  return (BigInt(words[at + 3]!) << 96n) | (BigInt(words[at + 2]!) << 64n) | (BigInt(words[at + 1]!) << 32n) | BigInt(words[at]!);
}

/**
 * Does `sealed` (a 2-byte ciphertext and its 16-byte tag) verify under ChaCha20-Poly1305
 * (RFC 8439 §2.8) with the key at `at`, the all-zero nonce and no associated data?
 */
export function chachaPolyTwoByteTagMatches(key: Uint8Array, sealed: Uint8Array, at = 0): boolean {
  const block0 = chachaBlock(key, 0, 8, at);
  const r = le128(block0, 0) & R_CLAMP;
  const s = le128(block0, 4);
  // Two 16-byte blocks, each with the 2^128 bit: the padded ciphertext, then le64(0) || le64(2).
  let a = ((BigInt(sealed[0]! | (sealed[1]! << 8)) + (1n << 128n)) * r) % P1305;
  a = ((a + (2n << 64n) + (1n << 128n)) * r) % P1305;
  let tag = (a + s) & MASK128;
  for (let i = 2; i < 18; i++, tag >>= 8n) if (Number(tag & 255n) !== sealed[i]) return false;
  return true;
}
