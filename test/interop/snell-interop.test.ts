/**
 * authkit against an independent Snell implementation (Python: libargon2 + OpenSSL through
 * python3-argon2 and python3-cryptography) that shares no code with it: random PSKs, salts,
 * hosts, paddings and payloads, built on one side and read on the other, both ways.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes, randomInt } from 'node:crypto';
import { fromHex, hex } from '../helpers.js';
import { peerAvailable, SnellPeer } from './peer.js';
import { availableKdfs, selectKdf } from '../../src/snell/wire/kdf.js';
import { buildFirstPacket, buildQuicPacket, type SnellVersion } from '../../src/snell/wire/first-packet.js';
import { AeadDirection, aeadKey } from '../../src/snell/wire/aead.js';
import { openFrame, sealFrame } from '../../src/snell/wire/frame.js';
import { openLegacyChunk } from '../../src/snell/wire/legacy.js';
import { COMMANDS, decodeRequest, type SnellCommand } from '../../src/snell/wire/request.js';
import { decodeReply, encodeReply, type ServerReply } from '../../src/snell/wire/reply.js';
import { openQuicEnvelope } from '../../src/snell/wire/quic.js';
import { trialAuthenticate } from '../../src/snell/model.js';

const available = peerAvailable();
if (!available && process.env.CI) throw new Error('CI must install python3-argon2 and python3-cryptography for the interop peer');
const utf8 = new TextEncoder();
const kdf = await selectKdf();

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-_:,. äöü密码кл🔑';
function randomPsk(): string {
  return Array.from({ length: randomInt(1, 40) }, () => [...ALPHABET][randomInt([...ALPHABET].length)]).join('');
}
function randomHost(): string {
  switch (randomInt(3)) {
    case 0: return Array.from({ length: randomInt(1, 4) }, () => randomBytes(randomInt(1, 12)).toString('hex')).join('.') + '.example';
    case 1: return Array.from({ length: 4 }, () => randomInt(256)).join('.');
    default: return Array.from({ length: 8 }, () => randomInt(65536).toString(16)).join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  }
}
function randomRequest(command: SnellCommand = (Object.keys(COMMANDS) as SnellCommand[])[randomInt(4)]!) {
  return { command, clientId: randomBytes(randomInt(0, 3) === 0 ? randomInt(1, 20) : 0), host: randomHost(), port: randomInt(65536) };
}
function peerRequest(r: ReturnType<typeof randomRequest>) {
  return { cmd: COMMANDS[r.command], clientId: hex(r.clientId), host: r.host, port: r.port };
}

describe.skipIf(!available)('interop with an independent Python Snell implementation', () => {
  const peer = available ? new SnellPeer() : undefined!;
  afterAll(() => peer?.close());

  it('agrees on Argon2id for random PSKs and salts, with every KDF backend', async () => {
    const backends = await availableKdfs();
    for (let i = 0; i < 30; i++) {
      const psk = randomPsk();
      const salt = randomBytes(16);
      const { out } = await peer.call({ op: 'kdf', psk, salt: hex(salt) });
      for (const backend of backends) expect(hex(await backend.derive(utf8.encode(psk), salt)), backend.name).toBe(out);
    }
  });

  it('builds the same v4/v5 first packets byte for byte, and each side reads the other', async () => {
    for (let i = 0; i < 100; i++) {
      const psk = randomPsk();
      const salt = randomBytes(16);
      const request = randomRequest();
      const early = randomBytes(randomInt(0, 2) ? randomInt(0, 300) : 0);
      const padding = randomBytes(randomInt(0, 4) === 0 ? 0 : randomInt(0, 512));
      const ours = await buildFirstPacket({ psk, version: (4 + randomInt(2)) as SnellVersion, salt, request, early, padding, kdf });
      const theirs = await peer.call({ op: 'encode_v4', psk, salt: hex(salt), padding: hex(padding), request: peerRequest(request), early: hex(early) });
      expect(hex(ours.wire)).toBe(theirs.wire);

      const decoded = await peer.call({ op: 'decode_v4', psk, wire: hex(ours.wire), hasRequest: true });
      expect(decoded).toMatchObject({ paddingLen: padding.length, padding: hex(padding), early: hex(early), rest: '' });
      expect(decoded.request.cmd).toBe(COMMANDS[request.command]);
      if (request.command === 'connect' || request.command === 'connect-v2') expect(decoded.request).toMatchObject({ host: request.host, port: request.port });

      const direction = new AeadDirection('aes-128-gcm', aeadKey(await kdf.derive(utf8.encode(psk), salt), 'aes-128-gcm'));
      const frame = openFrame(direction, fromHex(theirs.wire), 16);
      const parsed = decodeRequest(frame.payload);
      expect(parsed.request.command).toBe(request.command);
      expect(hex(frame.payload.subarray(parsed.end))).toBe(hex(early));
    }
  });

  it('builds and reads legacy v1-v3 chunks the same way', async () => {
    for (let i = 0; i < 30; i++) {
      const version = (1 + (i % 3)) as 1 | 2 | 3;
      const psk = randomPsk();
      const salt = randomBytes(16);
      const request = randomRequest(version === 2 ? 'connect-v2' : 'connect');
      const ours = await buildFirstPacket({ psk, version, salt, request, kdf });
      const payload = hex(ours.request);
      const theirs = await peer.call({ op: 'encode_legacy', version, psk, salt: hex(salt), payload });
      expect(hex(ours.wire)).toBe(theirs.wire);
      expect(await peer.call({ op: 'decode_legacy', psk, wire: hex(ours.wire) })).toEqual({
        cipher: version === 1 ? 'chacha20-poly1305' : 'aes-128-gcm', payload,
      });
      const aead = version === 1 ? 'chacha20-poly1305' : 'aes-128-gcm';
      const chunk = openLegacyChunk(new AeadDirection(aead, aeadKey(await kdf.derive(utf8.encode(psk), salt), aead)), fromHex(theirs.wire), 16);
      expect(hex(chunk.payload)).toBe(payload);
    }
  });

  it('seals and opens v5 QUIC envelopes the same way', async () => {
    for (let i = 0; i < 30; i++) {
      const psk = randomPsk();
      const host = randomHost();
      const port = randomInt(65536);
      const inner = randomBytes(randomInt(1, 1300));
      const ours = await buildQuicPacket({ psk, host, port, inner, kdf });
      expect(ours.wire[0]! & 0x40).toBe(0);
      const theirs = await peer.call({ op: 'encode_quic', psk, salt: hex(ours.salt), host, port, inner: hex(inner) });
      expect(hex(ours.wire)).toBe(theirs.packet);
      expect(await peer.call({ op: 'decode_quic', psk, packet: hex(ours.wire) })).toMatchObject({ host, port, inner: hex(inner) });
      const key = aeadKey(await kdf.derive(utf8.encode(psk), ours.salt), 'aes-128-gcm');
      expect(openQuicEnvelope(key, fromHex(theirs.packet))).toMatchObject({ host, port });
    }
  });

  it('seals and reads server replies the same way', async () => {
    const replies: ServerReply[] = [
      { kind: 'pong' },
      { kind: 'error', code: 111, message: 'dial tcp 127.0.0.1:1: connect: connection refused' },
      { kind: 'error', code: 0, message: 'quota exceeded' },
    ];
    for (let i = 0; i < 30; i++) {
      const reply = replies[i % 4] ?? { kind: 'tunnel', data: randomBytes(randomInt(0, 200)) };
      const psk = randomPsk();
      const salt = randomBytes(16);
      const padding = randomBytes(randomInt(0, 512));
      const key = aeadKey(await kdf.derive(utf8.encode(psk), salt), 'aes-128-gcm');
      const ours = Buffer.concat([salt, sealFrame(new AeadDirection('aes-128-gcm', key), encodeReply(reply), padding)]);
      const theirs = await peer.call({ op: 'encode_reply', psk, salt: hex(salt), padding: hex(padding), plaintext: hex(encodeReply(reply)) });
      expect(hex(ours)).toBe(theirs.wire);
      const read = await peer.call({ op: 'decode_reply', psk, wire: hex(ours) });
      expect(read.kind).toBe(reply.kind);
      if (reply.kind === 'error') expect(read).toMatchObject({ code: reply.code, message: reply.message });
      const frame = openFrame(new AeadDirection('aes-128-gcm', key), fromHex(theirs.wire), 16);
      expect(decodeReply(frame.payload).kind).toBe(reply.kind);
    }
  });

  it('finds the same user by trial decryption as the independent serial scan', async () => {
    for (let i = 0; i < 20; i++) {
      const users = Array.from({ length: randomInt(1, 40) }, (_, k) => ({ name: `u${k}`, psk: `${randomPsk()}#${k}` }));
      const target = randomInt(0, 4) === 0 ? { name: 'stranger', psk: randomPsk() } : users[randomInt(users.length)]!;
      const blob = (await peer.call({ op: 'encode_v4', psk: target.psk, salt: hex(randomBytes(16)), padding: '', request: peerRequest(randomRequest('connect-v2')), early: '' })).wire;
      const theirs = await peer.call({ op: 'trial', users, blob });
      const ours = await trialAuthenticate(users, fromHex(blob), { kdf });
      expect(ours.ok ? ours.index : null).toBe(theirs.index);
    }
  });
});
