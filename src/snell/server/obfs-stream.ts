/**
 * simple-obfs on a live connection (docs/snell.md §8), for both ends: an unwrapper for the bytes that
 * arrive and a wrapper for the bytes that leave. The server reads an HTTP Upgrade request (GET
 * and Connection: Upgrade, as Go's http.ReadRequest-based server insists) or a fake ClientHello
 * and answers 101 or a fake ServerHello; the client skips those.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TLS_HELLO_DATA_OFFSET, wrapObfs, DEFAULT_OBFS_HOST, type ObfsMode } from '../wire/obfs.js';

export type ObfsRole = 'client' | 'server';

export class ObfsError extends Error {}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 16 * 1024;
const RECORD_CAP = 0x4000;

/** Incoming bytes with the wrapper taken off; `push` returns the Snell bytes now available. */
export class ObfsUnwrapper {
  private buffer = Buffer.alloc(0);
  private stage: 'head' | 'records' | 'raw';
  /** tls: bytes of the current application-data record still to come. */
  private recordLeft = 0;

  constructor(private readonly mode: ObfsMode, private readonly role: ObfsRole) {
    this.stage = mode === 'off' ? 'raw' : 'head';
  }

  push(chunk: Uint8Array): Buffer {
    if (this.stage === 'raw') return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    if (this.stage === 'head') {
      const body = this.mode === 'http' ? this.httpHead() : this.tlsHead();
      if (body === undefined) return Buffer.alloc(0);
      out.push(body);
    }
    if ((this.stage as string) === 'records') out.push(this.records());
    else if ((this.stage as string) === 'raw' && this.buffer.length > 0) {
      out.push(this.buffer);
      this.buffer = Buffer.alloc(0);
    }
    return Buffer.concat(out);
  }

  private httpHead(): Buffer | undefined {
    // Go's http.ReadRequest fails on the request line at once: so does this.
    const expected = this.role === 'server' ? 'GET ' : 'HTTP/';
    const start = this.buffer.toString('latin1', 0, Math.min(this.buffer.length, expected.length));
    if (!expected.startsWith(start)) throw new ObfsError(`http obfs: ${this.role === 'server' ? 'the request is not a GET' : 'the answer is not HTTP'}`);
    const end = this.buffer.indexOf(HEAD_END);
    if (end < 0) {
      if (this.buffer.length > MAX_HEAD) throw new ObfsError('http obfs: no end of the HTTP head within 16 KiB');
      return undefined;
    }
    const head = this.buffer.toString('latin1', 0, end);
    if (this.role === 'server') {
      if (!head.startsWith('GET ')) throw new ObfsError('http obfs: the request is not a GET');
      if (!/\r\nconnection:\s*upgrade\s*(\r\n|$)/i.test(`\r\n${head.split('\r\n').slice(1).join('\r\n')}`)) throw new ObfsError('http obfs: no "Connection: Upgrade" header');
    } else if (!head.startsWith('HTTP/1.1 101')) {
      throw new ObfsError(`http obfs: the server answered "${head.split('\r\n')[0]!.slice(0, 60)}", not 101`);
    }
    const rest = this.buffer.subarray(end + HEAD_END.length);
    this.buffer = Buffer.alloc(0);
    this.stage = 'raw';
    return Buffer.from(rest);
  }

  private tlsHead(): Buffer | undefined {
    if (this.role === 'server') {
      if (this.buffer.length < 5) return undefined;
      if (this.buffer[0] !== 0x16 || this.buffer[1] !== 0x03) throw new ObfsError('tls obfs: the first bytes are not a TLS handshake record');
      const helloEnd = 5 + this.buffer.readUInt16BE(3);
      if (this.buffer.length < helloEnd) return undefined;
      if (helloEnd < TLS_HELLO_DATA_OFFSET) throw new ObfsError('tls obfs: a ClientHello too short to carry data');
      const n = this.buffer.readUInt16BE(140);
      if (TLS_HELLO_DATA_OFFSET + n > helloEnd) throw new ObfsError('tls obfs: the embedded data runs past the ClientHello');
      const data = Buffer.from(this.buffer.subarray(TLS_HELLO_DATA_OFFSET, TLS_HELLO_DATA_OFFSET + n));
      this.buffer = this.buffer.subarray(helloEnd);
      this.stage = 'records';
      return data;
    }
    // The client skips the fake ServerHello (96) and ChangeCipherSpec (6), then one handshake record.
    const skip = 96 + 6;
    if (this.buffer.length < skip + 5) return undefined;
    const length = this.buffer.readUInt16BE(skip + 3);
    if (this.buffer.length < skip + 5 + length) return undefined;
    const data = Buffer.from(this.buffer.subarray(skip + 5, skip + 5 + length));
    this.buffer = this.buffer.subarray(skip + 5 + length);
    this.stage = 'records';
    return data;
  }

  private records(): Buffer {
    const parts: Buffer[] = [];
    for (;;) {
      if (this.recordLeft === 0) {
        if (this.buffer.length < 5) break;
        if (this.buffer[0] !== 0x17 || this.buffer[1] !== 0x03 || this.buffer[2] !== 0x03) throw new ObfsError('tls obfs: expected an application-data record (17 03 03)');
        this.recordLeft = this.buffer.readUInt16BE(3);
        this.buffer = this.buffer.subarray(5);
      }
      const take = Math.min(this.recordLeft, this.buffer.length);
      // An empty record is skipped, not a reason to wait.
      if (this.recordLeft === 0) continue;
      if (take === 0) break;
      parts.push(Buffer.from(this.buffer.subarray(0, take)));
      this.buffer = this.buffer.subarray(take);
      this.recordLeft -= take;
    }
    this.buffer = Buffer.from(this.buffer);
    return Buffer.concat(parts);
  }
}

/** Outgoing bytes with the wrapper put on; the first call carries the handshake. */
export class ObfsWrapper {
  private first = true;

  constructor(private readonly mode: ObfsMode, private readonly role: ObfsRole, private readonly host?: string) {}

  wrap(bytes: Uint8Array): Buffer {
    if (this.mode === 'off') return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const first = this.first;
    this.first = false;
    if (this.role === 'client' && first) return Buffer.from(wrapObfs(bytes, this.mode, this.host ?? DEFAULT_OBFS_HOST[this.mode]));
    if (this.mode === 'http') return first ? Buffer.concat([switchingProtocols(), bytes]) : Buffer.from(bytes);
    if (first) {
      const hello = serverHello();
      const head = bytes.subarray(0, RECORD_CAP);
      return Buffer.concat([hello, Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x16, 0x03, 0x03, head.length >> 8, head.length & 0xff]), head, records(bytes.subarray(head.length))]);
    }
    return records(bytes);
  }
}

function records(bytes: Uint8Array): Buffer {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += RECORD_CAP) {
    const chunk = bytes.subarray(at, at + RECORD_CAP);
    parts.push(Buffer.from([0x17, 0x03, 0x03, chunk.length >> 8, chunk.length & 0xff]), chunk);
  }
  return Buffer.concat(parts);
}

function switchingProtocols(): Buffer {
  const accept = createHash('sha1').update(randomBytes(16)).digest('base64');
  return Buffer.from(
    'HTTP/1.1 101 Switching Protocols\r\nServer: nginx/1.21.6\r\n' +
      `Date: ${new Date().toUTCString()}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    'latin1',
  );
}

/** 96 bytes: a ServerHello record as simple-obfs sends it (16 03 01 00 5b 02 00 00 57 ...). */
function serverHello(): Buffer {
  const time = Math.floor(Date.now() / 1000);
  const hello = Buffer.alloc(96);
  Buffer.from([0x16, 0x03, 0x01, 0x00, 0x5b, 0x02, 0x00, 0x00, 0x57, 0x03, 0x03]).copy(hello, 0);
  hello.writeUInt32BE(time, 11);
  randomBytes(28).copy(hello, 15);
  hello[43] = 0x20;
  randomBytes(32).copy(hello, 44);
  // cipher suite c0 2f, compression 00, extensions length 15: renegotiation_info, session_ticket, ec_point_formats.
  Buffer.from([0xc0, 0x2f, 0x00, 0x00, 0x0f, 0xff, 0x01, 0x00, 0x01, 0x00, 0x00, 0x23, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]).copy(hello, 76);
  return hello;
}
