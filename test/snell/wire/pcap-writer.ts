/**
 * A tiny test-only pcap writer for readPcapStreams' tests: link layers, IPv4 and IPv6 (with
 * extension headers), TCP segments and whole client/server conversations.
 */
import { thrownBy } from '../../helpers.js';
import { InputError } from '../../../src/shared/errors.js';
import type { CapturedStream } from '../../../src/snell/wire/pcap.js';

export const enc = new TextEncoder();
export const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
export const cat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
export const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
export const u32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

export const SYN = 0x02;
export const ACK = 0x10;
export const PSH_ACK = 0x18;
export const SYN_ACK = SYN | ACK;
export const PORT = 9000;

export interface Rec {
  micros: number;
  frame: Uint8Array;
  origLen?: number;
}

export function pcap(records: Rec[], opts: { linkType?: number; bigEndian?: boolean; nano?: boolean } = {}): Uint8Array {
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

export function tcp(sport: number, dport: number, seq: number, flags: number, payload: Uint8Array | string = ''): Uint8Array {
  const data = typeof payload === 'string' ? enc.encode(payload) : payload;
  return cat(u16(sport), u16(dport), u32(seq >>> 0), u32(0), Uint8Array.of(5 << 4, flags), u16(65535), u32(0), data);
}

export const v4 = (ip: string) => Uint8Array.from(ip.split('.').map(Number));
export function v6(ip: string): Uint8Array {
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

export function ipv4(src: string, dst: string, body: Uint8Array, fragWord = 0x4000): Uint8Array {
  return cat(Uint8Array.of(0x45, 0), u16(20 + body.length), u16(1), u16(fragWord), Uint8Array.of(64, 6), u16(0), v4(src), v4(dst), body);
}

/** ext: extension headers as [type, bytes-after-next-header] pairs, walked in order before TCP. */
export function ipv6(src: string, dst: string, body: Uint8Array, ext: [number, Uint8Array][] = []): Uint8Array {
  const types = [...ext.map(([t]) => t), 6];
  const exts = ext.map(([, b], i) => cat(Uint8Array.of(types[i + 1]!), b));
  const payload = cat(...exts, body);
  return cat(u32(0x60000000), u16(payload.length), Uint8Array.of(types[0]!, 64), v6(src), v6(dst), payload);
}

export const eth = (ip: Uint8Array, etherType: number, vlans: number[] = []) =>
  cat(new Uint8Array(12), ...vlans.map((id) => cat(u16(0x8100), u16(id))), u16(etherType), ip);
export const ethV4 = (ip: Uint8Array) => eth(ip, 0x0800);
export const sll = (ip: Uint8Array, proto: number) => cat(u16(0), u16(772), u16(6), new Uint8Array(8), u16(proto), ip);
export const sll2 = (ip: Uint8Array, proto: number) => cat(u16(proto), u16(0), u32(1), u16(772), Uint8Array.of(0, 6), new Uint8Array(8), ip);

/** A client/server conversation over IPv4 or IPv6 producing raw IP packets. */
export function conv(client: string, cport: number, server: string, isn: number, sisn = 5000) {
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

export const T0 = 1_700_000_000_000_000;
/** Ethernet/IPv4 records one millisecond apart. */
export const seq = (frames: Uint8Array[], wrap = ethV4) => frames.map((f, i) => ({ micros: T0 + i * 1000, frame: wrap(f) }));
export const simple = (s: CapturedStream) => ({ ...s, bytes: text(s.bytes) });

export const inputError = (fn: () => unknown): string => thrownBy(InputError, fn).message;
