/** `--metrics-listen`, `--metrics-linger` and `--tag` on a load run, against the in-process capnp simulator. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../src/capnp/server/server.js';
import { eventually } from '../helpers.js';
import { expectOneLineError, runMain } from './run.js';

const BIN = fileURLToPath(new URL('../../bin/authkit.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'authkit-metrics-cli-'));
let capnp: AuthServer;
let calls = 0;

beforeAll(async () => {
  capnp = await startAuthServer({
    socketPath: join(dir, 'auth.sock'),
    decide: () => {
      calls++;
      return { action: 'pass', statusCode: 200, upstreamValue: 'user=1', redirectLocation: '', responseBody: '' };
    },
  });
});
afterAll(async () => {
  await capnp.close();
});

const load = (extra: string[]) => ['capnp-check', '--socket', capnp.path, '--timeout-ms', '10s', '--load', ...extra];

/** GET on a keep-alive connection, as Prometheus scrapes. */
function scrape(url: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

function sample(body: string, name: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('--metrics-listen', () => {
  it('lingering after the run, serves its final counts; Ctrl-C ends the linger; nothing holds the process open', async () => {
    const child = spawn(process.execPath, [BIN, ...load(['--rate', '100', '--duration', '1s', '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '10m', '--tag', 'region=eu', '--tag', 'generator=gen-a', '--json'])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    await eventually(() => /metrics: (\S+)/.test(stderr), 30_000);
    const url = /metrics: (\S+)/.exec(stderr)![1]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // The summary is printed when the run is over: the scrapes after it are of the lingering server.
      await eventually(() => stdout.includes('\n'), 30_000);
      const summary = JSON.parse(stdout);
      expect(summary.requests).toBe(100);
      const body = await scrape(url, agent);
      expect(sample(body, 'authkit_load_requests_total')).toBe(100);
      expect(body).toContain('authkit_load_requests_total{generator="gen-a",region="eu",class="pass"} 100\n');
      expect(body).toContain('authkit_load_latency_seconds_count{generator="gen-a",region="eu"} 100\n');
      expect(body).toContain('authkit_load_latency_seconds_bucket{generator="gen-a",region="eu",le="+Inf"} 100\n');
      expect(sample(body, 'authkit_load_requests_in_flight')).toBe(0);
      expect(sample(body, 'authkit_load_dropped_total')).toBe(0);
      // Ten minutes of linger, cut short by Ctrl-C: the run's exit code stands, the keep-alive scraper does not hold it.
      child.kill('SIGINT');
      expect(await closed).toBe(0);
    } finally {
      child.kill();
      agent.destroy();
    }
  });

  it('without --metrics-linger the server closes when the command returns', async () => {
    const result = await runMain(load(['--concurrency', '2', '--requests', '50', '--metrics-listen', '127.0.0.1:0', '--tag', 'run=ci', '--json']));
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ model: 'closed', requests: 50 });
    const url = /^metrics: (\S+)$/m.exec(result.stderr)![1]!;
    await expect(scrape(url, new Agent())).rejects.toThrow(/ECONNREFUSED/);
  });

  it('bad input: one line, exit 2, before any request is sent', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    const cases: [string[], RegExp][] = [
      [['--tag', 'region'], /^authkit: --tag: expected KEY=VALUE with a non-empty value, got "region"$/],
      [['--tag', 'region-1=eu'], /^authkit: --tag: "region-1" is not a Prometheus label name/],
      [['--tag', '__name__=x'], /^authkit: --tag: "__name__" is not a Prometheus label name/],
      [['--tag', 'class=x'], /^authkit: --tag: "class" is a label of the metrics themselves$/],
      [['--metrics-listen', 'localhost'], /^authkit: --metrics-listen: expected HOST:PORT/],
      [['--metrics-listen', '127.0.0.1:70000'], /^authkit: --metrics-listen: expected HOST:PORT/],
      [['--metrics-listen', `127.0.0.1:${port}`], new RegExp(`^authkit: cannot listen on 127\\.0\\.0\\.1:${port}: address already in use$`)],
      [['--metrics-listen', '127.0.0.1:0', '--metrics-linger', 'soon'], /^authkit: --metrics-linger: expected a duration/],
    ];
    const before = calls;
    try {
      for (const [extra, message] of cases) {
        const result = await runMain(load(['--rate', '10', '--duration', '1s', '--metrics-listen', '127.0.0.1:0', ...extra]));
        expect(result.code, extra.join(' ')).toBe(2);
        expect(expectOneLineError(result)).toMatch(message);
        expect(result.stdout).toBe('');
      }
      for (const flag of [['--tag', 'a=b'], ['--metrics-linger', '3s']]) {
        const result = await runMain(load(['--rate', '10', '--duration', '1s', ...flag]));
        expect(result.code).toBe(2);
        expect(expectOneLineError(result)).toBe(`authkit: ${flag[0]} applies to the live metrics: it needs --metrics-listen HOST:PORT`);
      }
      const oneShot = await runMain(['capnp-check', '--socket', capnp.path, '--metrics-listen', '127.0.0.1:0']);
      expect(oneShot.code).toBe(2);
      expect(expectOneLineError(oneShot)).toMatch(/--metrics-listen belongs to load and replay-load modes/);
    } finally {
      busy.close();
    }
    expect(calls).toBe(before);
  });
});
