/**
 * Reads classic libpcap captures and pulls out the first client->server bytes of each TCP
 * stream to one port, so they can be replayed against an authenticator exactly as a server
 * would have received them. Only what is needed for that is decoded; anything in the
 * packets we cannot make sense of is skipped, because real captures are full of it.
 */
import { ipText, ipTextUnmapped } from '../../shared/ip.js';
import { InputError } from '../../shared/errors.js';

export interface CapturedStream {
  sourceIp: string;
  sourcePort: number;
  destIp: string;
  destPort: number;
  /** Client->server payload from the start of the stream, contiguous bytes only. */
  bytes: Uint8Array;
  /** Capture timestamp of the stream's first packet, microseconds since the epoch. */
  firstSeenMicros: number;
  /**
   * Whether the client's SYN was captured. Without it the capture may have started mid-stream,
   * and `bytes` may not be the connection's opening.
   */
  synSeen: boolean;
}

interface Segment {
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  flags: number;
  payload: Uint8Array;
}

interface StreamState {
  info: Omit<CapturedStream, 'bytes' | 'synSeen'>;
  order: number;
  isn: number | undefined;
  /** Sequence number of the first payload byte; set by the SYN or else the first data seen. */
  base: number | undefined;
  chunks: { at: number; bytes: Uint8Array }[];
  /** The server has spoken, so anything the client sends later is no longer its opening. */
  done: boolean;
}

const SYN = 0x02;
const ACK = 0x10;
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const hex4 = (b: Uint8Array) => Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, '0')).join(' ');

export interface PcapRead {
  streams: CapturedStream[];
  /**
   * The capture ends inside a record (tcpdump killed mid-write, a copy cut short): where that
   * record starts, and which part of it is cut. The streams are what the records before it hold.
   */
  truncated?: { offset: number; what: 'cut record header' | 'cut packet record' };
}

/** As `readPcap`, but a capture cut inside a record is an InputError naming the byte offset. */
export function readPcapStreams(
  data: Uint8Array,
  port: number,
  opts: { maxBytesPerStream?: number } = {},
): CapturedStream[] {
  const { streams, truncated } = readPcap(data, port, opts);
  if (truncated) throw new InputError(`capture is truncated at byte offset ${truncated.offset} (${truncated.what})`);
  return streams;
}

/**
 * The first client bytes of each stream to `port`. A capture cut short inside its last record
 * keeps the streams of the records before it, and says where it was cut; one cut inside the
 * file header is still an InputError.
 */
export function readPcap(
  data: Uint8Array,
  port: number,
  opts: { maxBytesPerStream?: number } = {},
): PcapRead {
  const max = opts.maxBytesPerStream ?? 65536;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError(`invalid TCP port ${port}`);
  if (!Number.isInteger(max) || max < 1) throw new InputError(`invalid maxBytesPerStream ${max}`);

  const dv = view(data);
  if (data.length < 4) throw new InputError(`not a pcap file (only ${data.length} bytes)`);
  const magic = dv.getUint32(0, false);
  if (magic === 0x0a0d0d0a) {
    throw new InputError(
      'pcapng captures are not supported; convert to classic pcap first with `editcap -F pcap IN OUT` or `tshark -F pcap -r IN -w OUT`',
    );
  }
  const little = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  if (!little && magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) {
    throw new InputError(`not a pcap file (magic ${hex4(data)})`);
  }
  if (data.length < 24) throw new InputError(`capture is truncated at byte offset ${data.length} (in the file header)`);
  // The upper bits of the link type field carry FCS information, not the type.
  const linkType = dv.getUint32(20, little) & 0xffff;
  if (![0, 1, 101, 108, 113, 228, 229, 276].includes(linkType)) {
    throw new InputError(`unsupported pcap link type ${linkType}; supported: Ethernet, Linux cooked (SLL/SLL2), BSD loopback, raw IP`);
  }

  const active = new Map<string, StreamState>();
  const finished: StreamState[] = [];
  let order = 0;
  let truncated: PcapRead['truncated'];
  for (let off = 24; off < data.length; ) {
    if (off + 16 > data.length) {
      truncated = { offset: off, what: 'cut record header' };
      break;
    }
    const inclLen = dv.getUint32(off + 8, little);
    if (off + 16 + inclLen > data.length) {
      truncated = { offset: off, what: 'cut packet record' };
      break;
    }
    const frac = dv.getUint32(off + 4, little);
    const micros = dv.getUint32(off, little) * 1e6 + (nano ? Math.floor(frac / 1000) : frac);
    const seg = decodePacket(data.subarray(off + 16, off + 16 + inclLen), linkType, little);
    off += 16 + inclLen;
    if (!seg) continue;

    const toServer = seg.dstPort === port;
    if (!toServer && (seg.srcPort !== port || seg.payload.length === 0)) continue;
    const [cIp, cPort, sIp] = toServer ? [seg.srcIp, seg.srcPort, seg.dstIp] : [seg.dstIp, seg.dstPort, seg.srcIp];
    const key = `${cIp}|${cPort}|${sIp}`;
    let st = active.get(key);
    const isSyn = toServer && (seg.flags & (SYN | ACK)) === SYN;
    // A SYN with a new ISN is a new connection reusing the 4-tuple; a repeated SYN is a retransmit.
    if (!st || (isSyn && st.isn !== seg.seq)) {
      if (st) finished.push(st);
      const info = { sourceIp: cIp, sourcePort: cPort, destIp: sIp, destPort: port, firstSeenMicros: micros };
      st = { info, order: order++, isn: undefined, base: undefined, chunks: [], done: false };
      active.set(key, st);
    }
    if (!toServer) {
      // Also covers a capture that starts mid-stream with the server talking: the client's
      // next bytes are not its opening, so the stream yields nothing.
      st.done = true;
      continue;
    }
    if (isSyn) {
      st.isn = seg.seq;
      st.base = (seg.seq + 1) >>> 0;
    }
    // Data on a SYN (TCP Fast Open) starts after the sequence number the SYN itself uses.
    const dataSeq = seg.flags & SYN ? (seg.seq + 1) >>> 0 : seg.seq;
    if (seg.payload.length > 0 && !st.done) addChunk(st, dataSeq, seg.payload, max);
  }

  const out: CapturedStream[] = [];
  for (const st of [...finished, ...active.values()].sort((a, b) => a.order - b.order)) {
    const bytes = assemble(st.chunks);
    if (bytes.length > 0) out.push({ ...st.info, bytes, synSeen: st.isn !== undefined });
  }
  return truncated ? { streams: out, truncated } : { streams: out };
}

function addChunk(st: StreamState, seq: number, payload: Uint8Array, max: number): void {
  st.base ??= seq;
  // Signed 32-bit distance from the stream start, so wrap-around and old retransmits both work.
  let at = (seq - st.base) | 0;
  if (at < 0) {
    if (payload.length <= -at) return;
    payload = payload.subarray(-at);
    at = 0;
  }
  if (at >= max) return;
  st.chunks.push({ at, bytes: payload.subarray(0, max - at) });
}

/** Joins chunks from offset 0 for as long as they are contiguous; overlaps keep the first copy's extent. */
function assemble(chunks: { at: number; bytes: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let end = 0;
  for (const c of [...chunks].sort((a, b) => a.at - b.at)) {
    if (c.at > end) break;
    const tail = c.bytes.subarray(end - c.at);
    parts.push(tail);
    end += tail.length;
  }
  return Uint8Array.from(Buffer.concat(parts, end));
}

/** Link layer -> IP packet, or undefined for anything that is not IPv4/IPv6. */
function decodePacket(pkt: Uint8Array, linkType: number, little: boolean): Segment | undefined {
  const dv = view(pkt);
  let etherType: number;
  let at: number;
  switch (linkType) {
    case 1: // Ethernet, possibly with (stacked) 802.1Q / 802.1ad tags
      if (pkt.length < 14) return undefined;
      at = 14;
      etherType = dv.getUint16(12);
      while ((etherType === 0x8100 || etherType === 0x88a8 || etherType === 0x9100) && pkt.length >= at + 4) {
        etherType = dv.getUint16(at + 2);
        at += 4;
      }
      break;
    case 113: // Linux cooked v1
      if (pkt.length < 16) return undefined;
      [etherType, at] = [dv.getUint16(14), 16];
      break;
    case 276: // Linux cooked v2
      if (pkt.length < 20) return undefined;
      [etherType, at] = [dv.getUint16(0), 20];
      break;
    case 0:
    case 108: {
      // The address family is in the writer's byte order for DLT_NULL (which may not be the file's)
      // and network order for DLT_LOOP; AF_INET6 differs per OS (10, 24, 28, 30).
      if (pkt.length < 4) return undefined;
      let fam = dv.getUint32(0, linkType === 0 && little);
      if (fam > 0xffff) fam = dv.getUint32(0, !(linkType === 0 && little));
      etherType = fam === 2 ? 0x0800 : [10, 24, 28, 30].includes(fam) ? 0x86dd : 0;
      at = 4;
      break;
    }
    default: // raw IP: 101 says nothing, 228/229 promise a version but checking the nibble covers both
      if (pkt.length < 1) return undefined;
      etherType = pkt[0]! >> 4 === 4 ? 0x0800 : 0x86dd;
      at = 0;
  }
  const ip = pkt.subarray(at);
  if (etherType === 0x0800) return decodeIPv4(ip);
  if (etherType === 0x86dd) return decodeIPv6(ip);
  return undefined;
}

function decodeIPv4(ip: Uint8Array): Segment | undefined {
  if (ip.length < 20 || ip[0]! >> 4 !== 4) return undefined;
  const dv = view(ip);
  const ihl = (ip[0]! & 0x0f) * 4;
  // Total length 0 shows up for TSO-offloaded packets captured on the sending host.
  const total = dv.getUint16(2) || ip.length;
  if (ihl < 20 || total < ihl || ip[9] !== 6) return undefined;
  if ((dv.getUint16(6) & 0x1fff) !== 0) return undefined; // later fragments carry no TCP header
  // Bound by total length so Ethernet padding/FCS is not taken as payload; use less if the snaplen cut it.
  const body = ip.subarray(ihl, Math.min(total, ip.length));
  return decodeTcp(body, ipText(ip.subarray(12, 16)), ipText(ip.subarray(16, 20)));
}

function decodeIPv6(ip: Uint8Array): Segment | undefined {
  if (ip.length < 40 || ip[0]! >> 4 !== 6) return undefined;
  const dv = view(ip);
  const payloadLen = dv.getUint16(4) || ip.length - 40; // 0 means a jumbogram
  let body = ip.subarray(40, Math.min(40 + payloadLen, ip.length));
  let next = ip[6]!;
  while (next !== 6) {
    if (body.length < 8) return undefined;
    let len: number;
    if (next === 0 || next === 43 || next === 60) len = (body[1]! + 1) * 8;
    else if (next === 51) len = (body[1]! + 2) * 4; // AH counts in 4-byte units
    else if (next === 44) {
      if ((view(body).getUint16(2) & 0xfff8) !== 0) return undefined; // not the first fragment
      len = 8;
    } else return undefined;
    next = body[0]!;
    body = body.subarray(len); // subarray clamps, and a short body then fails the checks above
  }
  return decodeTcp(body, ipTextUnmapped(ip.subarray(8, 24)), ipTextUnmapped(ip.subarray(24, 40)));
}

function decodeTcp(tcp: Uint8Array, srcIp: string, dstIp: string): Segment | undefined {
  if (tcp.length < 20) return undefined;
  const dv = view(tcp);
  const dataOff = (tcp[12]! >> 4) * 4;
  if (dataOff < 20 || dataOff > tcp.length) return undefined;
  return {
    srcIp,
    dstIp,
    srcPort: dv.getUint16(0),
    dstPort: dv.getUint16(2),
    seq: dv.getUint32(4),
    flags: tcp[13]!,
    payload: tcp.subarray(dataOff),
  };
}

