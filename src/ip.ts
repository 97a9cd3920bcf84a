/** IP addresses between text and bytes, printed the way Node's net module prints them. */
import { isIP, SocketAddress } from 'node:net';

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
