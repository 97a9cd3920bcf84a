/**
 * The ExtAuth suite against a backend that gets the contract wrong in the ways the issue's
 * users found out in production: the checks that should fail do, and say why.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runSuite } from '../../../src/conformance/runner.js';
import { renderJunit } from '../../../src/report/junit.js';
import { GoTransport } from '../../../src/xray/transport.js';
import { src } from '../../../src/xray/wire/dialects/src.js';
import { parseFixture } from '../../../src/xray/suite/fixture.js';
import { extAuthSuite, targetCapabilities } from '../../../src/xray/suite/extauth.js';
import type { XraySuiteContext } from '../../../src/xray/suite/context.js';
import { fixtureCapabilities } from '../../../src/xray/suite/fixture.js';
import { httpServer } from '../servers.js';

const alice = '11111111-1111-4111-8111-111111111111';
const disabled = '22222222-2222-4222-8222-222222222222';

// Denies with a 200 and a null user, never checks the secret, crashes on bad JSON, answers
// heartbeats with 204 and connects for unknown ids with 404.
const broken = await httpServer((request, res) => {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(request.body);
  } catch {
    res.statusCode = 500;
    return res.end('internal error');
  }
  if (event.type === 'authorization') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(event.credential === alice ? '{"user":{"email":"alice@example.com","level":0}}' : '{"user":null}');
  }
  res.statusCode = event.type === 'connect' ? 404 : 204;
  res.end();
});
afterAll(() => broken.close());

describe('the ExtAuth suite against a deliberately broken backend', async () => {
  const transport = new GoTransport();
  const ctx: XraySuiteContext = {
    target: { url: broken.url, dialect: src, secret: 'expected-secret', headers: [], timeoutSeconds: 2 },
    fixture: parseFixture({ allowed: [alice], denied: [{ credential: disabled, why: 'disabled' }] }, 'fixture', true),
    transport, burst: 20,
  };
  const has = new Set([...fixtureCapabilities(ctx.fixture), ...targetCapabilities(ctx)]);
  const report = await runSuite(extAuthSuite, ctx, { has: (c) => has.has(c) });
  transport.close();
  const result = (id: string) => report.results.find((r) => r.id === id)!;

  it('fails the run', () => {
    expect(report.passed).toBe(false);
  });

  it.each([
    ['X03', 'fail', /a random unknown UUID: protocol-error: "user" is null/],
    ['X04', 'fail', /disabled/],
    ['X05', 'warn', /a deny sent as 200/],
    ['X06', 'fail', /no secret or header: Xray would ALLOW it/],
    ['X07', 'fail', /invalid JSON: answered 500/],
    ['X19', 'fail', /connect answered 404/],
    ['X21', 'fail', /heartbeat 1 answered 204/],
  ])('%s is %s, saying why', (id, status, message) => {
    expect(result(id).status).toBe(status);
    expect(result(id).message).toMatch(message);
  });

  it('passes what the backend gets right', () => {
    expect(result('X01').status).toBe('pass');
    expect(result('X14').status).toBe('pass');
  });

  it('shows what was sent and received, with the credential masked', () => {
    const x03 = result('X03');
    expect(JSON.stringify(x03.evidence)).toMatch(/"user\\":null/);
    expect(JSON.stringify(report)).not.toContain(alice);
  });

  it('skips the checks the fixture does not enable, saying what is missing', () => {
    expect(result('X22').status).toBe('skip');
    expect(result('X22').message).toMatch(/fixture\.revoke/);
  });

  it('writes a JUnit report that names the failed checks', () => {
    const xml = renderJunit(report);
    expect(xml).toMatch(/<testcase [^>]*name="X06[^"]*"[^>]*>\s*<failure/);
  });
});

describe('a backend that accepts connections and never replies', () => {
  it('X05 is not passed on no reply', async () => {
    const { rawServer } = await import('../servers.js');
    const silent = await rawServer((socket) => socket.once('data', () => socket.destroy()));
    const transport = new GoTransport();
    try {
      const ctx: XraySuiteContext = { target: { url: silent.url, dialect: src, headers: [], timeoutSeconds: 2 }, transport, burst: 1 };
      const report = await runSuite(extAuthSuite, ctx, { only: ['X05'] });
      expect(report.results[0]).toMatchObject({ id: 'X05', status: 'warn' });
      expect(report.results[0]!.message).toMatch(/^no reply: /);
    } finally {
      transport.close();
      await silent.close();
    }
  });
});

describe('a fixture hook that fails', () => {
  it('says it is the fixture\'s revoke.hook, not the backend, that failed', async () => {
    const { closedPortUrl } = await import('../servers.js');
    const allowAll = await httpServer((request, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"user":{"email":"a@x","level":0}}');
    });
    const dead = await closedPortUrl();
    const transport = new GoTransport();
    try {
      const fixture = parseFixture({ allowed: [alice], revoke: { credential: disabled, hook: { url: dead } } }, 'my-fixture.json', true);
      const ctx: XraySuiteContext = { target: { url: allowAll.url, dialect: src, headers: [], timeoutSeconds: 2 }, fixture, transport, burst: 1 };
      const report = await runSuite(extAuthSuite, ctx, { only: ['X22'], has: (c) => c === 'fixture.revoke' });
      expect(report.results[0]).toMatchObject({ id: 'X22', status: 'error' });
      expect(report.results[0]!.message).toMatch(/the fixture's my-fixture\.json: revoke\.hook: cannot connect: connection refused/);
    } finally {
      transport.close();
      await allowAll.close();
    }
  });
});
