/** snell-serve under attack: junk first frames that each cost a full scan, garbage, truncated headers, slowloris, idle floods, cut frames, and reloads of files that never end, block or are not UTF-8. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probeSnell } from '../../src/snell/client.js';
import { selectKdf } from '../../src/snell/wire/kdf.js';
import { askThroughout, Attacks, openFds, reloadBadFiles, replaceFile, rssBytes, startServer, stopWithSigterm, within, type Served } from './chaos.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-chaos-snell-'));
const users = join(dir, 'users.txt');
const userLines = (count: number, extra = ''): string => `${Array.from({ length: count }, (_, i) => `user-${i}:psk-${i}`).join('\n')}\n${extra}`;
writeFileSync(users, userLines(200));
let served: Served | undefined;
afterAll(() => {
  served?.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('snell-serve under attack', () => {
  it('lives, answers throughout, stays bounded, logs every reload and stops on SIGTERM', async () => {
    served = await startServer(['snell-serve', '--listen', '127.0.0.1:0', '--users', users, '--echo', '--quiet'], /listening on 127\.0\.0\.1:(\d+)/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(served.log())![1]);
    const pid = served.child.pid!;
    const kdf = await selectKdf();
    const ping = async (psk: string): Promise<string> => (await probeSnell({ host: '127.0.0.1', port, psk, version: 4, obfs: 'off', action: { kind: 'ping' }, timeoutMs: 10_000, kdf })).outcome;
    // The first PING puts 127.0.0.1's user in the IP cache: during the flood it is tried at once.
    expect(await ping('psk-7')).toBe('authenticated');
    const baseline = { rss: rssBytes(pid), fds: openFds(pid) };
    const attacks = new Attacks({ port });
    attacks.send(150, () => randomBytes(64));
    attacks.send(20, () => randomBytes(20));
    attacks.slow(30, randomBytes(39));
    attacks.idle(300);
    attacks.cut(20, randomBytes(600));
    const during = await askThroughout(async () => expect(await ping('psk-7')).toBe('authenticated'), 3000);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect(served.child.exitCode).toBeNull();
    const peakRss = rssBytes(pid);
    attacks.stop();
    expect(await ping('psk-7')).toBe('authenticated');
    expect(await within(10_000, () => openFds(pid) <= baseline.fds + 2)).toBe(true);
    expect(peakRss - baseline.rss).toBeLessThan(200 * 2 ** 20);

    // A PSK byte that is not UTF-8 is refused with its line, as at start: never turned into U+FFFD.
    await reloadBadFiles(served, users, Buffer.concat([Buffer.from(userLines(200)), Buffer.from('bad:psk-\xff\n', 'latin1')]), /not reloaded.*:201: not valid UTF-8/);
    const replace = (make: (path: string) => void): void => replaceFile(users, make);
    expect(await ping('psk-newcomer')).toBe('rejected');
    replace((p) => writeFileSync(p, userLines(200, 'newcomer:psk-newcomer\n')));
    expect(await within(10_000, () => /reloaded, 201 users/.test(served!.log()))).toBe(true);
    expect(await ping('psk-newcomer')).toBe('authenticated');

    replace((p) => symlinkSync('/dev/zero', p));
    expect(await stopWithSigterm(served.child)).toBeLessThan(5000);
    expect(served.log()).toMatch(/snell-serve: stopping/);
    expect(served.stdout()).toMatch(/connections \d+: \d+ authenticated, \d+ rejected, \d+ busy/);
  }, 60_000);
});
