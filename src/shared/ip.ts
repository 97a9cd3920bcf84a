/** IP addresses between text and bytes, printed the way Node's net module prints them. */
import { isIP, isIPv4, SocketAddress } from 'node:net';

export function ipToBytes(ip: string): Uint8Array {
  const family = isIP(ip);
  if (family === 4) return Uint8Array.from(ip.split('.').map(Number));
  if (family !== 6) throw new RangeError(`not an IP address: ${ip}`);
  const [left = '', right] = ip.split('::');
  const head = ipv6Words(left);
  const tail = right === undefined ? [] : ipv6Words(right);
  const words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  return Uint8Array.from(words.flatMap((w) => [w >> 8, w & 0xff]));
}

function ipv6Words(part: string): number[] {
  const words: number[] = [];
  for (const piece of part === '' ? [] : part.split(':')) {
    if (piece.includes('.')) {
      const [a = 0, b = 0, c = 0, d = 0] = ipToBytes(piece);
      words.push((a << 8) | b, (c << 8) | d);
    } else {
      words.push(parseInt(piece, 16));
    }
  }
  return words;
}

/** 4 bytes as dotted IPv4, 16 as IPv6 in libuv's compressed form. */
export function ipText(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** True for ::ffff:a.b.c.d, which servers treat as the IPv4 address. */
export function isIpv4Mapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes.subarray(0, 10).every((x) => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/** As servers see an address: IPv4-mapped IPv6 is the IPv4 address (Go's net.IP.String()). */
export function ipTextUnmapped(bytes: Uint8Array): string {
  return ipText(isIpv4Mapped(bytes) ? bytes.subarray(12) : bytes);
}

/** One spelling per address (`2001:0db8::1` and `2001:db8::1` are one client); other text lower-cased. */
export function canonicalIp(ip: string): string {
  // Dotted IPv4 as node:net accepts it (no leading zeros) is already its one spelling: the
  // common case per connection, without the byte round trip.
  if (isIPv4(ip)) return ip;
  return isIP(ip) === 0 ? ip.toLowerCase() : ipTextUnmapped(ipToBytes(ip));
}

/** `count` addresses counting up from `first` (198.51.100.10, .11, ...); non-IP text gets a suffix. */
export function countUpAddresses(first: string, count: number): string[] {
  if (isIP(first) === 0) return Array.from({ length: count }, (_, i) => (i === 0 ? first : `${first}-${i}`));
  const start = ipToBytes(first);
  return Array.from({ length: count }, (_, i) => {
    const bytes = Uint8Array.from(start);
    let carry = i;
    for (let at = bytes.length - 1; at >= 0 && carry > 0; at--) {
      const sum = bytes[at]! + carry;
      bytes[at] = sum & 0xff;
      carry = sum >> 8;
    }
    return ipText(bytes);
  });
}

/**
 * An IPv6 address as Rust's `Ipv6Addr` Display prints it: lower-case hex, the longest run of two
 * or more zero groups (the first of equal runs) as `::`, and `::ffff:a.b.c.d` for IPv4-mapped.
 */
export function rustIpv6Text(bytes: Uint8Array): string {
  if (isIpv4Mapped(bytes)) return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = { at: 0, length: 0 };
  for (let i = 0; i < 8; ) {
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > best.length) best = { at: i, length: end - i };
    i = end === i ? i + 1 : end;
  }
  const hex = (part: number[]) => part.map((g) => g.toString(16)).join(':');
  return best.length > 1 ? `${hex(groups.slice(0, best.at))}::${hex(groups.slice(best.at + best.length))}` : hex(groups);
}

/**
 * `IP:PORT` or `[IPv6]:PORT` as Rust's `SocketAddr` Display prints it (what Proksi sends as the
 * client address): `[2001:DB8:0::1]:0443` becomes `[2001:db8::1]:443`. Undefined when the text is
 * not an address and a port from 0 to 65535.
 */
export function socketAddressText(text: string): string | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  if (match[1] !== undefined) return isIP(match[1]) === 6 ? `[${rustIpv6Text(ipToBytes(match[1]))}]:${port}` : undefined;
  return isIP(match[2]!) === 4 ? `${match[2]}:${port}` : undefined;
}

/** `IP:PORT`, `[IPv6]:PORT` or a bare address; anything else (a socket path) has no address. */
export function addressOf(clientIp: string): string | undefined {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(clientIp);
  const host = bracketed ? bracketed[1]! : /^([^:]+):\d+$/.exec(clientIp)?.[1] ?? clientIp;
  return isIP(host) === 0 ? undefined : canonicalIp(host);
}

/** `host:port`, an IPv6 host in brackets, as Go and Node print an address. */
export function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
