/**
 * The JavaScript block operations of the trial scan against two independent implementations:
 * node:crypto (OpenSSL) and @noble/ciphers, on random keys, and the legacy test against the
 * node:crypto AEAD opens it replaced.
 */
import { describe, expect, it } from 'vitest';
import { createCipheriv, randomBytes } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import { aes128CounterBlock, aes128Schedule, chachaFirstKeystreamWord, chachaPolyTwoByteTagMatches, gcmTwoByteTagMatches } from '../../../src/snell/scan/quick-ciphers.js';
import { matchesLegacy, splitFirstBytes, type MatchKind } from '../../../src/snell/scan/trial-match.js';
import { aeadKey, open } from '../../../src/snell/wire/aead.js';
import { LEGACY_MAX_PAYLOAD } from '../../../src/snell/wire/legacy.js';

const ROUNDS = 2000;
const zeroNonce = new Uint8Array(12);

describe('AES-128 in JavaScript', () => {
  it('encrypts GCM counter blocks as OpenSSL does, on random keys', () => {
    const out = new Int32Array(4);
    for (let n = 0; n < ROUNDS; n++) {
      const key = randomBytes(16);
      const counter = n % 4;
      aes128CounterBlock(aes128Schedule(key), counter, out);
      const block = Buffer.alloc(16);
      block.writeUInt32BE(counter, 12);
      const reference = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false).update(block);
      expect([...out]).toEqual([0, 4, 8, 12].map((at) => reference.readInt32BE(at)));
    }
  });
});

describe('two-byte AEAD tags in JavaScript', () => {
  it('accepts every AES-128-GCM seal of @noble/ciphers and rejects any flipped bit', () => {
    for (let n = 0; n < ROUNDS; n++) {
      const key = randomBytes(16);
      const sealed = gcm(key, zeroNonce).encrypt(randomBytes(2));
      const schedule = aes128Schedule(key);
      expect(gcmTwoByteTagMatches(schedule, sealed)).toBe(true);
      const flipped = Uint8Array.from(sealed);
      flipped[n % 18]! ^= 1 << (n % 8);
      expect(gcmTwoByteTagMatches(schedule, flipped)).toBe(false);
    }
  });

  it('accepts every ChaCha20-Poly1305 seal of @noble/ciphers and rejects any flipped bit', () => {
    for (let n = 0; n < ROUNDS; n++) {
      const key = randomBytes(32);
      const sealed = chacha20poly1305(key, zeroNonce).encrypt(randomBytes(2));
      expect(chachaPolyTwoByteTagMatches(key, sealed)).toBe(true);
      const flipped = Uint8Array.from(sealed);
      flipped[n % 18]! ^= 1 << (n % 8);
      expect(chachaPolyTwoByteTagMatches(key, flipped)).toBe(false);
    }
  });

  it('computes the ChaCha20 keystream of block 1 as OpenSSL does', () => {
    const counterOne = Buffer.from('01000000000000000000000000000000', 'hex');
    for (let n = 0; n < ROUNDS; n++) {
      const key = randomBytes(32);
      expect(chachaFirstKeystreamWord(key) >>> 0).toBe(createCipheriv('chacha20', key, counterOne).update(Buffer.alloc(4)).readUInt32LE(0));
    }
  });
});

/** The legacy test as it was: node:crypto opens, tried when the decrypted length is plausible. */
function legacyByOpen(kdfOutput: Uint8Array, sealed: Uint8Array): MatchKind | undefined {
  const plausible = (ks: Uint8Array): boolean => {
    const length = ((sealed[0]! ^ ks[0]!) << 8) | (sealed[1]! ^ ks[1]!);
    return length >= 1 && length <= LEGACY_MAX_PAYLOAD;
  };
  const aesKey = aeadKey(kdfOutput, 'aes-128-gcm');
  const aesKs = createCipheriv('aes-128-ecb', aesKey, null).setAutoPadding(false).update(Buffer.from('00000000000000000000000000000002', 'hex'));
  if (plausible(aesKs) && open('aes-128-gcm', aesKey, 0, sealed)) return 'legacy-aes';
  const chachaKey = aeadKey(kdfOutput, 'chacha20-poly1305');
  const chachaKs = createCipheriv('chacha20', chachaKey, Buffer.from('01000000000000000000000000000000', 'hex')).update(Buffer.alloc(2));
  if (plausible(chachaKs) && open('chacha20-poly1305', chachaKey, 0, sealed)) return 'legacy-chacha';
  return undefined;
}

describe('the legacy test', () => {
  it('reaches the verdict of node:crypto opens on real legacy chunks, wrong keys and random bytes', () => {
    const seen = new Set<string>();
    for (let n = 0; n < ROUNDS; n++) {
      const derived = randomBytes(32);
      const length = Buffer.alloc(2);
      length.writeUInt16BE([1, 7, 300, LEGACY_MAX_PAYLOAD, LEGACY_MAX_PAYLOAD + 1, 0][n % 6]!);
      const sealedBy = n % 3 === 0 ? gcm(derived.subarray(0, 16), zeroNonce) : n % 3 === 1 ? chacha20poly1305(derived, zeroNonce) : undefined;
      const chunk = sealedBy ? sealedBy.encrypt(length) : randomBytes(18);
      const blob = new Uint8Array(64);
      blob.set(chunk, 16);
      const key = n % 7 === 0 ? randomBytes(32) : derived;
      const expected = legacyByOpen(key, chunk);
      expect(matchesLegacy(key, splitFirstBytes(blob))).toBe(expected);
      seen.add(String(expected));
    }
    expect([...seen].sort()).toEqual(['legacy-aes', 'legacy-chacha', 'undefined']);
  });

  it('reads each derivation in place, at its offset in one packed buffer as a scan keeps them, with the same verdicts', () => {
    const users = 300;
    const packed = new Uint8Array(32 * users);
    const blob = new Uint8Array(64);
    const chunkFor = (derived: Uint8Array, n: number): Uint8Array =>
      n % 3 === 0 ? gcm(derived.subarray(0, 16), zeroNonce).encrypt(Uint8Array.of(0, 9)) : n % 3 === 1 ? chacha20poly1305(derived, zeroNonce).encrypt(Uint8Array.of(1, 2)) : randomBytes(18);
    for (let n = 0; n < 30; n++) {
      packed.set(randomBytes(packed.length));
      const user = (n * 37) % users;
      const at = 32 * user;
      blob.set(chunkFor(packed.subarray(at, at + 32), n), 16);
      const first = splitFirstBytes(blob);
      const expected = legacyByOpen(packed.subarray(at, at + 32), first.legacyLength);
      // Random bytes carry no tag that verifies (one chance in 2^128).
      expect(expected).toBe(n % 3 === 0 ? 'legacy-aes' : n % 3 === 1 ? 'legacy-chacha' : undefined);
      expect(matchesLegacy(packed, first, undefined, at)).toBe(expected);
      // Every other user of the buffer: the verdict of its own copy.
      for (const other of [0, users - 1, (user + 1) % users]) {
        if (other === user) continue;
        expect(matchesLegacy(packed, first, undefined, 32 * other)).toBe(matchesLegacy(packed.slice(32 * other, 32 * other + 32), first));
      }
    }
  });
});
