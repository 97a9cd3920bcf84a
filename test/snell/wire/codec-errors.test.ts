import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { DecodeError } from '../../../src/shared/errors.js';
import { AeadDirection } from '../../../src/snell/wire/aead.js';
import { decodeFrameHeader, openFrame, sealFrame } from '../../../src/snell/wire/frame.js';
import { openLegacyChunk, sealLegacyChunk } from '../../../src/snell/wire/legacy.js';
import { decodeRequest, encodeRequest } from '../../../src/snell/wire/request.js';
import { decodeReply } from '../../../src/snell/wire/reply.js';
import { decodeClientDatagram, decodeServerDatagram, encodeServerDatagram } from '../../../src/snell/wire/udp.js';
import { openQuicEnvelope, sealQuicEnvelope } from '../../../src/snell/wire/quic.js';
import { stripHttp, stripObfs, stripTls, wrapHttp, wrapTls } from '../../../src/snell/wire/obfs.js';
import { fromHex, hex, thrownBy } from '../../helpers.js';

const decodeError = (fn: () => unknown): DecodeError => thrownBy(DecodeError, fn);

describe('decoders name what is wrong and where, and never throw a raw RangeError', () => {
  const key = randomBytes(16);

  it('v4 frames: truncated header, truncated body, bad tag, bad marker, zero chunk with padding', () => {
    const frame = sealFrame(new AeadDirection('aes-128-gcm', key), Buffer.from('payload'), randomBytes(10));
    expect(decodeError(() => openFrame(new AeadDirection('aes-128-gcm', key), frame.subarray(0, 20), 0)).message).toMatch(/truncated.*offset 0/);
    expect(decodeError(() => openFrame(new AeadDirection('aes-128-gcm', key), frame.subarray(0, 30), 0)).offset).toBe(23);
    expect(decodeError(() => openFrame(new AeadDirection('aes-128-gcm', randomBytes(16)), frame, 0)).reason).toMatch(/does not authenticate/);
    expect(decodeError(() => decodeFrameHeader(fromHex('05000000000001'), 16)).message).toBe('v4 frame header: marker 0x05, expected 0x04 at offset 16');
    expect(decodeError(() => decodeFrameHeader(fromHex('04000000010000'))).reason).toMatch(/zero chunk with padding/);
  });

  it('legacy chunks: truncated and unauthenticated', () => {
    const chunk = sealLegacyChunk(new AeadDirection('aes-128-gcm', key), Buffer.from('abc'));
    expect(decodeError(() => openLegacyChunk(new AeadDirection('aes-128-gcm', key), chunk.subarray(0, 25), 0)).offset).toBe(18);
    expect(decodeError(() => openLegacyChunk(new AeadDirection('chacha20-poly1305', randomBytes(32)), chunk, 0)).reason).toMatch(/authenticate/);
  });

  it('requests: every field cut short, a bad version, an unknown command, an empty host', () => {
    const full = encodeRequest({ command: 'connect', clientId: fromHex('aabb'), host: 'example.com', port: 443 });
    for (let cut = 0; cut < full.length; cut++) expect(decodeError(() => decodeRequest(full.subarray(0, cut))).reason).toMatch(/truncated/);
    expect(decodeError(() => decodeRequest(fromHex('020100'))).message).toBe('request: version 0x02, expected 0x01 at offset 0');
    expect(decodeError(() => decodeRequest(fromHex('010900'))).offset).toBe(1);
    expect(decodeError(() => decodeRequest(fromHex('0101000000'))).reason).toBe('empty host');
    expect(decodeRequest(fromHex('010000ff')).request.command).toBe('ping');
  });

  it('replies: empty, unknown type, a cut error message', () => {
    expect(decodeError(() => decodeReply(new Uint8Array(0))).reason).toBe('empty');
    expect(decodeError(() => decodeReply(fromHex('07'))).reason).toMatch(/unknown reply type 0x07/);
    expect(decodeError(() => decodeReply(fromHex('02000a41'))).reason).toMatch(/10 bytes announced, 1 present/);
  });

  it('UDP datagrams: families, truncation, and server replies for IPv4 and IPv6', () => {
    expect(decodeError(() => decodeClientDatagram(fromHex('0100050102'))).reason).toMatch(/address family/);
    expect(decodeError(() => decodeClientDatagram(fromHex('01000401020304'))).reason).toMatch(/truncated/);
    for (const host of ['192.0.2.1', '2001:db8::1', '::1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8']) {
      const bytes = encodeServerDatagram({ host, port: 53, payload: fromHex('abcd') });
      expect(decodeServerDatagram(bytes)).toEqual({ host, port: 53, payload: fromHex('abcd') });
    }
  });

  it('QUIC envelopes: short, wrong key, cut payload', () => {
    const packet = sealQuicEnvelope(key, randomBytes(16), { host: 'example.com', port: 443, inner: randomBytes(100) });
    expect(decodeError(() => openQuicEnvelope(key, packet.subarray(0, 30))).reason).toMatch(/truncated/);
    expect(decodeError(() => openQuicEnvelope(randomBytes(16), packet)).offset).toBe(16);
    expect(decodeError(() => openQuicEnvelope(key, packet.subarray(0, 100))).offset).toBe(39);
  });
});

describe('obfs', () => {
  it('wraps in an http upgrade request and strips it back, including the bytes after the body', () => {
    const first = randomBytes(300);
    const wrapped = wrapHttp(first, 'bing.com');
    const head = Buffer.from(wrapped).toString('latin1');
    expect(head).toMatch(/^GET \/ HTTP\/1\.1\r\nHost: bing\.com\r\nUser-Agent: curl\/7\.\d+\.\d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: [A-Za-z0-9+/]{22}==\r\nContent-Length: 300\r\n\r\n/);
    const more = Buffer.concat([wrapped, Buffer.from('later')]);
    expect(hex(stripHttp(more))).toBe(hex(Buffer.concat([first, Buffer.from('later')])));
    expect(stripObfs(wrapped, 'auto').detected).toBe('http');
    expect(decodeError(() => stripHttp(wrapped.subarray(0, 40))).reason).toMatch(/truncated/);
  });

  it('puts at most 0x400 bytes in the ClientHello and the rest in application-data records', () => {
    const first = randomBytes(0x400 + 0x4000 + 10);
    const wrapped = wrapTls(first, 'cloudfront.net');
    expect(hex(stripTls(wrapped))).toBe(hex(first));
    expect(stripObfs(wrapped, 'auto')).toMatchObject({ detected: 'tls' });
    expect(decodeError(() => stripTls(Buffer.from('not tls at all'))).offset).toBe(0);
  });

  it('leaves raw Snell bytes alone in auto mode', () => {
    const raw = fromHex('6c7e88d660b3a68ea4c5d01269082ef075ca10965a5984ed201d97c29511d97414d7f6d2711ecb');
    expect(stripObfs(raw, 'auto')).toEqual({ bytes: raw, detected: 'off' });
  });
});
