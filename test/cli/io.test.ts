import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chalk } from 'chalk';
import { stdoutColors } from '../../src/cli/io.js';
import { ROOT, vectors } from '../helpers.js';

const BIN = join(ROOT, 'bin', 'authkit.js');
const USERS = join(mkdtempSync(join(tmpdir(), 'authkit-io-')), 'users.json');
writeFileSync(USERS, JSON.stringify(vectors.trial_auth[0].users));

describe('stdoutColors on output that is not a terminal (chalk is then never loaded)', () => {
  const plain = stdoutColors();
  const chalkAtZero = new Chalk({ level: 0 });

  it('gives every text back as chalk at level 0 does: one style, chained styles, several texts, none', () => {
    expect(process.stdout.isTTY).not.toBe(true);
    for (const [ours, theirs] of [
      [plain.red('✘ failed'), chalkAtZero.red('✘ failed')],
      [plain.bold.yellow('warn'), chalkAtZero.bold.yellow('warn')],
      [plain.dim('a', 'b', 3), chalkAtZero.dim('a', 'b', 3)],
      [plain.green(), chalkAtZero.green()],
      [plain.cyan(undefined), chalkAtZero.cyan(undefined)],
      [plain.gray(7), chalkAtZero.gray(7)],
    ]) expect(ours).toBe(theirs);
    expect(plain.level).toBe(0);
  });
});

describe('colours on a terminal', () => {
  // util-linux's script(1) gives the command a terminal; it ships with every Debian.
  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  const { NO_COLOR: _, ...withoutNoColor } = process.env;
  const onTerminal = (env: Record<string, string>): string => execFileSync('script', ['-qec', `"${process.execPath}" "${BIN}" snell-auth --users "${USERS}" --blob ${vectors.trial_auth[0].blob_hex}`, '/dev/null'], { encoding: 'utf8', env: { ...withoutNoColor, ...env }, timeout: 30_000 });

  it.skipIf(!hasScript)('are on, with chalk loaded, and off with NO_COLOR', () => {
    expect(onTerminal({})).toMatch(/\u001b\[32m✔\u001b\[39m user \u001b\[1mpanel-user-2\u001b\[22m/);
    expect(onTerminal({ NO_COLOR: '1' })).toMatch(/^✔ user panel-user-2 \(index 1\)/);
  }, 60_000);
});
