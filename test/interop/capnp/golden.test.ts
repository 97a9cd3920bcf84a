/**
 * Keeps the golden messages in fixtures/capnp/ honest: the framing of every .bin is consistent, and
 * (when Debian's capnproto is installed) `capnp encode` still makes exactly these bytes from the
 * .txt files and `capnp decode` still reads them as recorded in golden.json.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { capnpAvailable } from './peers.js';

const DIR = fileURLToPath(new URL('../../../fixtures/capnp/', import.meta.url));
const file = (name: string) => readFileSync(`${DIR}${name}`);
interface Golden {
  file: string;
  text: string;
  type: 'AuthRequest' | 'AuthDecision';
  encodeArgs?: string[];
  bytes: number;
  segments: number[];
  far: number;
  doubleFar: number;
  value: Record<string, unknown>;
  nullPointers: string[];
  capnpDecode: string;
}
const golden: Golden[] = JSON.parse(file('golden.json').toString());
const available = capnpAvailable();
const capnp = (args: string[], input: Buffer) =>
  execFileSync('capnp', args, { cwd: DIR, env: { ...process.env, PWD: DIR }, input, stdio: ['pipe', 'pipe', 'pipe'] });

describe('golden Cap\'n Proto messages (fixtures/capnp)', () => {
  it('covers single-segment, multi-segment and double-far messages of both types', () => {
    expect(golden.map((g) => g.file).sort()).toEqual([
      'decision-block.bin', 'decision-double-far.bin', 'decision-multi-segment.bin', 'decision-pass.bin', 'decision-redirect.bin',
      'request-double-far.bin', 'request-long-value.bin', 'request-multi-segment.bin', 'request-no-headers.bin', 'request-typical.bin',
    ]);
    expect(golden.filter((g) => g.segments.length > 1 && g.far > 0).length).toBeGreaterThanOrEqual(4);
    expect(golden.filter((g) => g.doubleFar > 0).map((g) => g.type).sort()).toEqual(['AuthDecision', 'AuthRequest']);
  });

  it.each(golden)('$file: the segment table matches the file', (g) => {
    const bin = file(g.file);
    expect(bin.length).toBe(g.bytes);
    const count = bin.readUInt32LE(0) + 1;
    const sizes = Array.from({ length: count }, (_, i) => bin.readUInt32LE(4 + 4 * i));
    expect(sizes).toEqual(g.segments);
    expect(((4 + 4 * count + 7) & ~7) + 8 * sizes.reduce((a, b) => a + b, 0)).toBe(bin.length);
  });

  it('the wrong-ID schema differs from the real one only in its file ID', () => {
    const real = file('external_auth.capnp').toString();
    const wrong = file('external_auth_wrong_id.capnp').toString();
    expect(real).toContain('@0xfce43831b44a3a13;');
    expect(wrong.replace(/^# .*\n/gm, '')).toBe(real.replace(/^# .*\n/gm, '').replace('@0xfce43831b44a3a13;', '@0xfce43831b44a3a14;'));
  });

  describe.skipIf(!available)('with the official capnp tool', () => {
    it.each(golden.filter((g) => g.encodeArgs))('$file: capnp encode of $text gives these bytes', (g) => {
      expect(capnp(g.encodeArgs!, file(g.text)).equals(file(g.file))).toBe(true);
    });

    it.each(golden)('$file: capnp decode reads what golden.json records', (g) => {
      expect(capnp(['decode', 'external_auth.capnp', g.type], file(g.file)).toString().trim()).toBe(g.capnpDecode);
    });
  });
});
