import { describe, expect, it } from 'vitest';
import { fromHex, hex, vectors } from '../../helpers.js';
import { availableKdfs, type KdfBackend } from '../../../src/snell/wire/kdf.js';
import { AeadDirection, aeadKey } from '../../../src/snell/wire/aead.js';
import { openFrame, sealFrame, swapPadding } from '../../../src/snell/wire/frame.js';
import { openLegacyChunk } from '../../../src/snell/wire/legacy.js';
import { decodeRequest, encodeRequest, commandName } from '../../../src/snell/wire/request.js';
import { decodeReply, encodeReply } from '../../../src/snell/wire/reply.js';
import { openQuicEnvelope, sealQuicEnvelope } from '../../../src/snell/wire/quic.js';
import { decodeClientDatagram, encodeClientDatagram } from '../../../src/snell/wire/udp.js';
import { stripTls, wrapTls } from '../../../src/snell/wire/obfs.js';
import { buildFirstPacket } from '../../../src/snell/wire/first-packet.js';
import { TrialAuthenticator } from '../../../src/snell/model.js';
import { createHash } from 'node:crypto';

const backends = await availableKdfs();
const utf8 = new TextEncoder();

it('has a native and the wasm KDF backend in this runtime', () => {
  expect(backends.map((b) => b.name)).toContain('wasm');
  expect(backends.some((b) => b.deriveSync)).toBe(true);
});

describe.each(backends.map((b) => [b.name, b] as [string, KdfBackend]))('KDF backend %s', (_name, kdf) => {
  it.each(vectors.kdf.map((v: any) => [v.psk, v.salt_hex, v]))('derives Argon2id(%s, %s)', async (_psk, _salt, v: any) => {
    const out = await kdf.derive(fromHex(v.psk_hex), fromHex(v.salt_hex));
    expect(hex(out)).toBe(v.argon2_out_hex);
    expect(hex(aeadKey(out, 'aes-128-gcm'))).toBe(v.aes128_key_hex);
    expect(hex(aeadKey(out, 'chacha20-poly1305'))).toBe(v.chacha20_key_hex);
  });

  it.each(vectors.v4_first_packets.map((v: any) => [v.name, v]))('builds v4 first packet %s byte for byte', async (_n, v: any) => {
    const frame = v.frames[0];
    const packet = await buildFirstPacket({
      psk: v.psk, version: v.version, salt: fromHex(v.salt_hex), kdf,
      request: { command: commandName(v.cmd)!, clientId: fromHex(v.client_id_hex), host: v.host, port: v.port },
      early: fromHex(v.early_data_hex), padding: fromHex(frame.padding_plain),
    });
    expect(hex(packet.request)).toBe(v.request_hex);
    expect(hex(packet.headerPlain)).toBe(frame.header_plain);
    expect(hex(packet.wire)).toBe(v.wire_hex);
  });

  it.each(vectors.trial_auth.map((v: any) => [v.name, v]))('trial-authenticates %s', async (_n, v: any) => {
    const auth = await TrialAuthenticator.create(v.users, { kdf });
    const outcome = await auth.authenticate(fromHex(v.blob_hex));
    await auth.close();
    if (v.expect.ok) {
      expect(outcome).toMatchObject({ ok: true, index: v.expect.index, user: v.expect.name, path: 'serial' });
    } else {
      const reason = { 'no-match': 'no-match', 'truncated-header': 'truncated', 'no-users': 'empty-store' }[v.expect.error as string];
      expect(outcome).toMatchObject({ ok: false, reason });
    }
  });
});

describe('codecs against the public vectors', async () => {
  const kdf = backends[0]!;
  const key = async (psk: string, salt: string): Promise<Uint8Array> => kdf.derive(utf8.encode(psk), fromHex(salt));

  it.each(vectors.v4_first_packets.map((v: any) => [v.name, v]))('decodes v4 first packet %s', async (_n, v: any) => {
    const wire = fromHex(v.wire_hex);
    const direction = new AeadDirection('aes-128-gcm', aeadKey(await key(v.psk, v.salt_hex), 'aes-128-gcm'));
    const frame = openFrame(direction, wire, 16);
    expect(frame.end).toBe(wire.length);
    expect(hex(frame.padding)).toBe(v.frames[0].padding_plain);
    const { request, end } = decodeRequest(frame.payload);
    expect(request).toMatchObject({ host: v.host, port: v.port, command: commandName(v.cmd) });
    expect(hex(request.clientId)).toBe(v.client_id_hex);
    expect(hex(frame.payload.subarray(end))).toBe(v.early_data_hex);
  });

  it('applies the even-index padding swap exactly as the vectors show', () => {
    for (const v of vectors.v4_first_packets) {
      const f = v.frames[0];
      const padding = fromHex(f.padding_plain);
      const payload = fromHex(f.payload_sealed);
      swapPadding(padding, payload);
      expect(hex(padding)).toBe(f.padding_wire);
      expect(hex(payload)).toBe(f.payload_wire);
    }
  });

  it.each(vectors.legacy_first_packets.map((v: any) => [v.name, v]))('opens legacy packet %s', async (_n, v: any) => {
    const aead = v.cipher as 'aes-128-gcm' | 'chacha20-poly1305';
    const direction = new AeadDirection(aead, aeadKey(await key(v.psk, v.salt_hex), aead));
    const chunk = openLegacyChunk(direction, fromHex(v.wire_hex), 16);
    expect(hex(chunk.payload)).toBe(v.request_hex);
    const built = await buildFirstPacket({
      psk: v.psk, version: v.version, salt: fromHex(v.salt_hex), kdf,
      request: decodeRequest(chunk.payload).request,
    });
    expect(hex(built.wire)).toBe(v.wire_hex);
  });

  it.each(vectors.server_responses.map((v: any) => [v.name, v]))('seals and parses server reply %s', async (_n, v: any) => {
    const k = aeadKey(await key(v.psk, v.salt_hex), 'aes-128-gcm');
    const frame = v.frames[0];
    const sealed = sealFrame(new AeadDirection('aes-128-gcm', k), fromHex(v.plaintext_hex), fromHex(frame.padding_plain));
    expect(hex(sealed)).toBe(frame.wire_hex);
    const opened = openFrame(new AeadDirection('aes-128-gcm', k), fromHex(v.wire_hex), 16);
    const reply = decodeReply(opened.payload);
    expect(reply.kind).toBe(v.parsed.kind);
    if (reply.kind === 'tunnel') expect(hex(reply.data)).toBe(v.parsed.data);
    expect(hex(encodeReply(reply))).toBe(v.plaintext_hex);
  });

  it('parses an error reply with errno and message', () => {
    const bytes = encodeReply({ kind: 'error', code: 111, message: 'dial tcp 127.0.0.1:1: connect: connection refused' });
    expect(decodeReply(bytes)).toEqual({ kind: 'error', code: 111, message: 'dial tcp 127.0.0.1:1: connect: connection refused' });
  });

  it('reads a data frame followed by a zero chunk with continuing nonces', async () => {
    const v = vectors.zero_chunk[0];
    const wire = fromHex(v.wire_hex);
    const direction = new AeadDirection('aes-128-gcm', aeadKey(await key(v.psk, v.salt_hex), 'aes-128-gcm'));
    const data = openFrame(direction, wire, 16);
    expect(hex(data.payload)).toBe(v.frames[0].payload_plain);
    const zero = openFrame(direction, wire, data.end);
    expect(zero.header.payloadLen).toBe(0);
    expect(zero.end).toBe(wire.length);
    const again = new AeadDirection('aes-128-gcm', aeadKey(await key(v.psk, v.salt_hex), 'aes-128-gcm'));
    sealFrame(again, fromHex(v.frames[0].payload_plain), fromHex(v.frames[0].padding_plain));
    expect(hex(sealFrame(again, new Uint8Array(0)))).toBe(v.frames[1].wire_hex);
  });

  it('opens the real Surge -> snell-server v5.0.1 QUIC capture and re-seals it identically', async () => {
    const v = vectors.quic_envelopes[0];
    const packet = fromHex(v.packet_hex);
    expect(createHash('sha256').update(packet).digest('hex')).toBe(v.packet_sha256);
    const k = aeadKey(await key(v.psk, v.expect.salt_hex), 'aes-128-gcm');
    expect(hex(k)).toBe(v.expect.aes128_key_hex);
    const opened = openQuicEnvelope(k, packet);
    expect(opened).toMatchObject({ host: v.expect.host, port: v.expect.port, paddingLen: 0 });
    expect(hex(opened.headerPlain)).toBe(v.expect.header_plain_hex);
    expect(opened.inner.length).toBe(v.expect.inner_len);
    expect(createHash('sha256').update(opened.inner).digest('hex')).toBe(v.expect.inner_sha256);
    expect(hex(sealQuicEnvelope(k, fromHex(v.expect.salt_hex), opened))).toBe(v.packet_hex);
  });

  it.each(vectors.udp_payloads.map((v: any) => [v.name, v]))('round-trips UDP datagram %s byte for byte', (_n, v: any) => {
    const datagram = decodeClientDatagram(fromHex(v.hex));
    expect(hex(encodeClientDatagram(datagram))).toBe(v.hex);
  });

  it('decodes the UDP vectors to the addresses they carry', () => {
    const [domain, v4, v6] = vectors.udp_payloads.map((v: any) => decodeClientDatagram(fromHex(v.hex)));
    expect(domain).toMatchObject({ host: 'dns.example', port: 53 });
    expect(v4).toMatchObject({ host: '1.2.3.4', port: 53 });
    expect(v6).toMatchObject({ host: '2001:db8::2', port: 443 });
  });

  it('wraps the first packet in the tls obfs ClientHello byte for byte, and strips it back', () => {
    const v = vectors.obfs[0];
    const wire = wrapTls(fromHex(v.inner_hex), v.host, { unixTime: v.unix_time, random: fromHex(v.random_hex), sessionId: fromHex(v.session_id_hex) });
    expect(hex(wire)).toBe(v.wire_hex);
    expect(hex(stripTls(wire))).toBe(v.inner_hex);
  });

  it('encodes requests as the vectors do', () => {
    for (const v of vectors.v4_first_packets) {
      const bytes = encodeRequest({ command: commandName(v.cmd)!, clientId: fromHex(v.client_id_hex), host: v.host, port: v.port });
      expect(hex(bytes)).toBe(v.request_hex);
    }
  });
});

