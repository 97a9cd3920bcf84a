import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, vectors } from '../helpers.js';
import { expectOneLineError, runCli, runMain } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-cli-'));
const fixture = (name: string): string => join(ROOT, 'fixtures', 'snell', name);
const trial = vectors.trial_auth;
const match = trial[0];

describe('authkit --help', () => {
  it('lists every subcommand with a one-line description', async () => {
    const result = await runMain(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/snell-gen \[options\]\s+build the first bytes/);
    expect(result.stdout).toMatch(/snell-auth \[options\]\s+find which user/);
  });

  it('exits 2 on an unknown subcommand or option', async () => {
    expect((await runMain(['no-such-command'])).code).toBe(2);
    expect((await runMain(['snell-gen', '--bogus'])).code).toBe(2);
  });
});

describe('authkit snell-gen', () => {
  const v = vectors.v4_first_packets[0];
  const frame = v.frames[0];
  const exact = ['--host', v.host, '--port', String(v.port), '--salt', v.salt_hex, '--padding', frame.padding_plain];

  it('builds the public vector byte for byte, with the PSK from a flag, a file or the environment', async () => {
    writeFileSync(join(dir, 'psk'), `${v.psk}\n`);
    for (const [args, env] of [
      [['--psk', v.psk], {}],
      [['--psk-file', join(dir, 'psk')], {}],
      [['--psk-env', 'TEST_SNELL_PSK'], { TEST_SNELL_PSK: v.psk }],
    ] as [string[], Record<string, string>][]) {
      const result = await runMain(['snell-gen', ...args, ...exact], env);
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe(v.wire_hex);
    }
  });

  it('prints the documented JSON and never the PSK', async () => {
    const result = await runMain(['snell-gen', '--psk-env', 'P', ...exact, '--json'], { P: v.psk });
    const json = JSON.parse(result.stdout);
    expect(Object.keys(json)).toEqual(['version', 'salt', 'headerPlain', 'paddingLen', 'payloadLen', 'request', 'wire']);
    expect(json).toMatchObject({ version: 4, salt: v.salt_hex, headerPlain: frame.header_plain, paddingLen: 256, payloadLen: 17, request: v.request_hex, wire: v.wire_hex });
    expect(result.stdout + result.stderr).not.toContain(v.psk);
  });

  it('defaults to CONNECT-v2 with 256..511 bytes of random padding and a random salt', async () => {
    const a = JSON.parse((await runMain(['snell-gen', '--psk-env', 'P', '--host', 'a.example', '--port', '1', '--json'], { P: 'x' })).stdout);
    const b = JSON.parse((await runMain(['snell-gen', '--psk-env', 'P', '--host', 'a.example', '--port', '1', '--json'], { P: 'x' })).stdout);
    expect(a.request.slice(0, 4)).toBe('0105');
    expect(a.paddingLen).toBeGreaterThanOrEqual(256);
    expect(a.paddingLen).toBeLessThanOrEqual(511);
    expect(a.salt).not.toBe(b.salt);
  });

  it('--padding-style random and opensnell both build frames snell-auth attributes; the help names the client each imitates', async () => {
    for (const style of ['random', 'opensnell']) {
      const gen = await runMain(['snell-gen', '--psk', 'user-2-random-psk', '--host', 'a.example', '--port', '1', '--padding-len', '300', '--padding-style', style, '--json']);
      expect(gen.code).toBe(0);
      const auth = await runMain(['snell-auth', '--users', fixture('users.txt'), '--blob', JSON.parse(gen.stdout).wire, '--json']);
      expect(JSON.parse(auth.stdout), style).toMatchObject({ ok: true, user: 'panel-user-2' });
    }
    const help = (await runMain(['snell-gen', '--help'])).stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/opensnell \(the default\) balances its bits .* OpenSnell's client .* Surge; random is plain random bytes/);
  });

  it('writes raw bytes to --out and base64 to stdout', async () => {
    const out = join(dir, 'frame.bin');
    expect((await runMain(['snell-gen', '--psk', v.psk, ...exact, '--format', 'raw', '--out', out])).code).toBe(0);
    expect(readFileSync(out).toString('hex')).toBe(v.wire_hex);
    const b64 = await runMain(['snell-gen', '--psk', v.psk, ...exact, '--format', 'base64']);
    expect(Buffer.from(b64.stdout.trim(), 'base64').toString('hex')).toBe(v.wire_hex);
  });

  it('builds a v5 QUIC envelope with the QUIC fixed bit clear in the salt', async () => {
    const result = await runMain(['snell-gen', '--psk', 'x', '--quic', '--host', 'www.cloudflare.com', '--port', '443', '--inner', 'cd0000000108', '--json']);
    const json = JSON.parse(result.stdout);
    expect(parseInt(json.salt.slice(0, 2), 16) & 0x40).toBe(0);
    expect(json.wire.length / 2).toBe(16 + 23 + 1 + 1 + 1 + 1 + 18 + 2 + 6 + 16);
  });

  it('writes one frame per user with --users, each of which snell-auth attributes to its user', async () => {
    const gen = await runMain(['snell-gen', '--users', fixture('users.txt'), '--host', 'example.com', '--port', '443', '--obfs', 'http']);
    const lines = gen.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.user)).toEqual(['panel-user-1', 'panel-user-2', 'panel-user-3']);
    writeFileSync(join(dir, 'caps.jsonl'), lines.map((l) => JSON.stringify({ blob: l.wire })).join('\n'));
    const auth = await runMain(['snell-auth', '--users', fixture('users.txt'), '--captures', join(dir, 'caps.jsonl'), '--json']);
    expect(auth.code).toBe(0);
    expect(auth.stdout.trim().split('\n').map((l) => JSON.parse(l).user)).toEqual(['panel-user-1', 'panel-user-2', 'panel-user-3']);
  });

  it.each([
    [['--host', 'a', '--port', '1'], /a PSK is required/],
    [['--psk', 'x', '--host', 'a', '--port', '1', '--salt', 'abc'], /--salt: odd number of hex digits/],
    [['--psk', 'x', '--host', 'a', '--port', '1', '--salt', '00'], /--salt: expected 16 bytes/],
    [['--psk', 'x', '--host', 'a', '--port', '1', '--version', '2', '--padding-len', '10'], /padding is v4\/v5 only/],
    [['--psk', 'x', '--host', 'a', '--port', '1', '--version', '2', '--padding-style', 'random'], /--padding-style is v4\/v5 only/],
    [['--psk', 'x', '--host', 'a', '--port', '1', '--padding', '00', '--padding-style', 'random'], /--padding gives the bytes; --padding-style fills a length/],
    [['--psk', 'x', '--host', 'a', '--port', '1', '--padding-style', 'zeros'], /--padding-style.*expected one of opensnell, random/],
    [['--psk', 'x', '--quic', '--version', '5', '--host', 'a', '--port', '443', '--inner', '00', '--padding-style', 'random'], /--padding-style belongs to users and frame modes; this is a quic run/],
    [['--psk', 'x', '--port', '1'], /needs --host and --port/],
    [['--psk', 'x', '--psk-env', 'HOME', '--host', 'a', '--port', '1'], /give the psk once/],
    [['--psk-env', 'AUTHKIT_NOT_SET', '--host', 'a', '--port', '1'], /AUTHKIT_NOT_SET is not set/],
    [['--psk', 'x', '--host', 'a', '--port', '70000'], /--port.*expected an integer from 0 to 65535/],
    [['--psk', 'x', '--quic', '--host', '', '--port', '443', '--inner', '00'], /--host: 0 bytes, expected 1 to 255/],
    [['--psk', 'x', '--quic', '--host', 'a', '--port', '443', '--inner', '00'.repeat(17000)], /--inner: 17000 bytes, at most 16376/],
    [['--psk', 'x', '--quic', '--host', 'a', '--port', '443', '--inner', '00', '--early', '00'], /--early belongs to users and frame modes; this is a quic run/],
    [['--psk', 'x', '--quic', '--version', '4', '--host', 'a', '--port', '443', '--inner', '00'], /--version must be 5/],
  ])('rejects bad input %j with one line and exit 2', async (args, message) => {
    const result = await runMain(['snell-gen', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('authkit snell-auth', () => {
  const users = join(dir, 'vector-users.json');
  writeFileSync(users, JSON.stringify(match.users));

  it('finds the user of a vector frame and prints exactly the documented JSON line', async () => {
    const result = await runMain(['snell-auth', '--users', users, '--blob', match.blob_hex, '--json']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout);
    expect(Object.keys(json)).toEqual(['ok', 'user', 'index', 'path', 'trials', 'micros']);
    expect(json).toMatchObject({ ok: true, user: 'panel-user-2', index: 1, path: 'serial', trials: 2 });
    expect(result.stdout + result.stderr).not.toContain('user-2-random-psk');
  });

  it('finds a user among 10,000 on the parallel path', async () => {
    const result = await runMain(['snell-auth', '--users', fixture('users-10k.csv'), '--blob', match.blob_hex, '--json']);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, user: 'panel-user-2', index: 7311, path: 'parallel' });
  });

  it('reads raw bytes with --in, and strips obfs in auto mode', async () => {
    writeFileSync(join(dir, 'capture.bin'), Buffer.from(match.blob_hex, 'hex'));
    expect(JSON.parse((await runMain(['snell-auth', '--users', users, '--in', join(dir, 'capture.bin'), '--json'])).stdout).user).toBe('panel-user-2');
  });

  it('runs --captures in order through one IP cache, one line each, summary on stderr, exit 1 if any failed', async () => {
    const result = await runMain(['snell-auth', '--users', fixture('users.txt'), '--captures', fixture('captures.jsonl'), '--json']);
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.ok ? `${l.user}/${l.path}` : l.reason)).toEqual([
      'panel-user-2/serial', 'panel-user-2/cache', 'panel-user-1/serial', 'no-match', 'truncated',
    ]);
    expect(lines[4]).toMatchObject({ ok: false, reason: 'truncated', bytes: 30 });
    expect(result.stderr).toMatch(/3 of 5 captures matched/);
  });

  it('reads a real tcpdump capture: the first client bytes of each stream, with their source IPs', async () => {
    const result = await runMain(['snell-auth', '--users', fixture('users.txt'), '--pcap', fixture('snell-loopback.pcap'), '--port', '18443', '--json']);
    const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.ok ? l.user : l.reason, l.path, l.stream.replace(/:\d+$/, '')])).toEqual([
      ['panel-user-1', 'serial', '127.0.0.1'],
      ['panel-user-1', 'cache', '127.0.0.1'],
      ['panel-user-3', 'serial', '[::1]'],
      ['no-match', undefined, '127.0.0.2'],
      ['panel-user-2', 'serial', '127.0.0.3'],
    ]);
    expect(result.code).toBe(1);
  });

  it('--pcap cut short inside a record: the intact streams are reported, one warning with the byte offset, the exit code from the matches', async () => {
    const whole = readFileSync(fixture('snell-loopback.pcap'));
    // The records that carry a client's first bytes (the others are handshakes and ACKs of 66-94 bytes).
    const records: number[] = [];
    for (let off = 24; off + 16 <= whole.length && records.length < 1000; off += 16 + whole.readUInt32LE(off + 8)) records.push(off);
    const dataRecords = records.filter((off) => whole.readUInt32LE(off + 8) > 200);
    expect(dataRecords).toHaveLength(5);
    const run = async (cut: number, name: string) => {
      writeFileSync(join(dir, name), whole.subarray(0, cut));
      const result = await runMain(['snell-auth', '--users', fixture('users.txt'), '--pcap', join(dir, name), '--port', '18443', '--json']);
      const lines = result.stdout.trim().split('\n').map((l) => JSON.parse(l));
      const warnings = result.stderr.split('\n').filter((l) => l.startsWith('warning:'));
      return { result, streams: lines.map((l) => [l.ok ? l.user : l.reason, l.stream.replace(/:\d+$/, '')]), warnings };
    };
    // Cut inside the fourth stream's data (127.0.0.2, the one no user matches): the first three all match, exit 0.
    const fourth = dataRecords[3]!;
    const early = await run(fourth + 16 + 100, 'cut-early.pcap');
    expect(early.streams).toEqual([['panel-user-1', '127.0.0.1'], ['panel-user-1', '127.0.0.1'], ['panel-user-3', '[::1]']]);
    expect(early.warnings).toEqual([expect.stringMatching(new RegExp(`cut-early\\.pcap: capture is truncated at byte offset ${fourth} \\(cut packet record\\)`))]);
    expect(early.result.code).toBe(0);
    // Cut inside the last record's header: all five streams, the no-match among them, exit 1.
    const lastRecord = records.at(-1)!;
    const late = await run(lastRecord + 8, 'cut-late.pcap');
    expect(late.streams.map(([who]) => who)).toEqual(['panel-user-1', 'panel-user-1', 'panel-user-3', 'no-match', 'panel-user-2']);
    expect(late.warnings).toEqual([expect.stringMatching(new RegExp(`cut-late\\.pcap: capture is truncated at byte offset ${lastRecord} \\(cut record header\\)`))]);
    expect(late.result.code).toBe(1);
  });

  it('reports a short capture as truncated with its length, exit 1', async () => {
    const result = await runMain(['snell-auth', '--users', users, '--blob', match.blob_hex.slice(0, 76), '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ ok: false, reason: 'truncated', bytes: 38, trials: 0, micros: expect.any(Number) });
  });

  it('reports no-match and legacy streams, exit 1', async () => {
    const miss = await runMain(['snell-auth', '--users', users, '--blob', trial[2].blob_hex, '--json']);
    expect(JSON.parse(miss.stdout)).toMatchObject({ ok: false, reason: 'no-match', trials: 3 });
    writeFileSync(join(dir, 'legacy-users.txt'), 'someone:else\nold-client:password\n');
    const legacy = await runMain(['snell-auth', '--users', join(dir, 'legacy-users.txt'), '--blob', vectors.legacy_first_packets[1].wire_hex]);
    expect(legacy.code).toBe(1);
    expect(legacy.stdout).toMatch(/legacy-v2 stream of user old-client \(index 1\)/);
  });

  it('warns on stderr about users sharing a PSK', async () => {
    writeFileSync(join(dir, 'dups.txt'), 'a:same\nb:same\n');
    const result = await runMain(['snell-auth', '--users', join(dir, 'dups.txt'), '--blob', match.blob_hex]);
    expect(result.stderr).toMatch(/warning: .*dups\.txt:2: user "b" has the same PSK as "a"/);
  });

  it('prints no colour codes when stdout is not a terminal', async () => {
    const result = await runMain(['snell-auth', '--users', users, '--blob', match.blob_hex]);
    expect(result.stdout).toMatch(/^✔ user panel-user-2 \(index 1\), serial path, 2 trials, \d+ µs\n$/);
    expect(result.stdout).not.toContain('\u001b[');
  });

  it.each([
    ['odd-length --blob', ['--blob', 'abc'], /--blob: odd number of hex digits \(3\)/],
    ['non-hex --blob', ['--blob', 'zz'], /--blob: not hex/],
    ['--port without --pcap', ['--blob', '00', '--port', '1'], /--port belongs to pcap mode; this is a bytes run/],
    ['a pcap that is not a pcap', ['--pcap', fixture('users.txt'), '--port', '1'], /users\.txt: not a pcap file/],
    ['no capture', [], /give exactly one capture/],
    ['a missing --in file', ['--in', '/nonexistent/x'], /--in \/nonexistent\/x: no such file/],
  ])('rejects %s with one line and exit 2', async (_what, args, message) => {
    const result = await runMain(['snell-auth', '--users', users, ...args]);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(message);
  });

  it('rejects an empty users file and one with a broken line 7, naming file and line', async () => {
    writeFileSync(join(dir, 'empty.txt'), '');
    const empty = await runMain(['snell-auth', '--users', join(dir, 'empty.txt'), '--blob', match.blob_hex]);
    expect(empty.code).toBe(2);
    expect(expectOneLineError(empty)).toMatch(/empty\.txt: no users in the file/);
    const lines = Array.from({ length: 9 }, (_, i) => `user${i}:psk${i}`);
    lines[6] = 'broken line without a separator';
    writeFileSync(join(dir, 'broken.txt'), lines.join('\n'));
    const broken = await runMain(['snell-auth', '--users', join(dir, 'broken.txt'), '--blob', match.blob_hex]);
    expect(broken.code).toBe(2);
    expect(expectOneLineError(broken)).toMatch(/broken\.txt:7: expected name:psk/);
  });

  it('rejects a broken captures line, naming it, before printing anything', async () => {
    writeFileSync(join(dir, 'bad-captures.jsonl'), `{"blob":"${match.blob_hex}"}\n{"blob": "xyz"}\n`);
    const result = await runMain(['snell-auth', '--users', users, '--captures', join(dir, 'bad-captures.jsonl'), '--json']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(expectOneLineError(result)).toMatch(/bad-captures\.jsonl:2: "blob": not hex/);
  });

  it('never quotes a users file (which holds PSKs) in a JSON syntax error', async () => {
    writeFileSync(join(dir, 'leak.json'), '[{"name":"a","psk":SuperSecretPSK-alice}]\n');
    writeFileSync(join(dir, 'leak2.json'), '[\n{"name":"alice","psk":"SuperSecretPSK-alice"},\n]\n');
    writeFileSync(join(dir, 'leak.jsonl'), '{"name":"a","psk":"ok"}\n{"name":"b","psk":SuperSecretPSK-bob}\n');
    for (const [file, message] of [['leak.json', /leak\.json(:\d+:\d+)?: invalid JSON \(syntax error\)$/], ['leak2.json', /leak2\.json:3:1: invalid JSON/], ['leak.jsonl', /leak\.jsonl:2(:\d+)?: invalid JSON/]] as const) {
      const result = await runMain(['snell-auth', '--users', join(dir, file), '--blob', match.blob_hex]);
      expect(result.code).toBe(2);
      expect(expectOneLineError(result)).toMatch(message);
      expect(result.stderr).not.toContain('SuperSecret');
    }
  });

  it('refuses a users file that is not valid UTF-8, naming the line', async () => {
    writeFileSync(join(dir, 'latin1.txt'), Buffer.concat([Buffer.from('a:fine\nb:caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    const result = await runMain(['snell-auth', '--users', join(dir, 'latin1.txt'), '--blob', match.blob_hex]);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(/latin1\.txt:2: not valid UTF-8/);
  });

  it('names AUTHKIT_KDF when its value is unknown', async () => {
    const result = await runCli(['snell-auth', '--users', users, '--blob', match.blob_hex], { AUTHKIT_KDF: 'bogus' }) /* a process: the KDF choice is made once per process */;
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(/AUTHKIT_KDF: unknown KDF backend "bogus"/);
  });

  // bin/authkit.js boots snell-auth's scan worker before the command line is parsed (cli/prestart.ts).
  it('as its own process, matches with the worker it started early and its own thread, and stops cleanly before any scan', async () => {
    // 40 users, the vector's at 30: in the second slice, this thread's (the worker has 0-19).
    const forty = Array.from({ length: 40 }, (_, i) => (i === 30 ? 'panel-user-2:user-2-random-psk' : `filler-${i}:filler-psk-${i}`));
    writeFileSync(join(dir, 'forty.txt'), `${forty.join('\n')}\n`);
    writeFileSync(join(dir, 'two.jsonl'), [JSON.stringify({ blob: match.blob_hex }), JSON.stringify({ blob: '00'.repeat(64) })].join('\n'));
    const result = await runCli(['snell-auth', '--users', join(dir, 'forty.txt'), '--captures', join(dir, 'two.jsonl'), '--json']);
    expect(result.code).toBe(1);
    const [found, missed] = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(found).toMatchObject({ ok: true, user: 'panel-user-2', index: 30, path: 'parallel' });
    expect(missed).toMatchObject({ ok: false, reason: 'no-match', trials: 40 });
    const missing = await runCli(['snell-auth', '--users', join(dir, 'no-such-users.txt'), '--blob', match.blob_hex]);
    expect(missing.code).toBe(2);
    expect(expectOneLineError(missing)).toMatch(/no-such-users\.txt/);
  }, 60_000);

  it('ends quietly when the reader closes the pipe early', async () => {
    const { execFileSync } = await import('node:child_process');
    const output = execFileSync('bash', ['-c', `node ${join(ROOT, 'bin', 'authkit.js')} snell-gen --users ${fixture('users-10k.csv')} --host a.example --port 1 2>&1 | head -c 20; echo " [\${PIPESTATUS[0]}]"`], { encoding: 'utf8' });
    expect(output).not.toMatch(/EPIPE|\n\s+at /);
    expect(output).toMatch(/ \[0\]\n$/);
  }, 60_000);

  it('benchmarks every KDF backend with `bench`', async () => {
    const result = await runMain(['snell-auth', 'bench', '--users', '20', '--seconds', '0.2', '--kdf', 'wasm-simd', '--json']);
    expect(result.code).toBe(0);
    const [row] = JSON.parse(result.stdout);
    expect(row).toMatchObject({ kdf: 'wasm-simd', users: 20, cold: { path: 'parallel' }, cacheHit: { trials: 1 } });
    expect(row.cold.userTrialsPerSec).toBeGreaterThan(0);
  }, 30_000);
});

describe('snell-auth reads only regular files, bounded', () => {
  it('--users /dev/zero is one line and exit 2 at once, not an endless read', async () => {
    const { runMain } = await import('./run.js');
    const result = await runMain(['snell-auth', '--users', '/dev/zero', '--blob', '00']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('authkit: users file /dev/zero: a device, not a regular file\n');
  });

  it('--max-file-size refuses a larger users file, naming the flag', async () => {
    const { runMain } = await import('./run.js');
    const result = await runMain(['snell-auth', '--users', 'fixtures/snell/users-10k.csv', '--blob', '00', '--max-file-size', '1k']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/over the 1024-byte limit \(--max-file-size\)/);
  });
});
