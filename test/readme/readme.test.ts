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

/**
 * The README's sh blocks, but not the set-up one (this test runs inside `npm test`) nor
 * `npx authkit demo`, which test/cli/demo-cli.test.ts runs already (with shorter load runs).
 */
export function readmeExamples(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((block) => !/^npm (install|test)\b/m.test(block) && block.trim() !== 'npx authkit demo');
}

/**
 * One bash process for the whole walk-through (the examples share exported variables and the
 * servers started with `&`), fed one block at a time, so each block is a test of its own and a
 * failure names its block.
 */
class Walkthrough {
  private stderr = '';
  private readonly shell = spawn('bash', ['-s'], { cwd: work, env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'ignore', 'pipe'], detached: true });

  constructor() {
    group = this.shell.pid;
    this.shell.stderr.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.shell.stdin.write(`npx() { if [ "$1" = authkit ]; then shift; node ${JSON.stringify(BIN)} "$@"; else command npx "$@"; fi; }\n`);
  }

  /** Runs one block; resolves with its exit status and what it wrote on stderr. */
  async run(block: string, index: number): Promise<{ status: number; stderr: string }> {
    const from = this.stderr.length;
    const marker = `__README_BLOCK__ ${index} `;
    this.shell.stdin.write(`${block}\necho "${marker}$?" >&2\n`);
    const done = (): RegExpExecArray | null => new RegExp(`${marker}(\\d+)`).exec(this.stderr.slice(from));
    for (const end = Date.now() + 200_000; !done() && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 25));
    const match = done();
    if (!match) throw new Error(`block ${index} did not finish`);
    // A server started in the background is ready once it says it listens (or after 10 s).
    if (/&\s*$/m.test(block)) {
      for (const end = Date.now() + 10_000; !/listening on/.test(this.stderr.slice(from)) && Date.now() < end; ) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return { status: Number(match[1]), stderr: this.stderr.slice(from) };
  }
}

describe('the README, every example as written, top to bottom in one shell', () => {
  const blocks = readmeExamples(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  const walkthrough = new Walkthrough();

  it('has examples', () => {
    expect(blocks.length).toBeGreaterThan(20);
  });

  // A block may exit 0, 1 (a deny, a failed check: some examples show one) or 3 (a breached
  // threshold); a 2 is a usage error, which means the README and the code have drifted apart.
  it.each(blocks.map((block, i) => [i, block.split('\n')[0]!.slice(0, 90), block] as const))('block %i: %s', async (index, _title, block) => {
    const { status, stderr } = await walkthrough.run(block, index);
    expect([0, 1, 3], `${block}\n${stderr.split('\n').filter((l) => l.startsWith('authkit:')).join('\n')}`).toContain(status);
  });
});
