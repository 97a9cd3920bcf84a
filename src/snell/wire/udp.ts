/**
 * UDP-over-TCP datagrams, one per frame after the `01 06 00` request and the server's `00` (docs/snell.md §6):
 *   client -> server: 01 | hostLen | host | port16 | payload     (domain)
 *                     01 | 00 | 04 | ip4 | port16 | payload      (IPv4)
 *                     01 | 00 | 06 | ip16 | port16 | payload     (IPv6)
 *   server -> client: 04 | ip4 | port16 | payload,  06 | ip16 | port16 | payload
 */
import { isIP } from 'node:net';
import { ipText, ipToBytes } from '../../shared/ip.js';
import { DecodeError } from '../../shared/errors.js';
import { utf8, utf8Decoder } from '../../shared/bytes.js';

export interface UdpDatagram {
  host: string;
  port: number;
  payload: Uint8Array;
}

function portBytes(port: number): number[] {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`port ${port} outside 0..65535`);
  return [port >> 8, port & 0xff];
}

export function encodeClientDatagram({ host, port, payload }: UdpDatagram): Uint8Array {
  const family = isIP(host);
  let address: number[];
  if (family === 0) {
    const name = utf8.encode(host);
    if (name.length < 1 || name.length > 255) throw new RangeError(`host is ${name.length} bytes, expected 1..255`);
    address = [name.length, ...name];
  } else {
    address = [0, family === 4 ? 4 : 6, ...ipToBytes(host)];
  }
  return Uint8Array.from([0x01, ...address, ...portBytes(port), ...payload]);
}

export function decodeClientDatagram(bytes: Uint8Array): UdpDatagram {
  const what = 'UDP datagram';
  if (bytes.length < 2) throw new DecodeError(what, 0, 'truncated');
  if (bytes[0] !== 0x01) throw new DecodeError(what, 0, `command 0x${bytes[0]!.toString(16)}, expected 0x01`);
  const hostLen = bytes[1]!;
  if (hostLen > 0) {
    if (bytes.length < 2 + hostLen + 2) throw new DecodeError(what, 2, 'truncated host or port');
    const host = utf8Decoder.decode(bytes.subarray(2, 2 + hostLen));
    const at = 2 + hostLen;
    return { host, port: (bytes[at]! << 8) | bytes[at + 1]!, payload: bytes.slice(at + 2) };
  }
  return decodeAddressed(bytes, 2, what);
}

export function encodeServerDatagram({ host, port, payload }: UdpDatagram): Uint8Array {
  const family = isIP(host);
  if (family === 0) throw new RangeError(`server datagrams carry an IP address, not ${host}`);
  return Uint8Array.from([family === 4 ? 4 : 6, ...ipToBytes(host), ...portBytes(port), ...payload]);
}

export function decodeServerDatagram(bytes: Uint8Array): UdpDatagram {
  return decodeAddressed(bytes, 0, 'UDP reply datagram');
}

function decodeAddressed(bytes: Uint8Array, offset: number, what: string): UdpDatagram {
  if (bytes.length < offset + 1) throw new DecodeError(what, offset, 'truncated');
  const family = bytes[offset];
  const size = family === 4 ? 4 : family === 6 ? 16 : 0;
  if (size === 0) throw new DecodeError(what, offset, `address family 0x${family!.toString(16)}, expected 04 or 06`);
  const end = offset + 1 + size + 2;
  if (bytes.length < end) throw new DecodeError(what, offset + 1, 'truncated address or port');
  return {
    host: ipText(bytes.subarray(offset + 1, offset + 1 + size)),
    port: (bytes[end - 2]! << 8) | bytes[end - 1]!,
    payload: bytes.slice(end),
  };
}
