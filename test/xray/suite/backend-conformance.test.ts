/**
 * `xray-backend` must pass the conformance suite itself: every dialect, with the demo users and
 * the matching fixture (its revoke hook pointed at this backend's admin API).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../helpers.js';
import { runSuite, type SuiteReport } from '../../../src/conformance/runner.js';
import { GoTransport } from '../../../src/xray/transport.js';
import { dialectNamed } from '../../../src/xray/wire/dialects/index.js';
import { fixtureCapabilities, parseFixture } from '../../../src/xray/suite/fixture.js';
import { extAuthSuite, inapplicableWithout, targetCapabilities } from '../../../src/xray/suite/extauth.js';
import { hysteriaSuite } from '../../../src/xray/suite/hysteria.js';
import type { XraySuiteContext } from '../../../src/xray/suite/context.js';
import { startXrayBackend, type XrayBackend } from '../../../src/xray/server/server.js';

const fixtures = join(ROOT, 'fixtures', 'xray');
const SECRET = 'conformance-secret';
const started: XrayBackend[] = [];
afterAll(async () => {
  await Promise.all(started.map((b) => b.close()));
});

async function run(
  dialectName: string, usersFile: string, fixtureFile: string, auth: { secret?: string; headers: [string, string][] }, adminSecret = auth.secret,
): Promise<SuiteReport> {
  const dialect = dialectNamed(dialectName);
  const backend = await startXrayBackend({ dialect, usersFile: join(fixtures, usersFile), port: 0, secret: adminSecret, headers: auth.headers });
  // The Hysteria fixture's hooks carry the admin secret from this variable, as a user's would.
  process.env.XRAY_ADMIN_SECRET = adminSecret ?? '';
  started.push(backend);
  // The fixture's hooks name the README's port; point them at this backend.
  const text = readFileSync(join(fixtures, fixtureFile), 'utf8').split('http://127.0.0.1:8080/').join(backend.url);
  const fixture = parseFixture(JSON.parse(text), fixtureFile, dialect.reply === 'extauth-user');
  const transport = new GoTransport();
  const ctx: XraySuiteContext = { target: { url: backend.url, dialect, ...auth, timeoutSeconds: 5 }, fixture, transport, burst: 100 };
  const has = new Set([...fixtureCapabilities(fixture), ...targetCapabilities(ctx)]);
  try {
    return await runSuite(dialect.reply === 'extauth-user' ? extAuthSuite : hysteriaSuite, ctx, { has: (c) => has.has(c), inapplicable: inapplicableWithout, timeoutMs: 20_000 });
  } finally {
    transport.close();
  }
}

/**
 * Every fail, error and warning, but the SHOULD half of the latency checks (X15 under 200 ms,
 * H06 under 500 ms): on a busy machine one slow request of 40 is a warning about the machine.
 */
function failures(report: SuiteReport): string[] {
  const latencyWarning = (r: SuiteReport['results'][number]): boolean => r.status === 'warn' && (r.id === 'X15' || r.id === 'H06');
  return report.results.filter((r) => (r.status === 'fail' || r.status === 'error' || r.status === 'warn') && !latencyWarning(r)).map((r) => `${r.id} ${r.status}: ${r.message ?? ''}`);
}

describe('xray-backend passes the conformance suite', () => {
  it.each([
    ['wiki', { headers: [['X-Auth', 'conformance-token']] as [string, string][] }],
    ['wiki', { secret: SECRET, headers: [] as [string, string][] }],
    ['src', { secret: SECRET, headers: [] as [string, string][] }],
  ])('ExtAuth, %s dialect', async (dialect, auth) => {
    const report = await run(dialect, 'users.json', 'conformance.json', auth);
    expect(failures(report)).toEqual([]);
    expect(report.passed).toBe(true);
    const status = (id: string): string | undefined => report.results.find((r) => r.id === id)?.status;
    // The fixture exercises the opt-in checks: revocation, IP limit, quota, hints.
    for (const id of ['X01', 'X04', 'X06', 'X22', 'X26', 'X27']) expect(status(id), id).toBe('pass');
    if (dialect === 'wiki') for (const id of ['X28', 'X29']) expect(status(id), id).toBe('pass');
    expect(report.results.find((r) => r.id === 'X13')?.message).toBe('text ids: allow');
  }, 60_000);

  it('passes a second run right after the first: the checks leave no sessions behind', async () => {
    const dialect = dialectNamed('src');
    const backend = await startXrayBackend({ dialect, usersFile: join(fixtures, 'users.json'), port: 0, secret: SECRET });
    started.push(backend);
    const text = readFileSync(join(fixtures, 'conformance.json'), 'utf8').split('http://127.0.0.1:8080/').join(backend.url);
    const fixture = parseFixture(JSON.parse(text), 'conformance.json', true);
    for (let run = 1; run <= 2; run++) {
      const transport = new GoTransport();
      const ctx: XraySuiteContext = { target: { url: backend.url, dialect, secret: SECRET, headers: [], timeoutSeconds: 5 }, fixture, transport, burst: 50 };
      const has = new Set([...fixtureCapabilities(fixture), ...targetCapabilities(ctx)]);
      const report = await runSuite(extAuthSuite, ctx, { has: (c) => has.has(c), inapplicable: inapplicableWithout, timeoutMs: 20_000 });
      transport.close();
      expect(failures(report), `run ${run}`).toEqual([]);
    }
    expect(backend.state.sessions().map((s) => JSON.stringify(s))).toEqual([]);
  }, 60_000);

  it('Hysteria 2', async () => {
    // Hysteria sends no secret: only the revoke hooks carry it, to the admin API.
    const report = await run('hysteria2', 'hysteria-users.json', 'hysteria-conformance.json', { headers: [] }, SECRET);
    expect(failures(report)).toEqual([]);
    expect(report.passed).toBe(true);
    for (const id of ['H01', 'H02', 'H04', 'H11']) expect(report.results.find((r) => r.id === id)?.status, id).toBe('pass');
  }, 60_000);
});
