/**
 * capnp-tap's bound on what one connection holds: past --max-pending calls waiting for their
 * Returns, the connection is relayed and no longer read. (The tap between real peers is
 * test/interop/capnp/tap-interop.test.ts.)
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_CAPNP_TAP_MAX_PENDING, startCapnpTap, type TappedCheck } from '../../../src/capnp/tap/tap.js';
import { PROKSI_DEFAULTS } from '../../../src/capnp/model.js';
import { encodeBootstrap, encodeCheckCall } from '../../../src/capnp/wire/rpc.js';
import { runMain } from '../../cli/run.js';

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

const request = { method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.5:40000', headers: [{ name: 'accept', value: '*/*' }] };

describe('capnp-tap --max-pending', () => {
  it('a connection with more calls waiting for their Returns is relayed and no longer read (one line); every byte still reaches the service', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capnp-tap-'));
    stops.push(() => rmSync(dir, { recursive: true, force: true }));
    // A service that reads everything and never answers.
    let received = Buffer.alloc(0);
    const service = net.createServer((socket) => socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c]))));
    await new Promise<void>((resolve) => service.listen(join(dir, 'auth.sock'), resolve));
    stops.push(() => new Promise<void>((resolve) => service.close(() => resolve())));
    const log: string[] = [];
    const checks: TappedCheck[] = [];
    const relay = await startCapnpTap({
      listen: join(dir, 'tap.sock'), upstream: join(dir, 'auth.sock'), proksi: PROKSI_DEFAULTS, maxPending: 3,
      onExchange: (c) => checks.push(c), log: (line) => log.push(line),
    });
    stops.push(() => relay.close());
    const sent = Buffer.concat([encodeBootstrap(0), ...[1, 2, 3, 4, 5].map((id) => encodeCheckCall(id, { promisedAnswer: 0 }, request))]);
    const client = net.createConnection({ path: join(dir, 'tap.sock') }, () => client.write(sent));
    client.on('error', () => undefined);
    stops.push(() => void client.destroy());
    await until(() => received.length === sent.length && log.length > 0);
    expect(received.equals(sent)).toBe(true);
    expect(log).toEqual([
      'connection 1: more than 3 calls waiting for their Returns (--max-pending): relayed, no longer read',
      'connection 1: 3 call(s) in flight no longer read: not reported',
    ]);
    expect(checks).toEqual([]);
  });

  it('the flag takes a count from 1; its default is capnp-serve\'s --max-answers', async () => {
    expect(DEFAULT_CAPNP_TAP_MAX_PENDING).toBe(65_536);
    const bad = await runMain(['capnp-tap', '--listen', '/tmp/x.sock', '--upstream', '/tmp/y.sock', '--max-pending', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-pending/);
    expect((await runMain(['capnp-tap', '--help'])).stdout).toMatch(/--max-pending <n>[\s\S]*65,536/);
  });
});
