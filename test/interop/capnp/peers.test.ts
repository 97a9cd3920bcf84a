/**
 * The official-implementation peers against each other (C++ client → C++ server), so they are known
 * good before the TypeScript client and server are tested against them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  buildPeers,
  capnpAvailable,
  parseClientOutput,
  runClient,
  startServer,
  tempSocketPath,
  type Peers,
  type RunningServer,
} from './peers.js';

const available = capnpAvailable();
if (!available && process.env.CI) throw new Error('CI must install capnproto libcapnp-dev g++ pkg-config for the Cap\'n Proto interop peers');

describe.skipIf(!available)("C++ Cap'n Proto peers (official implementation)", () => {
  let peers: Peers;
  let server: RunningServer;
  let socket: string;

  beforeAll(async () => {
    peers = await buildPeers();
    socket = tempSocketPath();
    server = await startServer(peers.server, socket);
  }, 180_000);
  afterAll(async () => server?.stop());

  const client = async (...args: string[]) => {
    const r = await runClient(peers.client, socket, args);
    expect(r.stderr, r.stderr).toBe('');
    expect(r.code).toBe(0);
    return parseClientOutput(r.stdout);
  };
  const decisionFor = async (...args: string[]) => (await client('--print', ...args)).decisions[0];

  it('passes a request with authorization: Bearer good, with upstreamValue user=alice', async () => {
    const { decisions, summary } = await client('--print');
    expect(decisions).toEqual([{ action: 'pass', statusCode: 0, upstreamValue: 'user=alice', redirectLocation: '', responseBody: '' }]);
    expect(summary).toMatchObject({ calls: 1 });
  });

  it('blocks 401 without authorization and 403 with a wrong one', async () => {
    expect(await decisionFor('--headers', '0')).toMatchObject({ action: 'block', statusCode: 401, upstreamValue: '' });
    expect(await decisionFor('--header', 'authorization: Bearer bad')).toMatchObject({ action: 'block', statusCode: 403 });
  });

  it('redirects paths under /redirect with 302 to https://login.example/', async () => {
    expect(await decisionFor('--path', '/redirect/here')).toEqual({
      action: 'redirect', statusCode: 302, upstreamValue: '', redirectLocation: 'https://login.example/', responseBody: '',
    });
  });

  it('returns exactly the decision asked for with x-action', async () => {
    const d = await decisionFor('--header', 'x-action: redirect', '--header', 'x-status: 1000', '--header', 'x-location: /a\tb', '--header', 'x-body: ignored');
    expect(d).toEqual({ action: 'redirect', statusCode: 1000, upstreamValue: '', redirectLocation: '/a\tb', responseBody: 'ignored' });
    expect(await decisionFor('--header', 'x-action: pass')).toEqual({ action: 'pass', statusCode: 0, upstreamValue: '', redirectLocation: '', responseBody: '' });
  });

  it('echoes the request it received, field by field and header by header', async () => {
    const d = await decisionFor('--method', 'POST', '--host', 'a.example', '--path', '/p%20q', '--query', 'x=1&y="2"',
      '--client-ip', '[2001:db8::1]:443', '--header', 'x-echo: 1', '--header', 'accept: text/ü', '--header', 'dup: 1', '--header', 'dup: 2');
    expect(d!.action).toBe('pass');
    expect(JSON.parse(d!.upstreamValue)).toEqual({
      method: 'POST', host: 'a.example', path: '/p%20q', query: 'x=1&y="2"', clientIp: '[2001:db8::1]:443', headerCount: 7,
      headers: [['authorization', 'Bearer good'], ['user-agent', 'curl/8.5.0'], ['accept', 'text/ü'], ['x-request-id', 'req-1'], ['x-echo', '1'], ['dup', '1'], ['dup', '2']],
      nullFields: [],
    });
  });

  it('fails the call with the exception message for x-throw, and keeps serving', async () => {
    const r = await runClient(peers.client, socket, ['--header', 'x-throw: 1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^call failed: remote exception: x-throw requested\n$/);
    expect(await decisionFor()).toMatchObject({ action: 'pass' });
  });

  it('delays with x-delay-ms, and a call cancelled by Finish before Return is reported as cancelled', async () => {
    const slow = await client('--print', '--header', 'x-delay-ms: 200');
    expect(slow.decisions[0]).toMatchObject({ action: 'pass' });
    expect(slow.summary!.seconds).toBeGreaterThanOrEqual(0.19);
    await server.waitForLine(/^delayed 200$/);

    // A second for the call to reach the server before the client gives up (on a busy machine
    // 100 ms could run out before it did), against a delay of 20.
    const r = await runClient(peers.client, socket, ['--header', 'x-delay-ms: 20000', '--timeout-ms', '1000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('call failed: operation timed out\n');
    await server.waitForLine(/^cancelled 20000$/, 10_000);
    expect(server.lines).not.toContain('delayed 20000');
  });

  it('answers 64 calls in flight on one connection', async () => {
    const { decisions, summary } = await client('--print', '--calls', '2000', '--in-flight', '64');
    expect(summary!.calls).toBe(2000);
    expect(decisions).toHaveLength(2000);
    expect(decisions.every((d) => d.action === 'pass' && d.upstreamValue === 'user=alice')).toBe(true);
  });

  it('carries 10,000 headers (a multi-segment request) and 64 KiB values', async () => {
    const d = await decisionFor('--headers', '10000', '--value-size', '20', '--header', 'x-echo: 1');
    const echo = JSON.parse(d!.upstreamValue);
    expect(echo.headerCount).toBe(10001);
    expect(echo.headers[9999]).toEqual(['x-fill-9999', 'abcdefghijklmnopqrst']);
    expect(echo.headers[10000]).toEqual(['x-echo', '1']);

    const big = JSON.parse((await decisionFor('--headers', '5', '--value-size', '65536', '--header', 'x-echo: 1'))!.upstreamValue);
    expect(big.headers[4][1]).toHaveLength(65536);
  });

  it('measures calls per second with --bench', async () => {
    const { summary } = await client('--bench', '0.3', '--in-flight', '8');
    expect(summary!.seconds).toBeGreaterThanOrEqual(0.3);
    expect(summary!.callsPerSec).toBeGreaterThan(100);
  });

  it('fails every call to the server built with the wrong file ID: "Requested interface not implemented"', async () => {
    const path = tempSocketPath();
    const wrong = await startServer(peers.wrongIdServer, path);
    try {
      const r = await runClient(peers.client, path);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Requested interface not implemented/);
      expect(r.stderr).toContain(`requestedTypeId = ${0xe33a260d84ec3ad3n}`);
    } finally {
      await wrong.stop();
    }
  });

  it('fails the call when the server is killed mid-call (x-exit)', async () => {
    const path = tempSocketPath();
    const doomed = await startServer(peers.server, path);
    try {
      const r = await runClient(peers.client, path, ['--header', 'x-exit: 1']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^call failed: /);
      expect(await doomed.exited).toEqual({ code: 0, signal: null });
    } finally {
      await doomed.stop();
    }
  });

  it('fails cleanly when nothing listens on the socket', async () => {
    const path = tempSocketPath();
    const r = await runClient(peers.client, path);
    rmSync(dirname(path), { recursive: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^call failed: connect\(\): No such file or directory/);
  });
});
