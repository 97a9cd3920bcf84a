import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { expectOneLineError, runCli, runMain } from './run.js';

const BIN = fileURLToPath(new URL('../../bin/authkit.js', import.meta.url));
// Each demo here gets a temporary directory of its own (TMPDIR), so a demo another test runs at
// the same time (the README walk-through's) can neither hide nor fake what this one leaves behind.
const privateTmp = (): string => mkdtempSync(join(tmpdir(), 'demo-test-'));
const demoDirs = (tmp: string): string[] => readdirSync(tmp).filter((name) => name.startsWith('authkit-demo-'));
const demoProcesses = (tmp: string): string[] => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(tmp));

describe('authkit demo', () => {
  it('--json: every step of every part reports success, and nothing is left behind', async () => {
    const tmp = privateTmp();
    const result = await runCli(['demo', '--json', '--load-seconds', '1'], { TMPDIR: tmp });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { ok: boolean; steps: { part: string; name: string; ok: boolean; detail: string }[]; seconds: number };
    expect(report.ok).toBe(true);
    expect(report.steps.filter((s) => !s.ok)).toEqual([]);
    expect(new Set(report.steps.map((s) => s.part))).toEqual(new Set(['xray', 'capnp', 'snell']));
    expect(report.steps.map((s) => s.name)).toEqual(expect.arrayContaining(['conformance suite', '1-second load run', 'trial authentication against 10,000 users']));
    // The commands shown name the package's files from its root, never this machine's path.
    const commands = (report.steps as unknown as { command: string }[]).map((s) => s.command).join('\n');
    expect(commands).toContain('--fixture fixtures/capnp-serve/conformance.json');
    expect(commands).toContain('--users fixtures/snell/users-10k.csv');
    expect(commands).not.toContain(process.cwd());
    expect(demoDirs(tmp)).toEqual([]);
    expect(demoProcesses(tmp)).toEqual([]);
  }, 90_000);

  it('Ctrl-C halfway: exit 130, no process and no socket left', async () => {
    const tmp = privateTmp();
    const child = spawn(process.execPath, [BIN, 'demo', '--only', 'capnp,snell'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
    await new Promise<void>((resolve) => {
      let text = '';
      child.stderr.on('data', (c: Buffer) => {
        text += c.toString();
        if (/demo: capnp: conformance suite/.test(text)) resolve();
      });
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    expect(demoDirs(tmp)).toEqual([]);
    expect(demoProcesses(tmp)).toEqual([]);
  }, 60_000);

  it('--only with an unknown part: one line, exit 2', async () => {
    const result = await runMain(['demo', '--only', 'wireguard']);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toBe('authkit: --only: unknown part "wireguard" (known: xray, capnp, snell)');
  });
});

describe('every command', () => {
  it('authkit --version and -V print the package version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) expect(await runMain([flag])).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  // In process through main(argv): thirteen spawned processes took longer than a test's
  // timeout on a busy 2-core machine, and a help text needs no process of its own.
  it('has an example in its --help', async () => {
    const commands = [[], ['snell-gen'], ['snell-auth'], ['snell-auth', 'bench'], ['snell-probe'], ['snell-serve'], ['xray-sim'], ['xray-backend'], ['xray-tap'], ['capnp-check'], ['capnp-serve'], ['capnp-tap'], ['report'], ['report', 'merge'], ['demo']];
    for (const command of commands) {
      const result = await runMain([...command, '--help']);
      expect(result.code, command.join(' ')).toBe(0);
      expect(result.stdout, command.join(' ')).toMatch(/\nExamples?:\n {2}(npx )?authkit /);
    }
  });
});
