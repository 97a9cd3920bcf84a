/** readPcapStreams and readPcap on whole files: what is refused, a cut file, and real tcpdump captures. */
import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { readPcap, readPcapStreams } from '../../../src/snell/wire/pcap.js';
import { conv, enc, ethV4, inputError, pcap, PORT, seq, text } from './pcap-writer.js';

describe('readPcapStreams: file-level errors', () => {
  it('rejects pcapng with conversion advice', () => {
    const msg = inputError(() => readPcapStreams(Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0), PORT));
    expect(msg).toMatch(/pcapng.*not supported/);
    expect(msg).toContain('editcap -F pcap');
    expect(msg).toContain('tshark -F pcap');
  });

  it('rejects files that are not pcap', () => {
    expect(inputError(() => readPcapStreams(enc.encode('GET / HTTP/1.1\r\n'), PORT))).toBe('not a pcap file (magic 47 45 54 20)');
    expect(inputError(() => readPcapStreams(new Uint8Array(2), PORT))).toMatch(/not a pcap file/);
  });

  it('rejects unsupported link types by number', () => {
    expect(inputError(() => readPcapStreams(pcap([], { linkType: 105 }), PORT))).toMatch(/link type 105/);
  });

  it('reports a file cut in a record header or body with its byte offset', () => {
    const c = conv('10.0.0.1', 40017, '10.0.0.2', 1);
    const data = pcap(seq([c.syn(), c.c(0, 'abc')]));
    const second = 24 + 16 + ethV4(c.syn()).length;
    expect(inputError(() => readPcapStreams(data.subarray(0, second + 10), PORT))).toMatch(
      new RegExp(`truncated at byte offset ${second}\\b`),
    );
    expect(inputError(() => readPcapStreams(data.subarray(0, data.length - 1), PORT))).toMatch(
      new RegExp(`truncated at byte offset ${second}\\b`),
    );
    expect(inputError(() => readPcapStreams(data.subarray(0, 20), PORT))).toMatch(/truncated at byte offset 20/);
    expect(readPcapStreams(data.subarray(0, second), PORT)).toEqual([]); // a clean cut between records is fine
  });

  it('readPcap keeps the streams before a last record cut short, and says where it was cut', () => {
    const a = conv('10.0.0.1', 40018, '10.0.0.2', 1);
    const b = conv('10.0.0.3', 40019, '10.0.0.2', 1);
    const data = pcap(seq([a.syn(), a.c(0, 'intact'), b.syn(), b.c(0, 'cut off')]));
    const last = data.length - 16 - ethV4(b.c(0, 'cut off')).length;
    const intact = readPcap(data, PORT);
    expect(intact.truncated).toBeUndefined();
    expect(intact.streams.map((s) => text(s.bytes))).toEqual(['intact', 'cut off']);
    for (const [cut, what] of [[last + 20, 'cut packet record'], [last + 7, 'cut record header']] as const) {
      const read = readPcap(data.subarray(0, cut), PORT);
      expect(read.truncated).toEqual({ offset: last, what });
      // b's SYN is whole, its data is not: only a's bytes come out.
      expect(read.streams.map((s) => [s.sourceIp, text(s.bytes)])).toEqual([['10.0.0.1', 'intact']]);
    }
    expect(inputError(() => readPcap(data.subarray(0, 20), PORT))).toMatch(/truncated at byte offset 20/);
  });
});

// ---- real captures made with tcpdump on lo (see fixtures/pcap/README.md) -------------------

describe('readPcapStreams: real tcpdump captures', () => {
  const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  const expected = [
    { sourceIp: '127.0.0.1', sourcePort: 46337, destIp: '127.0.0.1', destPort: 47391, bytes: 'snell-ipv4-hello\n', synSeen: true },
    { sourceIp: '::1', sourcePort: 35273, destIp: '::1', destPort: 47391, bytes: `snell-ipv6:${bin}`, synSeen: true },
    { sourceIp: '127.0.0.2', sourcePort: 43341, destIp: '127.0.0.1', destPort: 47391, bytes: 'second-ipv4-from-127.0.0.2', synSeen: true },
  ];

  for (const file of ['loopback-ipv4-ipv6.pcap', 'loopback-any-sll2.pcap']) {
    it(`reads ${file}`, () => {
      const data = readFileSync(new URL(`../../../fixtures/pcap/${file}`, import.meta.url));
      const streams = readPcapStreams(data, 47391);
      expect(streams.map(({ firstSeenMicros: _, ...s }) => ({ ...s, bytes: text(s.bytes) }))).toEqual(expected);
      const times = streams.map((s) => s.firstSeenMicros);
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      expect(times[0]).toBeGreaterThan(1.6e15); // a plausible microsecond epoch, not seconds or nanoseconds
      expect(readPcapStreams(data, 47392)).toEqual([]);
    });
  }
});
