/** `authkit xray-backend`: its flags, and the command run as a process. */
import { describe, expect, it } from 'vitest';
import { eventually } from '../../helpers.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../../../src/shared/errors.js';
import { type XrayBackend } from '../../../src/xray/server/server.js';
import { backendOptions, parseHeader, parseLatency, xrayBackendCommand, type BackendFlags } from '../../../src/cli/xray-backend.js';
import { parseHostPort } from '../../../src/shared/listen.js';
import { USERS, ALICE, SECRET, start, facts, status, raw, inputError, useTempDir, useBackends } from './backend-helpers.js';

const dir = useTempDir();
useBackends();

describe('authkit xray-backend (command)', () => {
  const flags = (over: Partial<BackendFlags> = {}): BackendFlags => ({ dialect: 'wiki', header: [], listen: '127.0.0.1:0', users: USERS, ...over });

  it('parses --listen, --latency-ms and --header', () => {
    expect(parseHostPort('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
    for (const bad of ['8080', '127.0.0.1', '127.0.0.1:65536', ':80', '::1:80', 'a b:1']) {
      expect(inputError(() => parseHostPort(bad))).toBe(`--listen: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "${bad}"`);
    }
    expect(parseLatency('50')).toEqual([50, 50]);
    expect(parseLatency('10-200')).toEqual([10, 200]);
    expect(parseLatency('5ms-1s')).toEqual([5, 1000]);
    expect(inputError(() => parseLatency('200-10'))).toMatch(/^--latency-ms: expected N or N-M/);
    // Every bound has a flag: the body limit and the request timeout too.
    const { options } = backendOptions({ listen: '127.0.0.1:0', users: USERS, dialect: 'wiki', bodyLimit: '2k', requestTimeout: '5s' } as BackendFlags);
    expect(options).toMatchObject({ bodyLimit: 2048, requestTimeoutMs: 5000 });
    expect(parseHeader('X-Token:  abc def ')).toEqual(['X-Token', 'abc def']);
    const message = inputError(() => parseHeader('no colon secret-value'));
    expect(message).toBe("--header: expected 'Name: value' with a non-empty name and value");
    expect(inputError(() => parseHeader('Bad Name: secret-value'))).toBe('--header: "Bad Name" is not a valid header name');
  });

  it('turns flags into options, with notes for what a real proxy cannot send', () => {
    const { options, notes } = backendOptions(flags({ dialect: 'src', secret: SECRET, header: ['X-A: b'], latencyMs: '5-10', errorRate: '0.1', garbageRate: '.2', sessionIdle: '30' }));
    expect(options).toMatchObject({ host: '127.0.0.1', port: 0, secret: SECRET, headers: [['X-A', 'b']], faults: { latencyMs: [5, 10], errorRate: 0.1, garbageRate: 0.2 }, sessionIdleMs: 30_000 });
    expect(notes).toEqual([expect.stringMatching(/^--secret is visible/), expect.stringMatching(/src dialect sends no custom headers/)]);
    expect(backendOptions(flags({ dialect: 'hysteria2', secretEnv: 'HOME' })).notes).toEqual([expect.stringMatching(/guard only \/admin\//)]);
    expect(backendOptions(flags()).notes).toEqual([expect.stringMatching(/^no --secret or --header/)]);
  });

  it('refuses bad flags with one InputError line', async () => {
    const longIds = join(dir, 'long-ids.json');
    writeFileSync(longIds, `[\n  {"credential": "${ALICE}"},\n  {"credential": "a Hysteria password is not a VLESS id"}\n]\n`);
    const cases: [string[], RegExp][] = [
      [['--users', USERS], /^where to listen: --listen HOST:PORT or --unix-socket PATH$/],
      [['--listen', '127.0.0.1:0', '--unix-socket', join(dir, 's'), '--users', USERS], /^give --listen or --unix-socket, not both$/],
      [['--listen', '127.0.0.1'], /^--users FILE is required$/],
      [['--listen', 'localhost', '--users', USERS], /^--listen: expected HOST:PORT/],
      [['--listen', '127.0.0.1:0', '--users', join(dir, 'missing.json')], /^users file .*missing\.json: no such file$/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--error-rate', '1.5'], /^--error-rate: expected a share from 0 to 1/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--error-rate', '0.6', '--garbage-rate', '0.6'], /^--error-rate and --garbage-rate add up to more than 1$/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--latency-ms', 'slow'], /^--latency-ms: expected N or N-M/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--session-idle', '0'], /^--session-idle: expected a duration like 500ms, 2s or 1m \(a bare number is seconds\)/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--secret-env', 'AUTHKIT_TEST_NO_SUCH_VAR'], /^--secret-env: environment variable AUTHKIT_TEST_NO_SUCH_VAR is not set or empty$/],
      [['--listen', '127.0.0.1:0', '--users', USERS, '--header', 'nocolon'], /^--header: expected 'Name: value'/],
      [['--listen', '127.0.0.1:0', '--users', longIds], /long-ids\.json:3: "credential" must be a UUID/],
    ];
    for (const [args, message] of cases) {
      // Already stopped: a case that wrongly starts a backend ends at once instead of hanging.
      const command = xrayBackendCommand({ log: () => {}, signal: AbortSignal.abort() }).exitOverride();
      const error = await command.parseAsync(['node', 'authkit', ...args]).then(() => undefined, (e: unknown) => e);
      expect(error, args.join(' ')).toBeInstanceOf(InputError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('refuses an unknown dialect and a port in use', async () => {
    const command = xrayBackendCommand({ log: () => {} }).exitOverride().configureOutput({ writeErr: () => {} });
    await expect(command.parseAsync(['node', 'authkit', '--listen', '127.0.0.1:0', '--users', USERS, '--dialect', 'cnap'])).rejects.toMatchObject({ code: 'commander.invalidArgument' });
    const taken = await start();
    const again = xrayBackendCommand({ log: () => {} }).exitOverride();
    await expect(again.parseAsync(['node', 'authkit', '--listen', `127.0.0.1:${taken.port}`, '--users', USERS])).rejects.toThrow(new InputError(`cannot listen on 127.0.0.1:${taken.port}: address already in use`));
  });

  it('runs until stopped: one line with the URL, one log line per request, then closes with exit 0', async () => {
    const lines: string[] = [];
    const stop = new AbortController();
    let backend: XrayBackend | undefined;
    const command = xrayBackendCommand({ log: (line) => lines.push(line), signal: stop.signal, onListening: (b) => (backend = b) }).exitOverride();
    const done = command.parseAsync(['node', 'authkit', '--listen', '127.0.0.1:0', '--users', USERS, '--dialect', 'src', '--secret', SECRET]);
    await eventually(() => backend !== undefined);
    expect(lines.filter((l) => l.startsWith('xray-backend:'))).toEqual([`xray-backend: src dialect, 7 users from ${USERS}, listening on ${backend!.url}`]);
    expect(await status(backend!, 'authorization', facts(ALICE), { secret: SECRET })).toBe(200);
    stop.abort();
    await done;
    expect(process.exitCode).toBe(0);
    expect(lines.at(-1)).toBe('xray-backend: stopping');
    expect(lines.some((l) => /^POST \/ authorization 200 /.test(l))).toBe(true);
    expect(lines.join('\n')).not.toContain(ALICE);
    await expect(raw(backend!.url, '{}')).rejects.toThrow();
  });

  it('--quiet: no line per request, the start and stop lines still', async () => {
    const lines: string[] = [];
    const stop = new AbortController();
    let backend: XrayBackend | undefined;
    const command = xrayBackendCommand({ log: (line) => lines.push(line), signal: stop.signal, onListening: (b) => (backend = b) }).exitOverride();
    const done = command.parseAsync(['node', 'authkit', '--listen', '127.0.0.1:0', '--users', USERS, '--dialect', 'src', '--secret', SECRET, '--quiet']);
    await eventually(() => backend !== undefined);
    expect(await status(backend!, 'authorization', facts(ALICE), { secret: SECRET })).toBe(200);
    stop.abort();
    await done;
    expect(lines.some((l) => /authorization 200/.test(l))).toBe(false);
    expect(lines.some((l) => l.startsWith('xray-backend: src dialect'))).toBe(true);
    expect(lines.at(-1)).toBe('xray-backend: stopping');
  });
});
