/** capnp-serve under attack: garbage, huge declared frames, partial frames, Bootstrap floods, cut calls, idle floods, and reloads of files that never end, block or are broken. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthServiceClient } from '../../src/capnp/client.js';
import { buildAuthRequest, clientRequest, PROKSI_DEFAULTS } from '../../src/capnp/model.js';
import { encodeBootstrap, encodeCheckCall } from '../../src/capnp/wire/rpc.js';
import { askThroughout, Attacks, openFds, reloadBadFiles, replaceFile, rssBytes, startServer, stopWithSigterm, within, type Served } from './chaos.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-chaos-capnp-'));
const rules = join(dir, 'rules.json');
const socket = join(dir, 'auth.sock');
const rulesFor = (...paths: string[]): string => JSON.stringify({ rules: paths.map((p) => ({ match: { pathPrefix: p }, decision: { action: 'pass', upstreamValue: `ok${p}` } })) });
writeFileSync(rules, rulesFor('/good'));
let served: Served | undefined;
afterAll(() => {
  served?.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function decide(path: string): Promise<string> {
  const client = await AuthServiceClient.connect(socket, 5000);
  try {
    const { decision } = await client.check(buildAuthRequest(clientRequest({ path }), PROKSI_DEFAULTS).request, { timeoutMs: 5000 });
    return decision.action;
  } finally {
    client.close();
  }
}

/** A frame header announcing one segment of `words` words. */
const frameHeader = (words: number): Buffer => Buffer.from(Uint32Array.of(0, words).buffer);

describe('capnp-serve under attack', () => {
  it('lives, answers throughout, stays bounded, logs every reload and stops on SIGTERM', async () => {
    served = await startServer(['capnp-serve', '--socket', socket, '--rules', rules, '--quiet'], /listening on unix:/);
    const pid = served.child.pid!;
    const baseline = { rss: rssBytes(pid), fds: openFds(pid) };
    const attacks = new Attacks({ path: socket });
    attacks.send(20, () => randomBytes(4096));
    attacks.send(10, () => Buffer.concat([frameHeader(0x7fffffff), randomBytes(64)]));
    attacks.send(10, () => Buffer.concat([frameHeader(1 << 20), Buffer.alloc(1 << 20)]));
    // Bootstraps never finished: past the per-connection limit the connection is aborted.
    attacks.send(1, () => Buffer.concat(Array.from({ length: 70_000 }, (_, i) => encodeBootstrap(i))));
    attacks.cut(20, Buffer.from(encodeCheckCall(1, { promisedAnswer: 0 }, buildAuthRequest(clientRequest({ path: '/good' }), PROKSI_DEFAULTS).request)));
    attacks.slow(30, Buffer.from(encodeBootstrap(0)));
    attacks.idle(200);
    const during = await askThroughout(async () => expect(await decide('/good')).toBe('pass'), 3000);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect(served.child.exitCode).toBeNull();
    const peakRss = rssBytes(pid);
    attacks.stop();
    expect(await decide('/good')).toBe('pass');
    expect(await within(10_000, () => openFds(pid) <= baseline.fds + 2)).toBe(true);
    expect(peakRss - baseline.rss).toBeLessThan(200 * 2 ** 20);

    await reloadBadFiles(served, rules, '{"rules": [{"match": ');
    const replace = (make: (path: string) => void): void => replaceFile(rules, make);
    expect(await decide('/good')).toBe('pass');
    expect(await decide('/new')).toBe('block');
    replace((p) => writeFileSync(p, rulesFor('/good', '/new')));
    expect(await within(10_000, () => /reloaded, 2 rules/.test(served!.log()))).toBe(true);
    expect(await decide('/new')).toBe('pass');

    replace((p) => symlinkSync('/dev/zero', p));
    expect(await stopWithSigterm(served.child)).toBeLessThan(5000);
    expect(served.log()).toMatch(/capnp-serve: stopping/);
  }, 60_000);
});
