/**
 * The per-user test of a trial scan, shared by the main thread and the scan workers.
 * OpenSnell accepts a user when Open(nonce 0) of the 23-byte header succeeds under the key
 * derived from that user's PSK and the plaintext is 7 bytes starting with 0x04 (spec §9 step 6).
 * The legacy tests find v1-v3 streams, which OpenSnell cannot serve, so they can be named.
 */
import { aeadKey, open } from './aead.js';
import { FRAME_MARKER, HEADER_PLAIN_BYTES, HEADER_SEALED_BYTES } from './frame.js';
import { LENGTH_CHUNK_BYTES } from './legacy.js';
import { SALT_BYTES } from './kdf.js';

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

export function matchDerived(kdfOutput: Uint8Array, first: FirstBytes, detectLegacy: boolean): MatchKind | undefined {
  const plain = open('aes-128-gcm', aeadKey(kdfOutput, 'aes-128-gcm'), 0, first.header);
  if (plain && plain.length === HEADER_PLAIN_BYTES && plain[0] === FRAME_MARKER) return 'v4';
  if (!detectLegacy) return undefined;
  if (open('aes-128-gcm', aeadKey(kdfOutput, 'aes-128-gcm'), 0, first.legacyLength)) return 'legacy-aes';
  if (open('chacha20-poly1305', aeadKey(kdfOutput, 'chacha20-poly1305'), 0, first.legacyLength)) return 'legacy-chacha';
  return undefined;
}
