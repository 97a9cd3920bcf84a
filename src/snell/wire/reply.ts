/**
 * The server's first plaintext bytes (docs/snell.md §6): 00 tunnel (upstream data follows at once),
 * 01 PONG, 02 code len message.
 */
import { DecodeError } from '../../shared/errors.js';
import { utf8, utf8Decoder } from '../../shared/bytes.js';

export type ServerReply =
  | { kind: 'tunnel'; data: Uint8Array }
  | { kind: 'pong' }
  | { kind: 'error'; code: number; message: string };

export const REPLY_TUNNEL = 0x00;
export const REPLY_PONG = 0x01;
export const REPLY_ERROR = 0x02;
/** OpenSnell truncates error messages to fit one length byte with room to spare. */
export const MAX_ERROR_MESSAGE = 250;

export function encodeReply(reply: ServerReply): Uint8Array {
  switch (reply.kind) {
    case 'tunnel': {
      const out = new Uint8Array(1 + reply.data.length);
      out.set(reply.data, 1);
      return out;
    }
    case 'pong':
      return Uint8Array.of(REPLY_PONG);
    case 'error': {
      let message = utf8.encode(reply.message);
      if (message.length > MAX_ERROR_MESSAGE) message = message.subarray(0, MAX_ERROR_MESSAGE);
      return Uint8Array.from([REPLY_ERROR, reply.code & 0xff, message.length, ...message]);
    }
  }
}

export function decodeReply(bytes: Uint8Array): ServerReply {
  const what = 'server reply';
  if (bytes.length < 1) throw new DecodeError(what, 0, 'empty');
  switch (bytes[0]) {
    case REPLY_TUNNEL:
      return { kind: 'tunnel', data: bytes.slice(1) };
    case REPLY_PONG:
      return { kind: 'pong' };
    case REPLY_ERROR: {
      if (bytes.length < 3) throw new DecodeError(what, bytes.length, 'truncated error reply: needs code and length');
      const length = bytes[2]!;
      if (bytes.length < 3 + length) throw new DecodeError(what, 3, `truncated error message: ${length} bytes announced, ${bytes.length - 3} present`);
      return { kind: 'error', code: bytes[1]!, message: utf8Decoder.decode(bytes.subarray(3, 3 + length)) };
    }
    default:
      throw new DecodeError(what, 0, `unknown reply type 0x${bytes[0]!.toString(16).padStart(2, '0')}`);
  }
}
