/**
 * A real Prometheus (Debian's `prometheus`) scrapes a load run's --metrics-listen and finds the
 * same request count as the run's own summary. The load runs in process against the capnp
 * simulator; Prometheus scrapes every second, and --metrics-linger 3s leaves it time to scrape
 * the final counts after the run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../src/capnp/server/server.js';
import { runMain } from '../cli/run.js';

const PROMETHEUS = process.env.PROMETHEUS ?? 'prometheus';
const available = spawnSync(PROMETHEUS, ['--version']).status === 0;
if (!available && process.env.CI) throw new Error('CI must install prometheus (Debian\'s package) for the Prometheus interop test');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!available)('Prometheus scrapes --metrics-listen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'authkit-prometheus-'));
  let capnp: AuthServer;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let api = '';
  let metricsPort = 0;

  async function query(promql: string, at?: number): Promise<{ status: string; data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } }> {
    const params = new URLSearchParams({ query: promql, ...(at === undefined ? {} : { time: String(at / 1000) }) });
    const response = await fetch(`${api}/api/v1/query?${params}`, { signal: AbortSignal.timeout(10_000) });
    return (await response.json()) as never;
  }

  beforeAll(async () => {
    capnp = await startAuthServer({ socketPath: join(dir, 'auth.sock'), decide: () => ({ action: 'pass', statusCode: 200, upstreamValue: 'user=1', redirectLocation: '', responseBody: '' }) });
    metricsPort = await freePort();
    const webPort = await freePort();
    api = `http://127.0.0.1:${webPort}`;
    writeFileSync(join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: authkit',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${metricsPort}']`,
      '',
    ].join('\n'));
    prometheus = spawn(PROMETHEUS, [
      `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    prometheus.stderr!.on('data', (chunk: Buffer) => (prometheusLog = (prometheusLog + chunk.toString()).slice(-20_000)));
    // Ready within 60 s, polled at most 600 times.
    for (let i = 0; ; i++) {
      const ready = await fetch(`${api}/-/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
      if (ready) break;
      if (i >= 600 || prometheus.exitCode !== null) throw new Error(`prometheus did not get ready:\n${prometheusLog}`);
      await sleep(100);
    }
    // Prometheus hands new targets to its scrape loop only every 5 s after start: wait until the
    // run's target is known (down, as nothing listens yet), so the run is scraped from its start.
    for (let i = 0; ; i++) {
      const targets = await fetch(`${api}/api/v1/targets`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<{ data?: { activeTargets?: unknown[] } }>, () => undefined);
      if ((targets?.data?.activeTargets?.length ?? 0) > 0) break;
      if (i >= 600) throw new Error(`prometheus never took up the scrape target:\n${prometheusLog}`);
      await sleep(100);
    }
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
    }
    await capnp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sum(authkit_load_requests_total) is the run\'s request count', async () => {
    const result = await runMain([
      'capnp-check', '--socket', capnp.path, '--load', '--rate', '200', '--duration', '2s',
      '--metrics-listen', `127.0.0.1:${metricsPort}`, '--metrics-linger', '5s', '--tag', 'run=interop', '--json',
    ]);
    const returnedAt = Date.now();
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary.requests).toBeGreaterThan(0);

    // The server has closed, so Prometheus marks the series stale at its next scrape: the query is
    // evaluated over the last 30 s instead (every 250 ms), and the counters only grow, so their
    // highest sum is the one scraped while the server lingered with the final counts.
    const highest = async (promql: string): Promise<number | undefined> => {
      const answer = await query(`max_over_time((${promql})[30s:250ms])`, returnedAt);
      expect(answer.status).toBe('success');
      const value = answer.data.result[0]?.value[1];
      return value === undefined ? undefined : Number(value);
    };
    expect(await highest('sum(authkit_load_requests_total)'), prometheusLog).toBe(summary.requests);
    expect(await highest('sum(authkit_load_latency_seconds_count)')).toBe(summary.requests);
    expect(await highest('sum(authkit_load_dropped_total)')).toBe(summary.dropped);

    // Every series carries the generator and the tags, next to Prometheus' own job and instance.
    const series = await query('authkit_load_requests_total[30s]', returnedAt);
    expect(series.data.result.map((r) => r.metric)).toEqual([{
      __name__: 'authkit_load_requests_total', class: 'pass', generator: expect.stringMatching(/^.+-\d+$/), run: 'interop',
      job: 'authkit', instance: `127.0.0.1:${metricsPort}`,
    }]);

    // The README's queries are valid PromQL over these series.
    for (const promql of ['histogram_quantile(0.99, sum by (le) (rate(authkit_load_latency_seconds_bucket[1m])))', 'sum(rate(authkit_load_requests_total[1m]))']) {
      const answer = await query(promql, returnedAt);
      expect(answer, promql).toMatchObject({ status: 'success', data: { resultType: 'vector' } });
    }
  });
});
