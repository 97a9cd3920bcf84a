import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { FrameReader, MessageBuilder, MessageReader, MAX_SEGMENTS, encodeFrame } from '../../../src/capnp/wire/codec.js';
import { readAuthDecision, readAuthRequest, writeAuthDecision, writeAuthRequest, type AuthDecision, type AuthRequest } from '../../../src/capnp/wire/schema.js';
import { DecodeError } from '../../../src/shared/errors.js';
import { thrownBy } from '../../helpers.js';

// Golden messages written by the official `capnp encode` (and a C++ program for double-far
// pointers): fixtures/capnp/README.md says how each was made.
const fixtures = new URL('../../../fixtures/capnp/', import.meta.url);
const golden: { file: string; type: 'AuthRequest' | 'AuthDecision'; segments: number[]; far: number; doubleFar?: number; value: AuthRequest | AuthDecision }[] =
  JSON.parse(readFileSync(new URL('golden.json', fixtures), 'utf8'));

function frames(bytes: Uint8Array): Uint8Array[][] {
  return new FrameReader().push(bytes);
}

describe('golden messages from the official implementation', () => {
  it.each(golden.map((g) => [g.file, g]))('reads %s', (_name, g) => {
    const [segments] = frames(new Uint8Array(readFileSync(new URL(g.file, fixtures))));
    expect(segments!.map((s) => s.length / 8)).toEqual(g.segments);
    const root = new MessageReader(segments!).root();
    expect(g.type === 'AuthRequest' ? readAuthRequest(root) : readAuthDecision(root)).toEqual(g.value);
  });

  it('writes the single-segment goldens byte for byte', () => {
    for (const g of golden.filter((x) => x.segments.length === 1)) {
      const builder = new MessageBuilder();
      if (g.type === 'AuthRequest') writeAuthRequest(builder.initRoot(0, 6), g.value as AuthRequest);
      else writeAuthDecision(builder.initRoot(1, 3), g.value as AuthDecision);
      const bytes = Buffer.from(readFileSync(new URL(g.file, fixtures)));
      // capnp encode writes null pointers for absent Text; ours writes "" for every field, so only
      // messages with every field set can match exactly.
      if ((g as { nullPointers?: string[] }).nullPointers?.length) continue;
      expect(Buffer.from(builder.frame()).toString('hex'), g.file).toBe(bytes.toString('hex'));
    }
  });
});

describe('framing and reading limits', () => {
  it('reassembles frames split at every byte, and several in one chunk', () => {
    const frame = readFileSync(new URL('request-multi-segment.bin', fixtures));
    const reader = new FrameReader();
    const seen: Uint8Array[][] = [];
    for (const byte of frame) seen.push(...reader.push(Uint8Array.of(byte)));
    expect(seen).toHaveLength(1);
    expect(new FrameReader().push(new Uint8Array(Buffer.concat([frame, frame, frame])))).toHaveLength(3);
  });

  it('refuses a frame announcing 4 GiB or too many segments before buffering it', () => {
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(0, 0);
    huge.writeUInt32LE(0x20000000, 4);
    expect(thrownBy(DecodeError, () => new FrameReader().push(huge)).message).toMatch(/announces more than/);
    const many = Buffer.alloc(8);
    many.writeUInt32LE(MAX_SEGMENTS + 5, 0);
    expect(thrownBy(DecodeError, () => new FrameReader().push(many)).message).toMatch(/segments, at most 511/);
  });

  it('refuses pointers out of bounds and a pointer loop (traversal limit)', () => {
    const outOfBounds = new Uint8Array(16);
    new DataView(outOfBounds.buffer).setUint32(0, 100 << 2, true);
    new DataView(outOfBounds.buffer).setUint32(4, 1, true);
    expect(thrownBy(DecodeError, () => new MessageReader([outOfBounds]).root()).message).toMatch(/out of bounds/);
    // A list of 1000 structs that all point at the same far-away Text: amplification.
    const builder = new MessageBuilder();
    const list = builder.initRoot(0, 1).initStructList(0, 2, 0, 1);
    list[0]!.setText(0, 'x');
    const bytes = builder.frame();
    const [segments] = frames(bytes);
    const root = new MessageReader(segments!, 3).root();
    expect(thrownBy(DecodeError, () => root.structList(0).map((s) => s.text(0))).message).toMatch(/traversal limit/);
  });

  it('charges each zero-sized list element against the traversal limit (no amplification)', () => {
    const words = new Uint8Array(24);
    const view = new DataView(words.buffer);
    view.setUint32(0, 0, true); // root: struct, offset 0, 0 data words, 1 pointer
    view.setUint32(4, 1 << 16, true);
    view.setUint32(8, 1, true); // list pointer, offset 0, inline composite of 0 words (plus its tag)
    view.setUint32(12, (0 << 3) | 7, true);
    view.setUint32(16, (1 << 29) << 2, true); // tag: 2^29 elements of 0 data words and 0 pointers
    view.setUint32(20, 0, true);
    const root = new MessageReader([words]).root();
    expect(thrownBy(DecodeError, () => root.structList(0)).message).toMatch(/traversal limit/);
  });

  it('reassembles a large frame arriving in small chunks without copying it over and over', () => {
    const builder = new MessageBuilder();
    builder.initRoot(0, 1).setText(0, 'x'.repeat(8 * 1024 * 1024));
    const frame = builder.frame();
    const reader = new FrameReader();
    const started = performance.now();
    let frames: Uint8Array[][] = [];
    for (let at = 0; at < frame.length; at += 65536) frames = frames.concat(reader.push(frame.subarray(at, at + 65536)));
    expect(frames).toHaveLength(1);
    // Quadratic copying of 64 MiB in 64 KiB pieces takes minutes; linear, well under a second.
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('reads fields past the end of a shorter struct as defaults', () => {
    const builder = new MessageBuilder();
    builder.initRoot(0, 0);
    const [segments] = frames(builder.frame());
    expect(readAuthDecision(new MessageReader(segments!).root())).toEqual({ action: 'pass', statusCode: 0, upstreamValue: '', redirectLocation: '', responseBody: '' });
  });

  it('encodes a frame table with padding for an even segment count', () => {
    expect(encodeFrame([new Uint8Array(8), new Uint8Array(16)]).length).toBe(16 + 24);
  });
});
