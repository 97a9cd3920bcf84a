/**
 * What `npm pack` ships installs and runs on its own: in an empty directory, without the source
 * tree, `authkit --help` works, the demo finds its fixtures, and a program that imports only the
 * package finds the curated API the README lists and can use it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const npm = (args: string[], cwd: string): string =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } });

describe('npm pack', () => {
  it('installs into an empty directory and runs', () => {
    // dist/ was built by `npm test`; packing must not rebuild it under the other tests' feet.
    npm(['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))!;
    const app = join(dir, 'app');
    execFileSync('mkdir', [app]);
    npm(['init', '-y'], app);
    npm(['install', '--prefer-offline', '--ignore-scripts', join(dir, tarball)], app);
    const bin = join(app, 'node_modules', '.bin', 'authkit');
    const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
    expect(help).toMatch(/Usage: authkit/);
    expect(help).toMatch(/demo/);
    const demo = JSON.parse(execFileSync(bin, ['demo', '--only', 'capnp', '--json', '--load-seconds', '1'], { encoding: 'utf8', cwd: app, timeout: 60_000 }));
    expect(demo.ok).toBe(true);
    writeFileSync(join(app, 'use.mjs'), LIBRARY_USE);
    const used = JSON.parse(execFileSync(process.execPath, ['use.mjs'], { encoding: 'utf8', cwd: app, timeout: 60_000 }));
    expect(used.exports).toEqual([...PUBLIC_API].sort());
    expect(used.snell).toMatchObject({ ok: true, user: 'bob', index: 1 });
    expect(used.capnp).toMatchObject({ action: 'pass', proksi: 'proxied' });
  }, 300_000);
});

/** The public API, as the README's "Using it as a library" lists it: adding or dropping a name is a decision. */
const PUBLIC_API = [
  'InputError', 'DecodeError',
  'buildFirstPacket', 'sealFrame', 'openFrame', 'encodeRequest', 'decodeRequest', 'decodeReply', 'wrapObfs', 'stripObfs',
  'parseUsers', 'loadUsersFile', 'TrialAuthenticator', 'trialAuthenticate', 'authenticateCapture', 'capturesFromPcap', 'probeSnell', 'startSnellServer',
  'DIALECTS', 'dialectNamed', 'sendEvent', 'runSessions', 'startXrayBackend',
  'AuthServiceClient', 'CallError', 'buildAuthRequest', 'proksiOutcome', 'PROKSI_DEFAULTS', 'startAuthServer',
  'extAuthSuite', 'hysteriaSuite', 'capnpSuite', 'runSuite', 'renderText', 'renderJson', 'renderJunit',
  'runLoad', 'summarize',
];

/** A program that knows only the package: Snell trial authentication, and a Proksi check() on a simulated service. */
const LIBRARY_USE = `
import * as authkit from 'authkit';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const { buildFirstPacket, trialAuthenticate, startAuthServer, AuthServiceClient, buildAuthRequest, proksiOutcome, PROKSI_DEFAULTS } = authkit;
const users = [{ name: 'alice', psk: 'alice-psk' }, { name: 'bob', psk: 'bob-psk' }];
const { wire } = await buildFirstPacket({ psk: 'bob-psk', request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } });
const snell = await trialAuthenticate(users, wire);
const socketPath = join(mkdtempSync(join(tmpdir(), 'authkit-use-')), 'auth.sock');
const server = await startAuthServer({ socketPath, decide: () => ({ action: 'pass', statusCode: 200, upstreamValue: 'user=1', redirectLocation: '', responseBody: '' }) });
const client = await AuthServiceClient.connect(socketPath);
const clientRequest = { method: 'GET', path: '/', query: '', clientIp: '203.0.113.7:51234', headers: [['host', 'example.com']] };
const { decision } = await client.check(buildAuthRequest(clientRequest, PROKSI_DEFAULTS).request);
const { proksi } = proksiOutcome(decision, clientRequest, PROKSI_DEFAULTS);
client.close();
await server.close();
console.log(JSON.stringify({ exports: Object.keys(authkit).sort(), snell: { ok: snell.ok, user: snell.user, index: snell.index }, capnp: { action: decision.action, proksi: proksi.outcome } }));
`;
