/**
 * capnp-tap between the official C++ client (Debian's libcapnp) and capnp-serve: the client gets
 * the same decisions with and without the tap, the bytes a raw client receives are identical,
 * each check() is recorded with its decision and what Proksi does, and a replay against changed
 * rules lists exactly the decisions that changed. The tap survives either side going away.
 */
import net from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../../src/capnp/server/server.js';
import { loadRulesFile } from '../../../src/capnp/server/rules.js';
import { decideByRules } from '../../../src/capnp/server/rule-match.js';
import { startCapnpTap, type TappedCheck } from '../../../src/capnp/tap/tap.js';
import { capnpTapCommand } from '../../../src/cli/capnp-tap.js';
import { PROKSI_DEFAULTS } from '../../../src/capnp/model.js';
import { encodeBootstrap, encodeCheckCall } from '../../../src/capnp/wire/rpc.js';
import { FrameReader } from '../../../src/capnp/wire/codec.js';
import type { Relay } from '../../../src/tap/relay.js';
import { ROOT } from '../../helpers.js';
import { runMain } from '../../cli/run.js';
import { buildPeers, capnpAvailable, parseClientOutput, runClient, tempSocketPath } from './peers.js';

const available = capnpAvailable();
if (!available && process.env.CI) throw new Error('CI must install capnproto, libcapnp-dev, g++ and pkg-config');

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

/** Every byte a raw client receives for `frames` sent, until `want` whole frames have come back. */
function rawBytes(path: string, frames: Uint8Array[], want: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path }, () => frames.forEach((f) => socket.write(f)));
    const chunks: Buffer[] = [];
    const reader = new FrameReader();
    let got = 0;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      got += reader.push(c).length;
      if (got >= want) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe.skipIf(!available)('capnp-tap between the C++ client and capnp-serve', async () => {
  const peers = available ? await buildPeers() : undefined!;
  const rules = await loadRulesFile(join(ROOT, 'fixtures', 'capnp-serve', 'rules.json'));
  const servers: AuthServer[] = [];
  const relays: Relay[] = [];
  const serve = async (path = tempSocketPath(), decide = (r: Parameters<typeof decideByRules>[1]) => decideByRules(rules, r)): Promise<string> => {
    servers.push(await startAuthServer({ socketPath: path, logCalls: false, decide }));
    return path;
  };
  const tap = async (upstream: string): Promise<{ path: string; checks: TappedCheck[]; down: string[] }> => {
    const path = tempSocketPath('tap.sock');
    const checks: TappedCheck[] = [];
    const down: string[] = [];
    relays.push(await startCapnpTap({ listen: path, upstream, proksi: PROKSI_DEFAULTS, onExchange: (c) => checks.push(c), log: () => undefined, onUpstreamDown: (_id, why) => down.push(why) }));
    return { path, checks, down };
  };
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.close()));
    await Promise.all(servers.map((s) => s.close()));
  });

  it('the C++ client gets the same decisions through the tap, and each check() is recorded with what Proksi does', async () => {
    const service = await serve();
    const t = await tap(service);
    const runs = [['--print'], ['--print', '--headers', '0', '--path', '/admin'], ['--print', '--headers', '0', '--path', '/login']];
    for (const args of runs) {
      const direct = await runClient(peers.client, service, args);
      const through = await runClient(peers.client, t.path, args);
      expect(through.code).toBe(0);
      expect(parseClientOutput(through.stdout).decisions).toEqual(parseClientOutput(direct.stdout).decisions);
    }
    await until(() => t.checks.length === 3);
    expect(t.checks.map((c) => [c.request.path, c.decision?.action, c.proksi.outcome, c.proksi.status])).toEqual([
      ['/', 'pass', 'proxied', undefined], ['/admin', 'block', 'blocked', 403], ['/login', 'redirect', 'redirected', 302],
    ]);
    // 2000 calls, 64 in flight: every one paired with its Return.
    const many = await runClient(peers.client, t.path, ['--calls', '2000', '--in-flight', '64']);
    expect(many.code).toBe(0);
    await until(() => t.checks.length === 2003);
    expect(t.checks).toHaveLength(2003);
  });

  it('a raw client receives the same bytes with and without the tap', async () => {
    const service = await serve();
    const t = await tap(service);
    const request = { method: 'GET', host: 'example.com', path: '/admin', query: '', clientIp: '203.0.113.5:40000', headers: [{ name: 'x-a', value: 'b' }] };
    const frames = [encodeBootstrap(0), encodeCheckCall(1, { promisedAnswer: 0 }, request)];
    const direct = await rawBytes(service, frames, 2);
    const through = await rawBytes(t.path, frames, 2);
    expect(through.length).toBeGreaterThan(0);
    expect(through.equals(direct)).toBe(true);
  });

  it('records with --record-secrets; a replay against changed rules lists exactly the changed decisions', async () => {
    const service = await serve();
    const dir = mkdtempSync(join(tmpdir(), 'authkit-capnp-tap-'));
    const record = join(dir, 'checks.jsonl');
    const listen = tempSocketPath('tap-cli.sock');
    const stop = new AbortController();
    let listening: Relay | undefined;
    const running = capnpTapCommand({ signal: stop.signal, onListening: (r) => (listening = r), log: () => undefined }).exitOverride()
      .parseAsync(['node', 'capnp-tap', '--listen', listen, '--upstream', service, '--record', record, '--record-secrets', '--quiet']);
    await until(() => listening !== undefined);
    for (const args of [['--print'], ['--print', '--headers', '0', '--path', '/admin']]) expect((await runClient(peers.client, listen, args)).code).toBe(0);
    stop.abort();
    await running;
    const lines = readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.verdict)).toEqual(['pass "user=alice"', 'block 403']);
    expect(lines[0].request.headers.find((h: { name: string }) => h.name === 'authorization').value).toBe('Bearer good');

    expect(await runMain(['capnp-check', '--socket', service, '--replay', record, '--speed', '100'])).toMatchObject({ code: 0, stdout: expect.stringContaining('2 same, 0 changed') });
    // New rules: /admin now redirects; the pass is unchanged.
    const changed = await serve(undefined, (r) => (r.path === '/admin' ? { action: 'redirect', statusCode: 302, redirectLocation: 'https://sso.example/', upstreamValue: '', responseBody: '' } : decideByRules(rules, r)));
    const result = await runMain(['capnp-check', '--socket', changed, '--replay', record, '--speed', '100', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ exchanges: 2, changed: 1, changes: [{ line: 2, from: 'block 403', to: 'redirect 302 https://sso.example/' }] });
    // Through the load engine: classes compared, the load report on stdout.
    const load = await runMain(['capnp-check', '--socket', changed, '--replay', record, '--speed', '100', '--load', '--json']);
    expect(load.code).toBe(1);
    expect(JSON.parse(load.stdout)).toMatchObject({ requests: 2, outcomes: { pass: 1, redirect: 1 } });
    expect(load.stderr).toMatch(/2 checks replayed .* 1 same, 1 changed\n  block -> redirect: 1/);
  });

  it('an upstream that is down closes the client\'s connection, and the next client gets a new upstream connection', async () => {
    const path = tempSocketPath('later.sock');
    const t = await tap(path);
    const refused = await runClient(peers.client, t.path, ['--print']);
    expect(refused.code).not.toBe(0);
    await until(() => t.down.length === 1);
    expect(t.down[0]).toMatch(/no such socket|connection refused/);
    await serve(path);
    const served = await runClient(peers.client, t.path, ['--print']);
    expect(served.code).toBe(0);
    expect(parseClientOutput(served.stdout).decisions[0]).toMatchObject({ action: 'pass' });
  });
});
