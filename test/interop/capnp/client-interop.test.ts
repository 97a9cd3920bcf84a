/**
 * authkit's RPC client against the official Cap'n Proto C++ implementation (server.c++ in this
 * folder, built with Debian's libcapnp): the wire pattern Proksi uses, exceptions, cancels,
 * a server killed mid-call, many calls in flight, 10,000 headers, and the wrong interface ID.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AuthServiceClient, CallError } from '../../../src/capnp/client.js';
import type { AuthRequest } from '../../../src/capnp/wire/schema.js';
import { buildPeers, capnpAvailable, startServer, tempSocketPath, type RunningServer } from './peers.js';
import { runCli } from '../../cli/run.js';

const available = capnpAvailable();
if (!available && process.env.CI) throw new Error('CI must install capnproto, libcapnp-dev, g++ and pkg-config');

const request = (headers: [string, string][], extra: Partial<AuthRequest> = {}): AuthRequest => ({
  method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.5:40000', headers: headers.map(([name, value]) => ({ name, value })), ...extra,
});

describe.skipIf(!available)('the TS client against the C++ server', async () => {
  const peers = available ? await buildPeers() : undefined!;
  const servers: RunningServer[] = [];
  const start = async (binary = peers.server): Promise<{ path: string; server: RunningServer }> => {
    const path = tempSocketPath();
    const server = await startServer(binary, path);
    servers.push(server);
    return { path, server };
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('bootstraps, pipelines the first call, then calls the imported capability 100 times on one connection', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    for (let i = 0; i < 100; i++) {
      const { decision } = await client.check(request([['authorization', 'Bearer good']]), { timeoutMs: 2000 });
      expect(decision).toMatchObject({ action: 'pass', upstreamValue: 'user=alice' });
    }
    client.close();
  });

  it('sends the request exactly as built (the server echoes what arrived)', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    const { decision } = await client.check(request([['x-echo', '1'], ['accept', '*/*'], ['accept', 'text/html']], { method: 'POST', path: '/a%2Fb', query: 'x=1&y', clientIp: '[2001:db8::1]:443' }));
    expect(JSON.parse(decision.upstreamValue)).toMatchObject({
      method: 'POST', host: 'example.com', path: '/a%2Fb', query: 'x=1&y', clientIp: '[2001:db8::1]:443', headerCount: 3,
      headers: [['x-echo', '1'], ['accept', '*/*'], ['accept', 'text/html']],
    });
    client.close();
  });

  it('reads block and redirect decisions', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    expect((await client.check(request([]))).decision).toMatchObject({ action: 'block', statusCode: 401 });
    expect((await client.check(request([['authorization', 'Bearer good']], { path: '/redirect/x' }))).decision).toMatchObject({ action: 'redirect', statusCode: 302, redirectLocation: 'https://login.example/' });
    client.close();
  });

  it('keeps 64 calls in flight on one connection and matches every answer to its question', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    const results = await Promise.all(Array.from({ length: 640 }, (_, i) => client.check(request(i % 2 ? [['authorization', 'Bearer good']] : []), { timeoutMs: 5000 })));
    results.forEach((r, i) => expect(r.decision.action).toBe(i % 2 ? 'pass' : 'block'));
    client.close();
  });

  it('turns a service exception into a failed call, and the connection keeps working', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    const error = await client.check(request([['x-throw', '1']])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CallError);
    expect((error as CallError).kind).toBe('exception');
    expect((error as CallError).message).toMatch(/x-throw requested/);
    expect((await client.check(request([['authorization', 'Bearer good']]))).decision.action).toBe('pass');
    client.close();
  });

  it('cancels a slow call with Finish before its Return, and the server sees the cancel', async () => {
    const { path, server } = await start();
    const client = await AuthServiceClient.connect(path);
    const error = await client.check(request([['x-delay-ms', '2000'], ['authorization', 'Bearer good']]), { timeoutMs: 200 }).catch((e: unknown) => e);
    expect((error as CallError).kind).toBe('timeout');
    await server.waitForLine(/cancelled/, 3000);
    expect((await client.check(request([['authorization', 'Bearer good']]))).decision.action).toBe('pass');
    client.close();
  });

  it('rejects the pending call when the server is killed mid-call', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    const error = await client.check(request([['x-exit', '1']]), { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect((error as CallError).kind).toBe('disconnected');
    await expect(client.check(request([]))).rejects.toBeInstanceOf(CallError);
  });

  it('carries 10,000 headers and a 64 KiB value', async () => {
    const { path } = await start();
    const client = await AuthServiceClient.connect(path);
    const many = Array.from({ length: 10_000 }, (_, i): [string, string] => [`x-h${i}`, `v${i}`]);
    const echoed = await client.check(request([['x-echo', '1'], ...many]), { timeoutMs: 10_000 });
    expect(JSON.parse(echoed.decision.upstreamValue).headerCount).toBe(10_001);
    const big = await client.check(request([['authorization', 'Bearer good'], ['x-big', 'a'.repeat(65536)]]), { timeoutMs: 5000 });
    expect(big.decision.action).toBe('pass');
    client.close();
  });

  it('gets "Requested interface not implemented" from a schema compiled with another file ID', async () => {
    const { path } = await start(peers.wrongIdServer);
    const client = await AuthServiceClient.connect(path);
    const error = await client.check(request([])).catch((e: unknown) => e);
    expect((error as CallError).message).toMatch(/Requested interface not implemented/);
    client.close();
  });

  it('capnp-check prints Proksi\'s outcome for a decision from the C++ service', async () => {
    const { path } = await start();
    const result = await runCli(['capnp-check', '--socket', path, '--header', 'authorization: Bearer good', '--header', 'x-proksi-auth-context: spoofed', '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(json.decision).toEqual({ action: 'pass', statusCode: 0, upstreamValue: 'user=alice', redirectLocation: '', responseBody: '' });
    expect(json.proksi.headers).toEqual([['Host', 'example.com'], ['authorization', 'Bearer <redacted>'], ['x-proksi-auth-context', 'user=alice']]);
    const fail = await runCli(['capnp-check', '--socket', path, '--header', 'x-delay-ms: 2000', '--timeout-ms', '100', '--json']);
    expect(fail.code).toBe(1);
    expect(JSON.parse(fail.stdout)).toMatchObject({ decision: null, proksi: { outcome: 'blocked', status: 403 }, error: { kind: 'timeout' } });
  });

  it('capnp-check sends the client\'s Host as one of the AuthRequest\'s headers, as the C++ service receives them', async () => {
    const { path } = await start();
    const result = await runCli(['capnp-check', '--socket', path, '--host', 'app.example:8080', '--header', 'x-echo: 1', '--header', 'Accept: */*', '--client-ip', '[2001:DB8:0::1]:443', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(JSON.parse(result.stdout).decision.upstreamValue)).toMatchObject({
      host: 'app.example', clientIp: '[2001:db8::1]:443', headerCount: 3,
      headers: [['host', 'app.example:8080'], ['x-echo', '1'], ['accept', '*/*']],
    });
  });
});

describe.skipIf(!available)('capnp-check --conformance against the C++ server', async () => {
  const peers = available ? await buildPeers() : undefined!;
  it('passes every check with a fixture, and writes a JUnit report', async () => {
    const path = tempSocketPath();
    const server = await startServer(peers.server, path);
    const { mkdtempSync, writeFileSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'authkit-capnp-conf-'));
    writeFileSync(join(dir, 'fixture.json'), JSON.stringify({
      pass: [{ headers: [['authorization', 'Bearer good']] }], block: [{ path: '/admin' }],
      redirect: [{ path: '/redirect/x', headers: [['authorization', 'Bearer good']] }],
    }));
    try {
      const result = await runCli(['capnp-check', '--socket', path, '--conformance', '--fixture', join(dir, 'fixture.json'), '--junit', join(dir, 'report.xml')]);
      expect(result.stdout).toMatch(/15 checks: 14 passed, 1 info/);
      expect(result.code).toBe(0);
      expect(readFileSync(join(dir, 'report.xml'), 'utf8')).toMatch(/<testsuite [^>]*tests="15"[^>]*failures="0"/);
    } finally {
      await server.stop();
    }
  });
});
