/**
 * What `npm pack` ships installs and runs on its own: in an empty directory, without the source
 * tree, `authkit --help` works and the demo finds its fixtures.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-pack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const npm = (args: string[], cwd: string): string =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, NO_COLOR: '1' } });

describe('npm pack', () => {
  it('installs into an empty directory and runs', () => {
    // dist/ was built by `npm test`; packing must not rebuild it under the other tests' feet.
    npm(['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
    const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))!;
    const app = join(dir, 'app');
    execFileSync('mkdir', [app]);
    npm(['init', '-y'], app);
    npm(['install', '--prefer-offline', '--ignore-scripts', join(dir, tarball)], app);
    const bin = join(app, 'node_modules', '.bin', 'authkit');
    const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
    expect(help).toMatch(/Usage: authkit/);
    expect(help).toMatch(/demo/);
    const demo = JSON.parse(execFileSync(bin, ['demo', '--only', 'capnp', '--json', '--load-seconds', '1'], { encoding: 'utf8', cwd: app, timeout: 60_000 }));
    expect(demo.ok).toBe(true);
  }, 300_000);
});
