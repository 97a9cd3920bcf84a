/** readPcapStreams on synthetic captures: link layers, IP versions, TCP reassembly, bad packets. */
import { describe, it, expect } from 'vitest';
import { InputError } from '../../../src/shared/errors.js';
import { readPcapStreams } from '../../../src/snell/wire/pcap.js';
import { cat, conv, eth, ethV4, ipv4, ipv6, pcap, PORT, PSH_ACK, seq, simple, sll, sll2, SYN, T0, tcp, text, u32, type Rec } from './pcap-writer.js';

// ---- synthetic captures -------------------------------------------------------------------

describe('readPcapStreams: synthetic captures', () => {
  it('reads Ethernet/IPv4 and stops at the server reply', () => {
    const c = conv('10.0.0.1', 40000, '10.0.0.2', 1000);
    const data = pcap(seq([c.syn(), c.synAck(), c.ack(), c.c(0, 'hello'), c.c(5, ' world'), c.s('reply'), c.c(11, 'late')]));
    expect(readPcapStreams(data, PORT).map(simple)).toEqual([
      { sourceIp: '10.0.0.1', sourcePort: 40000, destIp: '10.0.0.2', destPort: PORT, bytes: 'hello world', firstSeenMicros: T0, synSeen: true },
    ]);
  });

  it('reads Linux cooked (SLL) IPv6 through extension headers', () => {
    const opts = new Uint8Array(7); // 1 + 7 = 8 bytes: a minimal hop-by-hop / dest-options header
    const ip = (body: Uint8Array, src: string, dst: string) => ipv6(src, dst, body, [[0, opts], [60, opts]]);
    const frames = [
      ip(tcp(50000, PORT, 77, SYN), '2001:db8::1', '2001:db8:0:0:1::2'),
      ip(tcp(50000, PORT, 78, PSH_ACK, 'v6 bytes'), '2001:db8::1', '2001:db8:0:0:1::2'),
    ];
    const data = pcap(
      frames.map((f, i) => ({ micros: T0 + i, frame: sll(f, 0x86dd) })),
      { linkType: 113 },
    );
    const [s] = readPcapStreams(data, PORT);
    expect(s && simple(s)).toMatchObject({ sourceIp: '2001:db8::1', destIp: '2001:db8::1:0:0:2', bytes: 'v6 bytes' });
  });

  it('walks an IPv6 first-fragment header and skips later fragments', () => {
    const first = ipv6('::1', '::1', tcp(50001, PORT, 10, PSH_ACK, 'frag0'), [[44, Uint8Array.of(0, 0, 1, 0, 0, 0, 1)]]);
    const later = ipv6('::1', '::1', tcp(50001, PORT, 15, PSH_ACK, 'later'), [[44, Uint8Array.of(0, 0, 9, 0, 0, 0, 1)]]);
    const data = pcap(seq([first, later], (f) => eth(f, 0x86dd)));
    expect(readPcapStreams(data, PORT).map((s) => text(s.bytes))).toEqual(['frag0']);
  });

  it('skips 802.1Q / QinQ VLAN tags', () => {
    const c = conv('192.168.1.5', 40001, '192.168.1.1', 1);
    const data = pcap(seq([c.syn(), c.c(0, 'tagged')], (f) => eth(f, 0x0800, [100, 200])));
    expect(readPcapStreams(data, PORT).map((s) => text(s.bytes))).toEqual(['tagged']);
  });

  it('reassembles out-of-order, retransmitted and overlapping segments, contiguous bytes only', () => {
    const c = conv('10.0.0.1', 40002, '10.0.0.2', 123456);
    const frames = [c.syn(), c.c(6, '6789'), c.c(0, '012'), c.c(0, '012'), c.c(2, '234567'), c.c(20, 'gap!'), c.c(-1, '')];
    expect(readPcapStreams(pcap(seq(frames)), PORT).map((s) => text(s.bytes))).toEqual(['0123456789']);
  });

  it('handles sequence numbers wrapping past 2^32', () => {
    const c = conv('10.0.0.1', 40003, '10.0.0.2', 0xfffffffd);
    const frames = [c.syn(), c.c(4, 'EF'), c.c(0, 'ABCD'), c.c(1, 'BC')];
    expect(readPcapStreams(pcap(seq(frames)), PORT).map((s) => text(s.bytes))).toEqual(['ABCDEF']);
  });

  it('ignores Ethernet padding and FCS after the IP packet', () => {
    const c = conv('10.0.0.1', 40018, '10.0.0.2', 1);
    const padded = (f: Uint8Array) => cat(ethV4(f), new Uint8Array(Math.max(0, 60 - 14 - f.length)), Uint8Array.of(1, 2, 3, 4));
    expect(readPcapStreams(pcap(seq([c.syn(), c.c(0, 'hi'), c.c(2, '!')], padded)), PORT).map((s) => text(s.bytes))).toEqual([
      'hi!',
    ]);
  });

  it('takes data carried on the SYN itself (TCP Fast Open)', () => {
    const c = conv('10.0.0.1', 40019, '10.0.0.2', 4242);
    const synData = ipv4('10.0.0.1', '10.0.0.2', tcp(40019, PORT, 4242, SYN, 'tfo:'));
    expect(readPcapStreams(pcap(seq([synData, c.c(4, 'rest')])), PORT).map((s) => text(s.bytes))).toEqual(['tfo:rest']);
  });

  it('starts at the first data segment when the SYN was not captured', () => {
    const c = conv('10.0.0.1', 40004, '10.0.0.2', 500);
    const frames = [c.c(3, 'def'), c.c(6, 'ghi'), c.c(0, 'abc')]; // earlier bytes arrive late: ignored
    expect(readPcapStreams(pcap(seq(frames)), PORT).map((s) => [text(s.bytes), s.synSeen])).toEqual([['defghi', false]]);
  });

  it('omits streams without client payload, including server-speaks-first ones', () => {
    const a = conv('10.0.0.1', 40005, '10.0.0.2', 1);
    const b = conv('10.0.0.3', 40006, '10.0.0.2', 1);
    const frames = [a.syn(), a.synAck(), a.ack(), b.syn(), b.s('banner'), b.c(0, 'after banner')];
    expect(readPcapStreams(pcap(seq(frames)), PORT)).toEqual([]);
  });

  it('returns two interleaved streams in order of their first packet', () => {
    const a = conv('10.0.0.1', 40007, '10.0.0.9', 100);
    const b = conv('10.0.0.2', 40008, '10.0.0.9', 200);
    const frames = [a.syn(), b.syn(), b.c(0, 'bee'), a.c(0, 'ay'), b.s('ok'), b.c(3, 'x'), a.c(2, 'ay')];
    const got = readPcapStreams(pcap(seq(frames)), PORT).map((s) => [s.sourceIp, text(s.bytes), s.firstSeenMicros]);
    expect(got).toEqual([
      ['10.0.0.1', 'ayay', T0],
      ['10.0.0.2', 'bee', T0 + 1000],
    ]);
  });

  it('treats a new SYN on the same 4-tuple as a new stream, but not a retransmitted SYN', () => {
    const first = conv('10.0.0.1', 40009, '10.0.0.2', 1000);
    const again = conv('10.0.0.1', 40009, '10.0.0.2', 900000);
    const frames = [first.syn(), first.syn(), first.c(0, 'one'), first.s('r'), again.syn(), again.c(0, 'two')];
    expect(readPcapStreams(pcap(seq(frames)), PORT).map((s) => [text(s.bytes), s.firstSeenMicros])).toEqual([
      ['one', T0],
      ['two', T0 + 4000],
    ]);
  });

  it('ignores other ports and caps at maxBytesPerStream', () => {
    const c = conv('10.0.0.1', 40010, '10.0.0.2', 1);
    const other = ipv4('10.0.0.1', '10.0.0.2', tcp(40011, 9001, 5, PSH_ACK, 'other port'));
    const frames = [other, c.syn(), c.c(0, 'abcdef'), c.c(6, 'ghij')];
    expect(readPcapStreams(pcap(seq(frames)), PORT, { maxBytesPerStream: 8 }).map((s) => text(s.bytes))).toEqual(['abcdefgh']);
    expect(() => readPcapStreams(pcap([]), PORT, { maxBytesPerStream: 0 })).toThrow(InputError);
    expect(() => readPcapStreams(pcap([]), 70000)).toThrow(InputError);
  });

  it('reads nanosecond and big-endian headers, in every combination', () => {
    const c = conv('10.0.0.1', 40012, '10.0.0.2', 1);
    for (const nano of [false, true]) {
      for (const bigEndian of [false, true]) {
        const data = pcap(seq([c.syn(), c.c(0, 'ts')]), { nano, bigEndian });
        expect(readPcapStreams(data, PORT).map((s) => [text(s.bytes), s.firstSeenMicros])).toEqual([['ts', T0]]);
      }
    }
  });

  it('reads SLL2, BSD null/loop, and raw IP link types; reports IPv4-mapped IPv6 as IPv4', () => {
    const p4 = ipv4('10.1.1.1', '10.1.1.2', tcp(40013, PORT, 9, PSH_ACK, 'x'));
    const p6 = ipv6('::ffff:10.1.1.3', '::ffff:10.1.1.2', tcp(40014, PORT, 9, PSH_ACK, 'y'));
    const leFam = (f: number) => Uint8Array.of(f, 0, 0, 0);
    const cases: [number, Uint8Array[], boolean?][] = [
      [276, [sll2(p4, 0x0800), sll2(p6, 0x86dd)]],
      [0, [cat(leFam(2), p4), cat(leFam(30), p6)]], // macOS AF_INET6 = 30, little-endian host
      [0, [cat(u32(2), p4), cat(u32(10), p6)], true], // big-endian file from a big-endian host
      [0, [cat(u32(2), p4), cat(u32(28), p6)]], // family order differs from the file's
      [108, [cat(u32(2), p4), cat(u32(24), p6)]],
      [101, [p4, p6]],
      [228, [p4]],
      [229, [p6]],
    ];
    for (const [linkType, frames, bigEndian] of cases) {
      const data = pcap(seq(frames, (f) => f), { linkType, bigEndian: bigEndian ?? false });
      const got = readPcapStreams(data, PORT).map((s) => `${s.sourceIp} ${text(s.bytes)}`);
      expect([linkType, got]).toEqual([linkType, linkType === 228 ? ['10.1.1.1 x'] : linkType === 229 ? ['10.1.1.3 y'] : ['10.1.1.1 x', '10.1.1.3 y']]);
    }
  });

  it('uses what was captured of snaplen-cut packets and skips malformed or irrelevant ones', () => {
    const c = conv('10.0.0.1', 40015, '10.0.0.2', 1);
    const cut = ethV4(c.c(0, 'abcdefgh'));
    const badIhl = ethV4(c.c(0, 'zz'));
    badIhl[14] = 0x43; // IHL 12 bytes < 20
    const laterFrag = ethV4(ipv4('10.0.0.1', '10.0.0.2', tcp(40015, PORT, 1, PSH_ACK, 'frag'), 0x0010));
    const records: Rec[] = [
      { micros: T0, frame: ethV4(c.syn()) },
      { micros: T0 + 1, frame: new Uint8Array(5) }, // too short for Ethernet
      { micros: T0 + 2, frame: badIhl },
      { micros: T0 + 3, frame: laterFrag },
      { micros: T0 + 4, frame: ethV4(ipv4('10.0.0.1', '10.0.0.2', new Uint8Array(10))) }, // short TCP header
      { micros: T0 + 5, frame: eth(new Uint8Array(30), 0x0806) }, // ARP
      { micros: T0 + 6, frame: cut.subarray(0, cut.length - 3), origLen: cut.length },
    ];
    expect(readPcapStreams(pcap(records), PORT).map((s) => text(s.bytes))).toEqual(['abcde']);
  });

  it('never throws anything but InputError on truncated or corrupted input', () => {
    const c = conv('2001:db8::5', 40016, '2001:db8::6', 1);
    const good = pcap(seq([c.syn(), c.c(0, 'hello'), c.s('x')], (f) => eth(f, 0x86dd)));
    for (let n = 0; n <= good.length; n++) {
      try {
        readPcapStreams(good.subarray(0, n), PORT);
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
      }
    }
    for (let i = 24; i < good.length; i++) {
      for (const v of [0x00, 0xff, 0x0f]) {
        const bad = Uint8Array.from(good);
        bad[i] = v;
        try {
          readPcapStreams(bad, PORT);
        } catch (e) {
          expect(e).toBeInstanceOf(InputError);
        }
      }
    }
  });
});
