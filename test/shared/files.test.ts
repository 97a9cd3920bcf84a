/** The one bounded file loader, and a snapshot watcher that never loses an update. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileReadError, parseByteSize, readBoundedFile, readBoundedFileSync } from '../../src/shared/files.js';
import { sha256, watchSnapshotFile } from '../../src/shared/watch.js';
import { eventually, thrownBy } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readBoundedFile', () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const zero = join(dir, 'zero');
  symlinkSync('/dev/zero', zero);
  const folder = join(dir, 'folder');
  mkdirSync(folder);

  it.each([
    [fifo, 'a FIFO, not a regular file'],
    [zero, 'a device, not a regular file'],
    [folder, 'a directory, not a regular file'],
  ])('%s is refused at once, never read', async (path, why) => {
    await expect(readBoundedFile(path)).rejects.toThrow(`${path}: ${why}`);
    expect(thrownBy(FileReadError, () => readBoundedFileSync(path)).why).toBe(why);
  });

  it('a file over the cap is refused, naming the flag that raises it', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(2048));
    await expect(readBoundedFile(big, { maxBytes: 1024, capFlag: '--max-file-size' })).rejects.toThrow('2048 bytes, over the 1024-byte limit (--max-file-size)');
    expect((await readBoundedFile(big, { maxBytes: 4096 })).length).toBe(2048);
  });

  it('parses sizes', () => {
    expect(parseByteSize('512k', '--x')).toBe(512 * 1024);
    expect(parseByteSize('4G', '--x')).toBe(4 * 2 ** 30);
    expect(() => parseByteSize('lots', '--x')).toThrow(/--x: expected a size/);
  });
});

describe('a watched snapshot file never loses an update', () => {
  it('after a FIFO, /dev/zero, a deleted and a broken file, the next valid file is applied', async () => {
    const file = join(dir, 'users.txt');
    writeFileSync(file, 'a\n');
    const lines: string[] = [];
    let current = ['a'];
    const watcher = watchSnapshotFile(file, {
      what: 'users file', noun: 'users', current, digest: sha256(Buffer.from('a\n')), count: (u) => u.length,
      parse: (bytes) => {
        const text = bytes.toString('utf8');
        if (text.includes('broken')) throw new Error('line 1: broken');
        return { snapshot: text.trim().split('\n'), warnings: [] };
      },
      onReload: (next) => (current = next), log: (line) => lines.push(line), pollMs: 50, debounceMs: 10,
    });
    try {
      const replaceWith = (make: (path: string) => void): void => {
        const next = join(dir, `next-${lines.length}-${Date.now()}`);
        make(next);
        renameSync(next, file);
      };
      replaceWith((p) => execFileSync('mkfifo', [p]));
      await eventually(() => lines.some((l) => /cannot read it \(a FIFO, not a regular file\); keeping the last good users \(1\)/.test(l)));
      replaceWith((p) => symlinkSync('/dev/zero', p));
      await eventually(() => lines.some((l) => /a device, not a regular file/.test(l)));
      rmSync(file);
      await eventually(() => lines.some((l) => /no such file/.test(l)));
      writeFileSync(file, 'broken\n');
      await eventually(() => lines.some((l) => /not reloaded, keeping the last good users \(1\): line 1: broken/.test(l)));
      expect(current).toEqual(['a']);
      replaceWith((p) => writeFileSync(p, 'a\nb\nc\n'));
      await eventually(() => current.length === 3);
      expect(lines.at(-1)).toMatch(/reloaded, 3 users/);
    } finally {
      watcher.close();
    }
  });
});
