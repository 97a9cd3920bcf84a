/**
 * snell-serve's server and snell-probe's client against each other, in every mode. (Clients
 * that misbehave: clients.test.ts; the bounded scans: auth-bounds.test.ts; the independent
 * Python peer checks both against a third implementation in test/interop/.)
 */
import net from 'node:net';
import http from 'node:http';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseTargetPolicy } from '../../../src/snell/server/targets.js';
import { utf8 } from '../../../src/shared/bytes.js';
import { closedPort, closers, echoServer, probe, serve, useSnellServers } from './harness.js';

useSnellServers();

describe('snell-serve and snell-probe', () => {
  it('multi-user, more than 16 users (the parallel scan): PING gets PONG, the user is named in the totals', async () => {
    const server = await serve();
    const result = await probe(server, {});
    expect(result).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    expect(result.connectMs).toBeGreaterThanOrEqual(0);
    expect(result.firstByteMs).toBeGreaterThan(0);
    expect(server.stats().users['user-17']).toMatchObject({ connections: 1 });
  });

  it('a wrong PSK: closed after the 50 ms no-match delay, and the probe says so', async () => {
    const server = await serve();
    const result = await probe(server, { psk: 'nobody-has-this' });
    expect(result.outcome).toBe('rejected');
    expect(result.totalMs).toBeGreaterThanOrEqual(45);
    // The probe names the delay from the close's timing: 35-250 ms after the first packet. On a
    // busy machine the close can come later than that, and then the note must say so instead.
    const afterMs = Number(/after ([\d.]+) ms with nothing sent/.exec(result.note ?? '')?.[1]);
    expect(afterMs).toBeGreaterThanOrEqual(45);
    if (afterMs <= 250) expect(result.note).toMatch(/no-match delay \(50 ms\): no user has this PSK/);
  });

  it('single-PSK server: a wrong PSK closes at once, no delay', async () => {
    const server = await serve({ users: undefined, psk: 'the-one' });
    expect(await probe(server, { psk: 'the-one' })).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
    // The probe tells an immediate close from the 50 ms delay by its timing: on a busy machine one
    // close can come late, so it is asked up to three times.
    const notes: string[] = [];
    for (let i = 0; i < 3 && !notes.some((n) => /single-user server with another PSK/.test(n)); i++) {
      const wrong = await probe(server, { psk: 'not-it' });
      expect(wrong.outcome).toBe('rejected');
      notes.push(wrong.note ?? '');
    }
    expect(notes.join('\n')).toMatch(/single-user server with another PSK/);
  });

  it('echo: data sent with the request comes back behind the lazy 00', async () => {
    const server = await serve();
    const result = await probe(server, { action: { kind: 'connect', host: 'example.com', port: 443, command: 'connect-v2' }, send: utf8.encode('hello through snell') });
    expect(result).toMatchObject({ outcome: 'authenticated', reply: { kind: 'tunnel' } });
    expect(Buffer.from(result.received!).toString()).toBe('hello through snell');
  });

  it('an allowed target is dialled; a refused one gets an error reply with errno 111; others are refused by policy', async () => {
    const echo = await echoServer();
    const closed = await closedPort();
    const server = await serve({ targets: parseTargetPolicy([`127.0.0.1:${echo}`, `127.0.0.0/8:${closed}`], false) });
    const through = await probe(server, { action: { kind: 'connect', host: '127.0.0.1', port: echo, command: 'connect' }, send: utf8.encode('x'.repeat(100_000)) });
    expect(through.received?.length).toBe(100_000);
    const refused = await probe(server, { action: { kind: 'connect', host: '127.0.0.1', port: closed, command: 'connect' } });
    expect(refused).toMatchObject({ outcome: 'authenticated', reply: { kind: 'error', code: 111, message: `dial tcp 127.0.0.1:${closed}: connect: connection refused` } });
    const policy = await probe(server, { action: { kind: 'connect', host: 'example.com', port: 80, command: 'connect' } });
    expect(policy.reply).toMatchObject({ kind: 'error', code: 0, message: 'target example.com:80 is not allowed by snell-serve (--allow-target, --echo)' });
  });

  for (const obfs of ['http', 'tls'] as const) {
    it(`obfs ${obfs}: PING and an echoed tunnel`, async () => {
      const server = await serve({ obfs });
      expect(await probe(server, { obfs })).toMatchObject({ outcome: 'authenticated', reply: { kind: 'pong' } });
      const big = randomBytes(50_000);
      const result = await probe(server, { obfs, action: { kind: 'connect', host: 'a.example', port: 1, command: 'connect-v2' }, send: big });
      expect(Buffer.from(result.received!).equals(big)).toBe(true);
      // Without obfs the server reads the request line as Snell bytes, and rejects.
      expect((await probe(server, { obfs: 'off' })).outcome).toBe('rejected');
    });
  }

  it('UDP-over-TCP: a datagram out and back (echo, and a real UDP echo); refused when UDP is off', async () => {
    const udpEcho = dgram.createSocket('udp4');
    udpEcho.on('message', (message, info) => udpEcho.send(message, info.port, info.address));
    await new Promise<void>((resolve) => udpEcho.bind(0, '127.0.0.1', resolve));
    closers.push(() => udpEcho.close());
    const udpPort = udpEcho.address().port;
    const server = await serve({ udp: true, targets: parseTargetPolicy([`127.0.0.1:${udpPort}`], true) });
    const real = await probe(server, { action: { kind: 'udp', host: '127.0.0.1', port: udpPort }, send: utf8.encode('dns?') });
    expect(real).toMatchObject({ outcome: 'authenticated', reply: { kind: 'udp' } });
    expect(Buffer.from(real.received!).toString()).toBe('dns?');
    const echoed = await probe(server, { action: { kind: 'udp', host: '192.0.2.1', port: 53 }, send: utf8.encode('echo me') });
    expect(Buffer.from(echoed.received!).toString()).toBe('echo me');
    const off = await serve();
    expect((await probe(off, { action: { kind: 'udp', host: '127.0.0.1', port: 53 } })).reply).toEqual({ kind: 'error', code: 1, message: 'UDP disabled' });
  });

  it('QUIC: an envelope opens a flow to the target (echo, and a real UDP peer); a wrong PSK or raw QUIC gets nothing back', async () => {
    const udpEcho = dgram.createSocket('udp4');
    udpEcho.on('message', (message, info) => udpEcho.send(Buffer.concat([Buffer.from('re:'), message]), info.port, info.address));
    await new Promise<void>((resolve) => udpEcho.bind(0, '127.0.0.1', resolve));
    closers.push(() => udpEcho.close());
    const server = await serve({ quic: true, targets: parseTargetPolicy([`127.0.0.1:${udpEcho.address().port}`], true) });
    const echoed = await probe(server, { action: { kind: 'quic', host: 'www.example.com', port: 443 }, send: utf8.encode('inner quic packet') });
    expect(echoed).toMatchObject({ outcome: 'authenticated', reply: { kind: 'quic' } });
    expect(Buffer.from(echoed.received!).toString()).toBe('inner quic packet');
    const real = await probe(server, { action: { kind: 'quic', host: '127.0.0.1', port: udpEcho.address().port }, send: utf8.encode('hello') });
    expect(Buffer.from(real.received!).toString()).toBe('re:hello');
    const wrong = await probe(server, { psk: 'nobody', timeoutMs: 400, action: { kind: 'quic', host: 'www.example.com', port: 443 } });
    expect(wrong).toMatchObject({ outcome: 'timeout', note: expect.stringMatching(/a QUIC envelope has no rejection/) });
    const raw = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    raw.on('message', (m) => got.push(m));
    raw.send(Buffer.alloc(1200, 0xc3), server.address.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    raw.close();
    expect(got).toEqual([]);
  });

  it('the users file is replaced as a whole snapshot', async () => {
    const server = await serve();
    server.replaceUsers([{ name: 'newcomer', psk: 'fresh-psk' }]);
    expect((await probe(server, { psk: 'fresh-psk' })).outcome).toBe('authenticated');
    expect((await probe(server, {})).outcome).toBe('rejected');
    server.replaceUsers([]);
    // An empty store fails closed, after the delay.
    expect((await probe(server, { psk: 'fresh-psk' })).totalMs).toBeGreaterThanOrEqual(45);
  });

  it('--authorize-url: a non-2xx answer becomes an error reply', async () => {
    const seen: unknown[] = [];
    const hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const event = JSON.parse(body) as { user: string };
        seen.push(event);
        res.statusCode = event.user === 'user-17' ? 403 : 204;
        res.end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    closers.push(() => hook.close());
    const server = await serve({ authorizeUrl: `http://127.0.0.1:${(hook.address() as net.AddressInfo).port}/authorize` });
    const denied = await probe(server, { action: { kind: 'connect', host: 'example.com', port: 443, command: 'connect' } });
    expect(denied.reply).toEqual({ kind: 'error', code: 0, message: 'not authorized (HTTP 403 from the authorize hook)' });
    const allowed = await probe(server, { psk: 'psk-of-user-3', action: { kind: 'connect', host: 'example.com', port: 443, command: 'connect' }, send: utf8.encode('ok') });
    expect(Buffer.from(allowed.received!).toString()).toBe('ok');
    expect(seen[0]).toMatchObject({ user: 'user-17', target: 'example.com:443', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
  });
});
