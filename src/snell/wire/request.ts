/**
 * The client's request, the first plaintext bytes of a stream (docs/snell.md §5):
 *   01 | command | clientIdLen | clientId | [hostLen | host | port16]   (host and port for CONNECT only)
 */
import { DecodeError } from '../../shared/errors.js';
import { utf8, utf8Decoder } from '../../shared/bytes.js';

export const REQUEST_VERSION = 0x01;

export const COMMANDS = { ping: 0x00, connect: 0x01, 'connect-v2': 0x05, udp: 0x06 } as const;
export type SnellCommand = keyof typeof COMMANDS;

export function commandName(code: number): SnellCommand | undefined {
  return (Object.keys(COMMANDS) as SnellCommand[]).find((name) => COMMANDS[name] === code);
}

export function carriesTarget(command: SnellCommand): boolean {
  return command === 'connect' || command === 'connect-v2';
}

export interface SnellRequest {
  command: SnellCommand;
  clientId: Uint8Array;
  /** Domain or IP literal as text, IPv6 without brackets. CONNECT commands only. */
  host?: string;
  port?: number;
}

export function encodeRequest(request: SnellRequest): Uint8Array {
  const clientId = request.clientId;
  if (clientId.length > 255) throw new RangeError(`client id is ${clientId.length} bytes, at most 255`);
  const head = [REQUEST_VERSION, COMMANDS[request.command], clientId.length];
  if (!carriesTarget(request.command)) return Uint8Array.from([...head, ...clientId]);
  const host = utf8.encode(request.host ?? '');
  const port = request.port ?? -1;
  if (host.length < 1 || host.length > 255) throw new RangeError(`host is ${host.length} bytes, expected 1..255`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`port ${port} outside 0..65535`);
  return Uint8Array.from([...head, ...clientId, host.length, ...host, port >> 8, port & 0xff]);
}

export interface DecodedRequest {
  request: SnellRequest;
  /** Offset just past the request: what follows is early data. */
  end: number;
}

export function decodeRequest(bytes: Uint8Array, offset = 0): DecodedRequest {
  const what = 'request';
  const need = (at: number, n: number, field: string): void => {
    if (bytes.length < at + n) throw new DecodeError(what, at, `truncated: ${field} needs ${n} bytes, ${bytes.length - at} left`);
  };
  need(offset, 3, 'version, command and client-id length');
  if (bytes[offset] !== REQUEST_VERSION) {
    throw new DecodeError(what, offset, `version 0x${bytes[offset]!.toString(16).padStart(2, '0')}, expected 0x01`);
  }
  const command = commandName(bytes[offset + 1]!);
  if (!command) throw new DecodeError(what, offset + 1, `unknown command 0x${bytes[offset + 1]!.toString(16).padStart(2, '0')}`);
  const idLen = bytes[offset + 2]!;
  need(offset + 3, idLen, 'client id');
  const clientId = bytes.slice(offset + 3, offset + 3 + idLen);
  let at = offset + 3 + idLen;
  if (!carriesTarget(command)) return { request: { command, clientId }, end: at };
  need(at, 1, 'host length');
  const hostLen = bytes[at]!;
  if (hostLen === 0) throw new DecodeError(what, at, 'empty host');
  need(at + 1, hostLen + 2, 'host and port');
  const host = utf8Decoder.decode(bytes.subarray(at + 1, at + 1 + hostLen));
  at += 1 + hostLen;
  const port = (bytes[at]! << 8) | bytes[at + 1]!;
  return { request: { command, clientId, host, port }, end: at + 2 };
}
