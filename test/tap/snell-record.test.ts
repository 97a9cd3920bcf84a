/**
 * snell-serve --record and snell-auth --replay: connections recorded by the server, matched again
 * under a new users file; exactly the connections whose user changes are listed (a rotated PSK,
 * a removed user), a miss stays a miss, and a recording of another protocol is refused.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { snellServeCommand } from '../../src/cli/snell-serve.js';
import { probeSnell } from '../../src/snell/client.js';
import { selectKdf } from '../../src/snell/wire/kdf.js';
import { runMain } from '../cli/run.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-snell-record-'));
const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('snell-serve --record, snell-auth --replay', () => {
  it('lists exactly the connections whose user changes under the new users file', async () => {
    const users = Array.from({ length: 30 }, (_, i) => `user-${i}:psk-${i}`);
    writeFileSync(join(dir, 'users.txt'), users.join('\n'));
    const record = join(dir, 'connections.jsonl');
    const stop = new AbortController();
    let port: number | undefined;
    const running = snellServeCommand({ signal: stop.signal, onListening: (p) => (port = p), log: () => undefined }).exitOverride()
      .parseAsync(['node', 'snell-serve', '--listen', '127.0.0.1:0', '--users', join(dir, 'users.txt'), '--record', record, '--quiet', '--echo']);
    await until(() => port !== undefined);
    const kdf = await selectKdf();
    for (const psk of ['psk-3', 'psk-7', 'psk-20', 'not-a-user', 'psk-29']) {
      await probeSnell({ host: '127.0.0.1', port: port!, psk, version: 4, obfs: 'off', action: { kind: 'ping' }, timeoutMs: 5000, kdf });
    }
    stop.abort();
    await running;
    const lines = readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.user)).toEqual(['user-3', 'user-7', 'user-20', null, 'user-29']);
    expect(lines[0]).toMatchObject({ protocol: 'snell', secrets: false, path: expect.any(String), trials: expect.any(Number) });
    expect(lines[0].firstBytes).toMatch(/^([0-9a-f]{2}){39,}$/);

    expect(await runMain(['snell-auth', '--users', join(dir, 'users.txt'), '--replay', record])).toMatchObject({ code: 0, stdout: expect.stringContaining('5 connections replayed') });
    // user-7 rotates its PSK, user-20 is removed, user-29 is renamed: three connections change.
    const next = users.map((u) => (u === 'user-7:psk-7' ? 'user-7:psk-7-rotated' : u === 'user-29:psk-29' ? 'user-twenty-nine:psk-29' : u)).filter((u) => u !== 'user-20:psk-20');
    writeFileSync(join(dir, 'users-next.txt'), next.join('\n'));
    const result = await runMain(['snell-auth', '--users', join(dir, 'users-next.txt'), '--replay', record, '--json']);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ exchanges: 5, same: 2, changed: 3 });
    expect(report.changes.map((c: { line: number; from: string; to: string }) => [c.line, c.from, c.to])).toEqual([
      [2, 'user-7', 'no user'], [3, 'user-20', 'no user'], [5, 'user-29', 'user-twenty-nine'],
    ]);
  });

  it('refuses bad input in one line: a recording of another protocol, bad hex, --obfs in a replay, --record without --users', async () => {
    writeFileSync(join(dir, 'users.txt'), 'a:b\n');
    writeFileSync(join(dir, 'xray.jsonl'), `${JSON.stringify({ protocol: 'xray', offsetMs: 0, secrets: true })}\n`);
    writeFileSync(join(dir, 'no-source.jsonl'), `${JSON.stringify({ protocol: 'snell', offsetMs: 0, secrets: false, user: null, firstBytes: 'ab' })}\n`);
    writeFileSync(join(dir, 'bad-hex.jsonl'), `${JSON.stringify({ protocol: 'snell', offsetMs: 0, secrets: false, source: '10.0.0.1:5', user: null, firstBytes: 'xyz' })}\n`);
    for (const [args, message] of [
      [['--replay', join(dir, 'xray.jsonl')], /xray\.jsonl:1: a recording of xray, not snell/],
      [['--replay', join(dir, 'bad-hex.jsonl')], /bad-hex\.jsonl:1: "firstBytes" must be hex/],
      [['--replay', join(dir, 'xray.jsonl'), '--obfs', 'http'], /--obfs belongs to/],
      [['--replay', join(dir, 'no-source.jsonl')], /no-source\.jsonl:1: "source" must be a string/],
    ] as const) {
      const result = await runMain(['snell-auth', '--users', join(dir, 'users.txt'), ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(message);
    }
    const single = await runMain(['snell-serve', '--listen', '127.0.0.1:0', '--psk-env', 'P', '--record', join(dir, 'x.jsonl')], { P: 'secret' });
    expect(single).toMatchObject({ code: 2, stderr: expect.stringMatching(/--record needs --users/) });
  });
});
