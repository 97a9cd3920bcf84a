/**
 * The per-user test of a trial scan, shared by the main thread and the scan workers.
 * OpenSnell accepts a user when Open(nonce 0) of the 23-byte header succeeds under the key
 * derived from that user's PSK and the plaintext is 7 bytes starting with 0x04 (docs/snell.md §9 step 6).
 *
 * Almost every user of a scan is a miss, so the miss must be cheap: the first AES keystream
 * block is computed in JavaScript (quick-ciphers.ts: ~0.6 µs, where creating a node:crypto
 * cipher costs ~2.3 µs), and node:crypto's full Open only runs when the decrypted marker is
 * 0x04, for 1 user in 256 on a miss. The decision is still exactly OpenSnell's: marker 0x04
 * and a verified tag.
 *
 * The legacy test finds v1-v3 streams, which OpenSnell cannot serve, so they can be named. It
 * runs on the derivations the v4 scan already made, after that scan has missed, so a miss
 * costs one Argon2id per user whatever the test, and the time a server would spend ends where
 * the v4 scan ends. Real legacy writers send a first length of 1..0x3fff, so a tag is only
 * checked when the decrypted length is in that range (1 user in 4 for each AEAD).
 */
import { aeadKey, open } from '../wire/aead.js';
import { FRAME_MARKER, HEADER_PLAIN_BYTES, HEADER_SEALED_BYTES } from '../wire/frame.js';
import { LEGACY_MAX_PAYLOAD, LENGTH_CHUNK_BYTES } from '../wire/legacy.js';
import { SALT_BYTES } from '../wire/kdf.js';
import { aes128CounterBlock, aes128Schedule, chachaFirstKeystreamWord, chachaPolyTwoByteTagMatches, gcmTwoByteTagMatches } from './quick-ciphers.js';

export const TRIAL_BYTES = SALT_BYTES + HEADER_SEALED_BYTES;

export type MatchKind = 'v4' | 'legacy-aes' | 'legacy-chacha';

export interface FirstBytes {
  /** The first TRIAL_BYTES bytes, of which the rest are views: what a scan worker is sent. */
  bytes: Uint8Array;
  salt: Uint8Array;
  /** The sealed v4 header, bytes 16..39. */
  header: Uint8Array;
  /** The same bytes read as a legacy length chunk, 16..34. */
  legacyLength: Uint8Array;
}

/** The trial's bytes, copied out of `blob` once (the caller may reuse its buffer). */
export function splitFirstBytes(blob: Uint8Array): FirstBytes {
  return viewFirstBytes(blob.slice(0, TRIAL_BYTES));
}

/** Views into `bytes`, which the caller owns (a scan worker's copy of a request). */
export function viewFirstBytes(bytes: Uint8Array): FirstBytes {
  return {
    bytes,
    salt: bytes.subarray(0, SALT_BYTES),
    header: bytes.subarray(SALT_BYTES, TRIAL_BYTES),
    legacyLength: bytes.subarray(SALT_BYTES, SALT_BYTES + LENGTH_CHUNK_BYTES),
  };
}

const schedule = new Int32Array(44);
const block = new Int32Array(4);

/**
 * GCM with a 96-bit nonce encrypts its first block with counter block nonce || 00000002. The
 * AES-128 key is the first 16 bytes of the derivation at `at` (aeadKey's, without its view).
 */
export function gcmFirstKeystreamWord(kdfOutput: Uint8Array, at = 0): number {
  aes128CounterBlock(aes128Schedule(kdfOutput, schedule, at), 2, block);
  return block[0]!;
}

/** The first length of a legacy chunk, decrypted with two keystream bytes. */
function plausibleLegacyLength(sealed: Uint8Array, key0: number, key1: number): boolean {
  const length = ((sealed[0]! ^ key0) << 8) | (sealed[1]! ^ key1);
  return length >= 1 && length <= LEGACY_MAX_PAYLOAD;
}

/**
 * OpenSnell's test (docs/snell.md §9 step 6): the header opens at nonce 0 and starts with 0x04.
 * `keystream`: the first keystream word, when the caller has it.
 */
export function matchesV4(kdfOutput: Uint8Array, first: FirstBytes, keystream = gcmFirstKeystreamWord(kdfOutput)): boolean {
  if ((first.header[0]! ^ (keystream >>> 24)) !== FRAME_MARKER) return false;
  const plain = open('aes-128-gcm', aeadKey(kdfOutput, 'aes-128-gcm'), 0, first.header);
  return plain !== undefined && plain.length === HEADER_PLAIN_BYTES && plain[0] === FRAME_MARKER;
}

/**
 * authkit's own test: does the same derivation open a legacy v1-v3 length chunk? The derivation
 * is the KDF_OUTPUT_BYTES at `at` of `kdfOutput` (a scan's kept derivations, without a view per
 * user): AES-128-GCM keys with its first 16 bytes, ChaCha20-Poly1305 with all 32 (aeadKey).
 */
export function matchesLegacy(kdfOutput: Uint8Array, first: FirstBytes, keystream?: number, at = 0): LegacyFind['kind'] | undefined {
  const sealed = first.legacyLength;
  const aesWord = keystream ?? gcmFirstKeystreamWord(kdfOutput, at);
  if (plausibleLegacyLength(sealed, aesWord >>> 24, (aesWord >>> 16) & 255)) {
    if (gcmTwoByteTagMatches(aes128Schedule(kdfOutput, schedule, at), sealed)) return 'legacy-aes';
  }
  const chacha = chachaFirstKeystreamWord(kdfOutput, at);
  if (plausibleLegacyLength(sealed, chacha & 255, (chacha >>> 8) & 255) && chachaPolyTwoByteTagMatches(kdfOutput, sealed, at)) return 'legacy-chacha';
  return undefined;
}

/**
 * Which test a scan runs: OpenSnell's alone, or OpenSnell's and then, if no user matched,
 * authkit's legacy test on the same derivations.
 */
export type ScanTest = 'v4' | 'v4-then-legacy';

export interface LegacyFind {
  index: number;
  kind: Exclude<MatchKind, 'v4'>;
  derived: Uint8Array;
}

export interface SliceResult {
  index: number;
  kind?: MatchKind;
  trials: number;
  /** The matching user's KDF output (the server keys its reader with it instead of deriving again). */
  derived?: Uint8Array;
  /** monotonicMs() when the v4 test ended: what a server would have spent ends there. */
  v4EndedAt?: number;
  /** `v4-then-legacy` after a miss: the first user of the slice whose PSK opens a legacy stream. */
  legacy?: LegacyFind;
}
