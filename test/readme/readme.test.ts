/**
 * Every `sh` example of the README, run as written, top to bottom in one shell, as a reader
 * following it would (servers started with `&` stay up for the examples after them). A block may
 * exit 0, 1 (a deny, a failed check: some examples show one) or 3 (a breached threshold); a 2 is
 * a usage error, which means the README and the code have drifted apart. `npx authkit` runs this
 * checkout's bin/; the examples run in a scratch directory that links the fixtures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

const BIN = join(ROOT, 'bin', 'authkit.js');
const work = mkdtempSync(join(tmpdir(), 'authkit-readme-'));
symlinkSync(join(ROOT, 'fixtures'), join(work, 'fixtures'));
let group: number | undefined;
const stopGroup = (): void => {
  if (group === undefined) return;
  try {
    process.kill(-group, 'SIGKILL');
  } catch {
    // Already gone.
  }
  group = undefined;
};
afterAll(() => {
  stopGroup();
  rmSync(work, { recursive: true, force: true });
});

/** The README's sh blocks, but not the set-up one (this test runs inside `npm test`). */
export function readmeExamples(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((block) => !/^npm (install|test)\b/m.test(block));
}

describe('the README', () => {
  it('runs every example as written', async () => {
    const blocks = readmeExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThan(20);
    const script = [
      `npx() { if [ "$1" = authkit ]; then shift; node ${JSON.stringify(BIN)} "$@"; else command npx "$@"; fi; }`,
      ...blocks.map((block, i) => `${block}\necho "__README_BLOCK__ ${i} $?" >&2${/&\s*$/m.test(block) ? '\nsleep 1.5' : ''}`),
      // The servers the examples started are still running: the test stops the whole group.
      'echo __README_DONE__ >&2',
      'wait',
    ].join('\n');
    const { stderr } = await new Promise<{ stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', script], { cwd: work, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      group = child.pid;
      let text = '';
      child.stderr.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('__README_DONE__')) {
          stopGroup();
          resolve({ stderr: text });
        }
      });
      child.on('close', () => resolve({ stderr: text }));
    });
    const statuses = [...stderr.matchAll(/__README_BLOCK__ (\d+) (\d+)/g)].map((m) => ({ block: Number(m[1]), status: Number(m[2]) }));
    expect(statuses.map((s) => s.block)).toEqual(blocks.map((_, i) => i));
    const drifted = statuses.filter((s) => ![0, 1, 3].includes(s.status)).map((s) => `block ${s.block} exited ${s.status}:\n${blocks[s.block]}`);
    expect(drifted, stderr.split('\n').filter((l) => l.startsWith('authkit:')).join('\n')).toEqual([]);
  }, 240_000);
});
