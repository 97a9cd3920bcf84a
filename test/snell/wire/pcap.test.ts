import { readFileSync } from 'node:fs';
import { thrownBy } from '../../helpers.js';
import { describe, it, expect } from 'vitest';
import { InputError } from '../../../src/shared/errors.js';
import { readPcap, readPcapStreams, type CapturedStream } from '../../../src/snell/wire/pcap.js';

// ---- a tiny test-only pcap writer -------------------------------------------------------

const enc = new TextEncoder();
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

const SYN = 0x02;
const ACK = 0x10;
const PSH_ACK = 0x18;
const SYN_ACK = SYN | ACK;
const PORT = 9000;

interface Rec {
  micros: number;
  frame: Uint8Array;
  origLen?: number;
}

function pcap(records: Rec[], opts: { linkType?: number; bigEndian?: boolean; nano?: boolean } = {}): Uint8Array {
  const le = !opts.bigEndian;
  const out = Buffer.alloc(24);
  const w32 = (buf: Buffer, v: number, at: number) => (le ? buf.writeUInt32LE(v, at) : buf.writeUInt32BE(v, at));
  const w16 = (buf: Buffer, v: number, at: number) => (le ? buf.writeUInt16LE(v, at) : buf.writeUInt16BE(v, at));
  w32(out, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(out, 2, 4);
  w16(out, 4, 6);
  w32(out, 262144, 16);
  w32(out, opts.linkType ?? 1, 20);
  const parts: Uint8Array[] = [out];
  for (const r of records) {
    const h = Buffer.alloc(16);
    const sec = Math.floor(r.micros / 1e6);
    const frac = r.micros % 1e6;
    w32(h, sec, 0);
    w32(h, opts.nano ? frac * 1000 + 999 : frac, 4); // +999ns checks that nanoseconds are floored
    w32(h, r.frame.length, 8);
    w32(h, r.origLen ?? r.frame.length, 12);
    parts.push(h, r.frame);
  }
  return cat(...parts);
}

function tcp(sport: number, dport: number, seq: number, flags: number, payload: Uint8Array | string = ''): Uint8Array {
  const data = typeof payload === 'string' ? enc.encode(payload) : payload;
  return cat(u16(sport), u16(dport), u32(seq >>> 0), u32(0), Uint8Array.of(5 << 4, flags), u16(65535), u32(0), data);
}

const v4 = (ip: string) => Uint8Array.from(ip.split('.').map(Number));
function v6(ip: string): Uint8Array {
  // A dotted IPv4 tail (as in ::ffff:10.1.1.3) becomes two hex groups.
  ip = ip.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const [head = '', tail] = ip.split('::');
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  return cat(...all.map(u16));
}

function ipv4(src: string, dst: string, body: Uint8Array, fragWord = 0x4000): Uint8Array {
  return cat(Uint8Array.of(0x45, 0), u16(20 + body.length), u16(1), u16(fragWord), Uint8Array.of(64, 6), u16(0), v4(src), v4(dst), body);
}

/** ext: extension headers as [type, bytes-after-next-header] pairs, walked in order before TCP. */
function ipv6(src: string, dst: string, body: Uint8Array, ext: [number, Uint8Array][] = []): Uint8Array {
  const types = [...ext.map(([t]) => t), 6];
  const exts = ext.map(([, b], i) => cat(Uint8Array.of(types[i + 1]!), b));
  const payload = cat(...exts, body);
  return cat(u32(0x60000000), u16(payload.length), Uint8Array.of(types[0]!, 64), v6(src), v6(dst), payload);
}

const eth = (ip: Uint8Array, etherType: number, vlans: number[] = []) =>
  cat(new Uint8Array(12), ...vlans.map((id) => cat(u16(0x8100), u16(id))), u16(etherType), ip);
const ethV4 = (ip: Uint8Array) => eth(ip, 0x0800);
const sll = (ip: Uint8Array, proto: number) => cat(u16(0), u16(772), u16(6), new Uint8Array(8), u16(proto), ip);
const sll2 = (ip: Uint8Array, proto: number) => cat(u16(proto), u16(0), u32(1), u16(772), Uint8Array.of(0, 6), new Uint8Array(8), ip);

/** A client/server conversation over IPv4 or IPv6 producing raw IP packets. */
function conv(client: string, cport: number, server: string, isn: number, sisn = 5000) {
  const ip = client.includes(':') ? ipv6 : ipv4;
  return {
    syn: () => ip(client, server, tcp(cport, PORT, isn, SYN)),
    synAck: () => ip(server, client, tcp(PORT, cport, sisn, SYN_ACK)),
    /** Client data at `rel` bytes after the start of the stream. */
    c: (rel: number, data: string | Uint8Array) => ip(client, server, tcp(cport, PORT, isn + 1 + rel, PSH_ACK, data)),
    ack: () => ip(client, server, tcp(cport, PORT, isn + 1, ACK)),
    s: (data: string) => ip(server, client, tcp(PORT, cport, sisn + 1, PSH_ACK, data)),
  };
}

const T0 = 1_700_000_000_000_000;
/** Ethernet/IPv4 records one millisecond apart. */
const seq = (frames: Uint8Array[], wrap = ethV4) => frames.map((f, i) => ({ micros: T0 + i * 1000, frame: wrap(f) }));
const simple = (s: CapturedStream) => ({ ...s, bytes: text(s.bytes) });

const inputError = (fn: () => unknown): string => thrownBy(InputError, fn).message;

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
