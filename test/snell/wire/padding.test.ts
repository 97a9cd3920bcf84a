/**
 * First-frame padding (padding.ts): the bit-count shape OpenSnell's `makeV4BitCountPadding`
 * guarantees, the balance `makeV4Padding` aims for, and frames so padded still authenticating.
 * Randomness is a seeded generator where a property is checked statistically, so every run
 * sees the same numbers.
 */
import { describe, expect, it } from 'vitest';
import { balancedPadding, bitCountPadding, cryptoPaddingRandom, type PaddingRandom } from '../../../src/snell/wire/padding.js';
import { buildFirstPacket } from '../../../src/snell/wire/first-packet.js';
import { openFrame, HEADER_SEALED_BYTES } from '../../../src/snell/wire/frame.js';
import { AeadDirection, aeadKey, TAG_BYTES } from '../../../src/snell/wire/aead.js';
import { deriveSnellKey, selectKdf } from '../../../src/snell/wire/kdf.js';
import { trialAuthenticate } from '../../../src/snell/model.js';
import { utf8 } from '../../../src/shared/bytes.js';

/** xorshift32: reproducible, good enough to place bits. */
function seeded(seed: number, fill = 0): PaddingRandom {
  let state = seed >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  return {
    bytes: (n) => new Uint8Array(n).fill(fill),
    unit: () => next() / 2 ** 32,
    index: (below) => Math.floor((next() / 2 ** 32) * below),
  };
}

const ones = (bytes: Uint8Array): number => bytes.reduce((sum, b) => sum + [...b.toString(2)].filter((c) => c === '1').length, 0);

describe('bitCountPadding (OpenSnell makeV4BitCountPadding)', () => {
  it('32 bytes with 77 one-bits has exactly 77 (OpenSnell\'s own test case)', () => {
    const padding = bitCountPadding(32, 77);
    expect(padding.length).toBe(32);
    expect(ones(padding)).toBe(77);
  });

  it('exactly the asked count at every edge: none, all, just under and over half', () => {
    for (const [length, count] of [[0, 0], [1, 0], [1, 8], [4, 15], [4, 17], [300, 1], [300, 2399], [511, 2500]] as const) {
      const padding = bitCountPadding(length, count, seeded(length * 7 + count));
      expect(padding.length).toBe(length);
      expect(ones(padding)).toBe(count);
    }
  });

  it('refuses a count that does not fit', () => {
    expect(() => bitCountPadding(2, 17)).toThrow(RangeError);
    expect(() => bitCountPadding(2, -1)).toThrow(RangeError);
  });

  it('spreads the bits over every position alike (2,000 draws of 10 ones in 32 bits)', () => {
    const random = seeded(12345);
    const hits = new Array<number>(32).fill(0);
    for (let draw = 0; draw < 2000; draw++) {
      const padding = bitCountPadding(4, 10, random);
      for (let bit = 0; bit < 32; bit++) if (padding[bit >> 3]! & (1 << (bit & 7))) hits[bit]!++;
    }
    // Expected 625 per position; the seeded draws make this exact run repeatable.
    for (const count of hits) expect(Math.abs(count - 625)).toBeLessThan(100);
  });
});

describe('balancedPadding (OpenSnell makeV4Padding)', () => {
  it('zeros at least ones: padding and payload reach the 1.6 (+ U[0,0.1)) ones/zeros ratio', () => {
    const payload = new Uint8Array(64).fill(0x0f); // 256 ones, 256 zeros: ratio 1
    const random = seeded(7);
    const padding = balancedPadding(payload, 300, random);
    const target = 1.6 + seeded(7).unit() / 10;
    const totalBits = 8 * (300 + 64);
    expect(ones(padding)).toBe(Math.trunc(totalBits * (target / (target + 1)) - 256));
  });

  it('ones outnumbering zeros: the 0.4 (+ U[0,0.1)) ratio', () => {
    const payload = new Uint8Array(64).map((_, i) => (i % 2 ? 0x1f : 0x0f)); // 288 ones, 224 zeros: ratio 1.29
    const padding = balancedPadding(payload, 300, seeded(9));
    const target = 0.4 + seeded(9).unit() / 10;
    expect(ones(padding)).toBe(Math.trunc(8 * 364 * (target / (target + 1)) - 288));
  });

  it('counts payload ones over whole 4-byte groups only, zeros over all of it (both writers\' quirk)', () => {
    const payload = new Uint8Array(35).fill(0x0f); // ones counted over 32 bytes: 128; zeros 280 - 128 = 152
    const padding = balancedPadding(payload, 256, seeded(3));
    const target = 1.6 + seeded(3).unit() / 10;
    expect(ones(padding)).toBe(Math.trunc(8 * (256 + 35) * (target / (target + 1)) - 128));
  });

  it('random bytes when the payload ratio is outside (0.5, 1.6) or the count does not fit', () => {
    expect(balancedPadding(new Uint8Array(64), 100, seeded(1, 0xaa))).toEqual(new Uint8Array(100).fill(0xaa)); // ratio 0
    expect(balancedPadding(new Uint8Array(64).fill(0x7f), 100, seeded(1, 0xaa))).toEqual(new Uint8Array(100).fill(0xaa)); // ratio 7
    // 1 byte of padding cannot carry the ones a 64-byte payload would need.
    expect(balancedPadding(new Uint8Array(64).fill(0x0f), 1, seeded(1, 0xaa))).toEqual(Uint8Array.of(0xaa));
  });

  it('crypto randomness: indices stay in range, units in [0, 1)', () => {
    const random = cryptoPaddingRandom();
    for (let i = 0; i < 5000; i++) {
      const index = random.index(7);
      expect(index >= 0 && index < 7 && Number.isInteger(index)).toBe(true);
      const unit = random.unit();
      expect(unit >= 0 && unit < 1).toBe(true);
    }
  });
});

const kdf = await selectKdf();

describe('first frames padded in each style', () => {
  const request = { command: 'connect-v2' as const, clientId: new Uint8Array(0), host: 'example.com', port: 443 };
  const early = new Uint8Array(200).fill(0x41);

  /** The opened first frame: padding as generated, and the sealed payload it was balanced against. */
  async function open(psk: string, wire: Uint8Array) {
    const direction = new AeadDirection('aes-128-gcm', aeadKey(await deriveSnellKey(kdf, utf8.encode(psk), wire.subarray(0, 16)), 'aes-128-gcm'));
    const frame = openFrame(direction, wire, 16);
    const sealedStart = 16 + HEADER_SEALED_BYTES + frame.header.paddingLen;
    const sealed = Uint8Array.from(wire.subarray(sealedStart, sealedStart + frame.header.payloadLen + TAG_BYTES));
    // Undo the interleave on the wire copy of the sealed payload.
    const wirePadding = wire.subarray(16 + HEADER_SEALED_BYTES, sealedStart);
    for (let i = 0; i < Math.min(wirePadding.length, sealed.length); i += 2) sealed[i] = wirePadding[i]!;
    return { frame, sealed };
  }

  /** Where the ones/(ones+zeros) share of padding and payload may lie, given the truncation. */
  function share(paddingOnes: number, sealed: Uint8Array, paddingLen: number): [number, number] {
    const total = 8 * (paddingLen + sealed.length);
    const payloadOnes = ones(sealed.subarray(0, sealed.length & ~3));
    return [(paddingOnes + payloadOnes) / total, (paddingOnes + payloadOnes + 1) / total];
  }

  it('opensnell (the default): the frame authenticates with snell-auth, and its bits are balanced', async () => {
    const users = [{ name: 'alice', psk: 'alice-psk' }, { name: 'bob', psk: 'bob-psk' }];
    for (let run = 0; run < 5; run++) {
      const packet = await buildFirstPacket({ psk: 'bob-psk', kdf, request, early });
      expect(await trialAuthenticate(users, packet.wire, { kdf })).toMatchObject({ ok: true, user: 'bob' });
      const { frame, sealed } = await open('bob-psk', packet.wire);
      const [low, high] = share(ones(frame.padding), sealed, frame.padding.length);
      // t/(t+1) for t in [1.6, 1.7) or [0.4, 0.5): the two bands makeV4Padding aims at.
      const inBand = (a: number, b: number): boolean => low < b && high > a;
      expect(inBand(1.6 / 2.6, 1.7 / 2.7) || inBand(0.4 / 1.4, 0.5 / 1.5)).toBe(true);
    }
  });

  it('random: the frame authenticates, and its bits sit near half, in neither band', async () => {
    const packet = await buildFirstPacket({ psk: 'alice-psk', kdf, request, early, paddingStyle: 'random', padding: 400 });
    expect(await trialAuthenticate([{ name: 'alice', psk: 'alice-psk' }], packet.wire, { kdf })).toMatchObject({ ok: true, user: 'alice' });
    const { frame } = await open('alice-psk', packet.wire);
    // 3,200 random bits: half, with a standard deviation of 0.9 %; the bands start 11 points away.
    expect(Math.abs(ones(frame.padding) / 3200 - 0.5)).toBeLessThan(0.08);
  });
});
