/**
 * The official C++ client (client.c++, Debian's libcapnp) against authkit's capnp-serve: the
 * other direction of the interop, and capnp-serve passing its own conformance suite.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAuthServer } from '../../../src/capnp/server/server.js';
import { loadRulesFile } from '../../../src/capnp/server/rules.js';
import { decideByRules } from '../../../src/capnp/server/rule-match.js';
import { buildPeers, capnpAvailable, parseClientOutput, runClient, tempSocketPath } from './peers.js';
import { runCli } from '../../cli/run.js';
import { ROOT } from '../../helpers.js';

const available = capnpAvailable();

describe.skipIf(!available)('the C++ client against capnp-serve', async () => {
  const peers = available ? await buildPeers() : undefined!;
  const rules = await loadRulesFile(join(ROOT, 'fixtures', 'capnp-serve', 'rules.json'));
  const path = tempSocketPath();
  const server = await startAuthServer({
    socketPath: path, logCalls: false,
    decide: async (request) => {
      const delay = Number(request.headers.find((h) => h.name === 'x-delay-ms')?.value ?? 0);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      return decideByRules(rules, request);
    },
  });
  afterAll(() => server.close());

  it('gets pass, block and redirect decisions by the rules', async () => {
    const pass = parseClientOutput((await runClient(peers.client, path, ['--print'])).stdout);
    expect(pass.decisions[0]).toMatchObject({ action: 'pass', upstreamValue: 'user=alice' });
    const block = parseClientOutput((await runClient(peers.client, path, ['--print', '--headers', '0', '--path', '/admin'])).stdout);
    expect(block.decisions[0]).toMatchObject({ action: 'block', statusCode: 403 });
    const redirect = parseClientOutput((await runClient(peers.client, path, ['--print', '--headers', '0', '--path', '/login'])).stdout);
    expect(redirect.decisions[0]).toMatchObject({ action: 'redirect', statusCode: 302, redirectLocation: 'https://login.example/' });
  });

  it('answers 2000 calls with 64 in flight, and 10,000 headers', async () => {
    const many = await runClient(peers.client, path, ['--calls', '2000', '--in-flight', '64']);
    expect(many.code).toBe(0);
    expect(parseClientOutput(many.stdout).summary?.calls).toBe(2000);
    const headers = await runClient(peers.client, path, ['--headers', '10000', '--print']);
    expect(headers.code).toBe(0);
  });

  it('answers the C++ client built with the wrong file ID with the C++ library\'s own exception, and keeps serving', async () => {
    const wrong = await runClient(peers.wrongIdClient, path);
    expect(wrong.code).toBe(1);
    // The wrong file ID gives another interface ID (…a14's), named in the exception as C++ names it.
    expect(wrong.stderr).toMatch(/call failed: .*Requested interface not implemented/);
    expect(wrong.stderr).toMatch(/requestedTypeId = \d+/);
    expect(wrong.stderr).not.toContain(`requestedTypeId = ${0xe33a260d84ec3ad3n}`);
    const right = parseClientOutput((await runClient(peers.client, path, ['--print'])).stdout);
    expect(right.decisions[0]?.action).toBe('pass');
  });

  it('handles a call the C++ client cancels with Finish before the Return', async () => {
    const cancelled = await runClient(peers.client, path, ['--header', 'x-delay-ms: 500', '--timeout-ms', '50']);
    expect(cancelled.code).toBe(1);
    const after = await runClient(peers.client, path, ['--print']);
    expect(parseClientOutput(after.stdout).decisions[0]?.action).toBe('pass');
  });
});

describe.skipIf(!available)('capnp-serve passes the conformance suite', () => {
  it('as a CLI process, with the demo rules', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authkit-serve-conf-'));
    const socket = join(dir, 'auth.sock');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'capnp-serve', '--socket', socket, '--rules', join(ROOT, 'fixtures', 'capnp-serve', 'rules.json'), '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('capnp-serve did not start')), 10_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        if (/listening/.test(chunk.toString())) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    writeFileSync(join(dir, 'fixture.json'), JSON.stringify({
      pass: [{ headers: [['authorization', 'Bearer good']] }], block: [{ path: '/admin' }], redirect: [{ path: '/login' }],
    }));
    try {
      const result = await runCli(['capnp-check', '--socket', socket, '--conformance', '--fixture', join(dir, 'fixture.json')]);
      expect(result.stdout).toMatch(/PASSED/);
      expect(result.code).toBe(0);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
