import { describe, expect, it } from 'vitest';
import { randomBytes, randomInt } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { AeadDirection, counterNonce, open, seal, type AeadName } from '../../../src/snell/wire/aead.js';
import { hex } from '../../helpers.js';

// @noble/ciphers is a second, independent AEAD implementation.
const noble = {
  'aes-128-gcm': (key: Uint8Array, nonce: Uint8Array) => gcm(key, nonce),
  'chacha20-poly1305': (key: Uint8Array, nonce: Uint8Array) => chacha20poly1305(key, nonce),
};

describe.each(['aes-128-gcm', 'chacha20-poly1305'] as AeadName[])('%s against @noble/ciphers', (aead) => {
  const keyLength = aead === 'aes-128-gcm' ? 16 : 32;

  it('seals what noble opens and opens what noble seals, for random keys, counters and lengths', () => {
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(keyLength);
      const counter = i < 100 ? i : randomInt(2 ** 47);
      const plaintext = randomBytes(randomInt(0, 600));
      const ours = seal(aead, key, counter, plaintext);
      const theirs = noble[aead](key, counterNonce(counter)).encrypt(plaintext);
      expect(hex(ours)).toBe(hex(theirs));
      expect(hex(open(aead, key, counter, theirs)!)).toBe(hex(plaintext));
    }
  });

  it('rejects a flipped bit, a wrong counter and a short input without throwing', () => {
    const key = randomBytes(keyLength);
    const sealed = seal(aead, key, 3, Buffer.from('hello'));
    const flipped = Uint8Array.from(sealed);
    flipped[0]! ^= 1;
    expect(open(aead, key, 3, flipped)).toBeUndefined();
    expect(open(aead, key, 4, sealed)).toBeUndefined();
    expect(open(aead, key, 3, sealed.subarray(0, 10))).toBeUndefined();
  });
});

describe('the nonce', () => {
  it('is a 12-byte little-endian counter', () => {
    expect(hex(counterNonce(0))).toBe('000000000000000000000000');
    expect(hex(counterNonce(1))).toBe('010000000000000000000000');
    expect(hex(counterNonce(0x0102))).toBe('020100000000000000000000');
    expect(hex(counterNonce(2 ** 48 + 5))).toBe('050000000000010000000000');
  });

  it('steps after every seal and open, failed opens included', () => {
    const key = randomBytes(16);
    const writer = new AeadDirection('aes-128-gcm', key);
    const a = writer.seal(Buffer.from('a'));
    const b = writer.seal(Buffer.from('b'));
    const reader = new AeadDirection('aes-128-gcm', key);
    expect(reader.open(b)).toBeUndefined();
    expect(reader.nextNonce).toBe(1);
    expect(Buffer.from(reader.open(b)!).toString()).toBe('b');
    expect(a.length).toBe(17);
  });
});
