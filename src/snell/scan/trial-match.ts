/**
 * The per-user test of a trial scan, shared by the main thread and the scan workers.
 * OpenSnell accepts a user when Open(nonce 0) of the 23-byte header succeeds under the key
 * derived from that user's PSK and the plaintext is 7 bytes starting with 0x04 (docs/snell.md §9 step 6).
 *
 * Almost every user of a scan is a miss, and a failed Open through node:crypto costs ~5 µs
 * (it throws). So the first keystream block is computed once (one AES block, no exception)
 * and the full Open only runs when the decrypted marker is 0x04, for 1 user in 256 on a miss.
 * The decision is still exactly OpenSnell's: marker 0x04 and a verified tag.
 *
 * The legacy test finds v1-v3 streams, which OpenSnell cannot serve, so they can be named. It
 * runs only after OpenSnell's scan has missed, so it never changes what that scan costs, and it
 * uses the same keystream trick: real legacy writers send a first length of 1..0x3fff, so the
 * tag is only checked when the decrypted length is in that range.
 */
import { createCipheriv } from 'node:crypto';
import { aeadKey, open } from '../wire/aead.js';
import { FRAME_MARKER, HEADER_PLAIN_BYTES, HEADER_SEALED_BYTES } from '../wire/frame.js';
import { LEGACY_MAX_PAYLOAD, LENGTH_CHUNK_BYTES } from '../wire/legacy.js';
import { SALT_BYTES, type KdfBackend } from '../wire/kdf.js';
import type { UserStore } from '../users.js';

export const TRIAL_BYTES = SALT_BYTES + HEADER_SEALED_BYTES;

export type MatchKind = 'v4' | 'legacy-aes' | 'legacy-chacha';

export interface FirstBytes {
  salt: Uint8Array;
  /** The sealed v4 header, bytes 16..39. */
  header: Uint8Array;
  /** The same bytes read as a legacy length chunk, 16..34. */
  legacyLength: Uint8Array;
}

export function splitFirstBytes(blob: Uint8Array): FirstBytes {
  return {
    salt: blob.slice(0, SALT_BYTES),
    header: blob.slice(SALT_BYTES, TRIAL_BYTES),
    legacyLength: blob.slice(SALT_BYTES, SALT_BYTES + LENGTH_CHUNK_BYTES),
  };
}

// GCM with a 96-bit nonce encrypts its first block with counter block nonce || 00000002.
const GCM_FIRST_COUNTER = Buffer.from('00000000000000000000000000000002', 'hex');
// ChaCha20-Poly1305 encrypts from block counter 1; node's chacha20 IV is counter(LE32) || nonce.
const CHACHA_FIRST_COUNTER = Buffer.from('01000000000000000000000000000000', 'hex');

function gcmFirstKeystream(key: Uint8Array): Buffer {
  return createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(GCM_FIRST_COUNTER);
}

function chachaFirstKeystream(key: Uint8Array): Buffer {
  return createCipheriv('chacha20', key, CHACHA_FIRST_COUNTER).update(Buffer.alloc(2));
}

function plausibleLegacyLength(sealed: Uint8Array, keystream: Uint8Array): boolean {
  const length = ((sealed[0]! ^ keystream[0]!) << 8) | (sealed[1]! ^ keystream[1]!);
  return length >= 1 && length <= LEGACY_MAX_PAYLOAD;
}

/** OpenSnell's test (docs/snell.md §9 step 6): the header opens at nonce 0 and starts with 0x04. */
export function matchesV4(kdfOutput: Uint8Array, first: FirstBytes): boolean {
  const aesKey = aeadKey(kdfOutput, 'aes-128-gcm');
  if ((first.header[0]! ^ gcmFirstKeystream(aesKey)[0]!) !== FRAME_MARKER) return false;
  const plain = open('aes-128-gcm', aesKey, 0, first.header);
  return plain !== undefined && plain.length === HEADER_PLAIN_BYTES && plain[0] === FRAME_MARKER;
}

/** authkit's own test: does the same derivation open a legacy v1-v3 length chunk? */
export function matchesLegacy(kdfOutput: Uint8Array, first: FirstBytes): MatchKind | undefined {
  const aesKey = aeadKey(kdfOutput, 'aes-128-gcm');
  if (plausibleLegacyLength(first.legacyLength, gcmFirstKeystream(aesKey)) && open('aes-128-gcm', aesKey, 0, first.legacyLength)) return 'legacy-aes';
  const chachaKey = aeadKey(kdfOutput, 'chacha20-poly1305');
  if (plausibleLegacyLength(first.legacyLength, chachaFirstKeystream(chachaKey)) && open('chacha20-poly1305', chachaKey, 0, first.legacyLength)) {
    return 'legacy-chacha';
  }
  return undefined;
}

/** Which test a scan runs: OpenSnell's, or the legacy one authkit adds after a miss. */
export type ScanTest = 'v4' | 'legacy';

export function testDerived(kdfOutput: Uint8Array, first: FirstBytes, test: ScanTest): MatchKind | undefined {
  if (test === 'v4') return matchesV4(kdfOutput, first) ? 'v4' : undefined;
  return matchesLegacy(kdfOutput, first);
}

export interface SliceResult {
  index: number;
  kind?: MatchKind;
  trials: number;
  /** The matching user's KDF output (the server keys its reader with it instead of deriving again). */
  derived?: Uint8Array;
}

/**
 * Tries users start..end-1 in order and stops at the first match, or as soon as `stop` is set
 * by another worker of the same scan. Serves the serial path and every scan worker.
 */
export async function scanSlice(
  kdf: KdfBackend, store: UserStore, first: FirstBytes, test: ScanTest, start: number, end: number, stop?: Int32Array,
): Promise<SliceResult> {
  let trials = 0;
  for (let i = start; i < end; i++) {
    if (stop && Atomics.load(stop, 0) !== 0) break;
    const psk = store.psk(i);
    // The synchronous call where there is one: an await per user costs more than the open.
    const out = kdf.deriveSync?.(psk, first.salt) ?? (await kdf.derive(psk, first.salt));
    trials++;
    const kind = testDerived(out, first, test);
    if (kind) {
      if (stop) Atomics.store(stop, 0, 1);
      return { index: i, kind, trials, derived: out };
    }
  }
  return { index: -1, trials };
}
