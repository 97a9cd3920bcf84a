import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAuthServer, type AuthServer } from '../../src/capnp/server/server.js';
import { httpServer, rawServer, type TestServer } from '../xray/servers.js';
import { checkWellFormed } from '../report/html.js';
import { expectOneLineError, runCli, runMain } from './run.js';
import { eventually } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../bin/authkit.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'authkit-load-cli-'));
const UUID = '550e8400-e29b-41d4-a716-446655440000';
let capnp: AuthServer;
let xray: TestServer;

beforeAll(async () => {
  capnp = await startAuthServer({ socketPath: join(dir, 'auth.sock'), decide: () => ({ action: 'pass', statusCode: 200, upstreamValue: 'user=1', redirectLocation: '', responseBody: '' }) });
  xray = await httpServer((request, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ user: { email: 'a@example.com', level: 0 } }));
  });
});
afterAll(async () => {
  await capnp.close();
  await xray.close();
});

const SUMMARY_KEYS = ['model', 'targetRate', 'achievedRate', 'requests', 'dropped', 'outcomes', 'latencyUs', 'serviceUs', 'schedulerLatenessUs', 'clientCpuUsPerRequest'];

describe('capnp-check --load', () => {
  it('open model: the JSON summary has every field the issue names', async () => {
    const result = await runMain(['capnp-check', '--socket', capnp.path, '--timeout-ms', '10s', '--load', '--rate', '200', '--duration', '1s', '--json']);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    for (const key of SUMMARY_KEYS) expect(summary).toHaveProperty(key);
    expect(summary).toMatchObject({ model: 'open', targetRate: 200, dropped: 0, outcomes: { pass: 200 } });
    expect(summary.requests).toBe(200);
    expect(Object.keys(summary.latencyUs)).toEqual(['p50', 'p90', 'p99', 'p999', 'max', 'min', 'mean', 'stddev']);
    expect(Object.keys(summary.latencyUsByClass)).toEqual(['pass']);
    expect(summary.latencyUsAll.p50).toBeGreaterThan(0);
    expect(Object.keys(summary.schedulerLatenessUs)).toEqual(['p50', 'p99']);
  });

  it('closed model with --csv, --hdr-log and --html: three readable files', async () => {
    const files = { csv: join(dir, 'c.csv'), hlog: join(dir, 'c.hlog'), html: join(dir, 'c.html') };
    const result = await runMain(['capnp-check', '--socket', capnp.path, '--load', '--concurrency', '8', '--duration', '2s', '--csv', files.csv, '--hdr-log', files.hlog, '--html', files.html]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/closed model, 2\.\d s measured: achieved [\d,]+ req\/s/);
    expect(result.stdout).toMatch(/closed model: latencies are service times/);
    const csv = readFileSync(files.csv, 'utf8').trim().split('\n');
    expect(csv[0]).toBe('t_s,target_rate,achieved_rate,requests,errors,dropped,p50_us,p99_us,max_us,service_p99_us,length_s,start_epoch_s');
    expect(csv.length).toBeGreaterThanOrEqual(3);
    expect(readFileSync(files.hlog, 'utf8')).toMatch(/^#\[Histogram log format version 1\.3\]/);
    const { tags } = checkWellFormed(readFileSync(files.html, 'utf8'));
    expect(tags.get('figure')).toBe(3);
    expect(tags.get('path')).toBeGreaterThanOrEqual(2);
  });

  it('--ndjson streams one line per interval, --raw one line per request, --percentiles picks the columns, --arrivals poisson keeps the rate', async () => {
    const files = { ndjson: join(dir, 'run.ndjson'), raw: join(dir, 'run.csv') };
    const result = await runMain(['capnp-check', '--socket', capnp.path, '--load', '--rate', '200', '--duration', '2s', '--arrivals', 'poisson',
      '--percentiles', '50,99,99.99', '--ndjson', files.ndjson, '--raw', files.raw, '--threshold', 'p99.99{pass}<10s', '--threshold', 'error_rate{timeout}<1%']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/latency \(from intended\)\s+min\s+p50\s+p99\s+p99\.99\s+max\s+mean\s+stddev/);
    expect(result.stdout).toMatch(/pass threshold p99\.99\{pass\}<10s/);
    const intervals = readFileSync(files.ndjson, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(intervals.length).toBeGreaterThanOrEqual(2);
    expect(intervals.every((i) => i.type === 'interval' && typeof i.startEpochS === 'number' && typeof i.partial === 'boolean')).toBe(true);
    const total = intervals.reduce((n, i) => n + i.requests, 0);
    const raw = readFileSync(files.raw, 'utf8').trim().split('\n');
    expect(raw[0]).toBe('intended_epoch_ms,sent_epoch_ms,latency_us,service_us,outcome,kind');
    expect(raw.length - 1).toBe(total);
    const [intended, sent, latency, service, outcome] = raw[1]!.split(',');
    expect(Number(sent)).toBeGreaterThanOrEqual(Number(intended));
    expect(Number(latency)).toBeGreaterThanOrEqual(Number(service));
    expect(outcome).toBe('pass');
    // Poisson arrivals at 200/s for 2 s: 400 expected, and a count this far off has a chance below 1e-9.
    expect(total).toBeGreaterThan(250);
    expect(total).toBeLessThan(550);
  });

  it('--pipelining is refused: calls on one connection are already concurrent', async () => {
    const result = await runMain(['capnp-check', '--socket', capnp.path, '--load', '--concurrency', '2', '--pipelining', '4']);
    expect(result.code).toBe(2);
    expect(expectOneLineError(result)).toMatch(/--pipelining: calls on a Cap'n Proto connection are already concurrent/);
  });

  it('no service at the socket: one line, exit 1, no histogram of connection errors', async () => {
    const result = await runMain(['capnp-check', '--socket', join(dir, 'none.sock'), '--load', '--rate', '10', '--duration', '1s']);
    expect(result.code).toBe(1);
    expect(expectOneLineError(result)).toBe(`error: no socket at ${join(dir, 'none.sock')}`);
    expect(result.stdout).toBe('');
  });
});

describe('xray-sim --load', () => {
  const sim = (extra: string[]) => runMain(['xray-sim', '--url', xray.url, '--credential', UUID, '--load', ...extra]);

  it('thresholds: exit 0 when all hold, 3 naming the breached one', async () => {
    const ok = await sim(['--rate', '100', '--duration', '1s', '--threshold', 'p99<10s', '--threshold', 'error_rate<1%']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/pass threshold p99<10s/);
    const breached = await sim(['--rate', '100', '--duration', '1s', '--threshold', 'p99<1us', '--threshold', 'error_rate<1%']);
    expect(breached.code).toBe(3);
    expect(breached.stdout).toMatch(/FAIL threshold p99<1us/);
    expect(breached.stderr).toMatch(/threshold breached: p99<1us/);
    expect(breached.stderr).not.toMatch(/error_rate/);
  });

  it('closed model with pipelining against Node\'s server: every reply read as Xray reads it', async () => {
    const result = await sim(['--concurrency', '4', '--pipelining', '2', '--requests', '500', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ model: 'closed', requests: 500, outcomes: { allow: 500 }, errors: 0 });
  });

  it('a backend that hangs: timeouts, and exit 1 when every request failed', async () => {
    const hang = await rawServer(() => undefined);
    const result = await runMain(['xray-sim', '--url', hang.url, '--credential', UUID, '--timeout', '1', '--load', '--rate', '5', '--duration', '1s', '--json']);
    await hang.close();
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ outcomes: { timeout: 5 }, errors: 5 });
    expect(result.stderr).toMatch(/error: every request failed/);
  });

  it('a backend that closes every connection after its reply (Connection: close): new connections, no crash', async () => {
    const closing = await httpServer((request, res) => {
      res.setHeader('connection', 'close');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ user: { email: 'a@example.com', level: 0 } }));
    });
    const result = await runMain(['xray-sim', '--url', closing.url, '--credential', UUID, '--load', '--concurrency', '2', '--duration', '1s', '--json']);
    await closing.close();
    expect(result.code).toBe(0);
    // Any steady rate proves reconnection works; how fast depends on the machine.
    expect(JSON.parse(result.stdout).outcomes.allow).toBeGreaterThan(5);
  });

  it('a backend that never answers and no timeout: exit 1, latency thresholds not met by an empty histogram', async () => {
    const silent = await rawServer(() => undefined);
    const result = await runMain(['xray-sim', '--url', silent.url, '--credential', UUID, '--timeout', '0', '--load', '--rate', '10', '--duration', '1s', '--threshold', 'p99<10ms', '--json']);
    await silent.close();
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ requests: 0, unfinished: 10, errorRate: 1 });
    expect(summary.thresholds[0]).toMatchObject({ threshold: 'p99<10ms', ok: false });
    expect(result.stderr).toMatch(/error: no request got a reply \(10 unfinished, 0 dropped\)/);
  }, 30_000);

  it('an output file that cannot be written fails before the run, with one line', async () => {
    for (const flag of ['--csv', '--hdr-log', '--html', '--ndjson', '--raw']) {
      const started = performance.now();
      const result = await sim(['--rate', '10', '--duration', '60s', flag, join(dir, 'no-such-dir', 'out')]);
      expect(result.code, flag).toBe(2);
      expect(expectOneLineError(result)).toMatch(new RegExp(`^authkit: ${flag}: cannot write .*no-such-dir/out: ENOENT$`));
      // Before the run: far less than its 60 s.
      expect(performance.now() - started).toBeLessThan(30_000);
    }
  });

  it('a backend that answers garbage: network errors, counted', async () => {
    const garbage = await rawServer((socket) => socket.on('data', () => socket.write('garbage\r\n\r\n')));
    const result = await runMain(['xray-sim', '--url', garbage.url, '--credential', UUID, '--load', '--rate', '20', '--duration', '1s', '--json']);
    await garbage.close();
    expect(JSON.parse(result.stdout).outcomes).toEqual({ 'network-error': 20 });
  });

  it('an unreachable URL fails fast with one line', async () => {
    const result = await runMain(['xray-sim', '--url', 'http://127.0.0.1:1/auth', '--credential', UUID, '--load', '--rate', '10']);
    expect(result.code).toBe(1);
    expect(expectOneLineError(result)).toBe('error: cannot connect to 127.0.0.1:1: connection refused (nothing listens there)');
  });

  it('the event mix prints the expected rates first and reports each event type', async () => {
    const result = await sim(['--arrival', '20', '--mean-duration', '2', '--heartbeat', '1', '--duration', '2s', '--json']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/expected requests\/s once steady, if every connection is allowed: authorization 20\.0, connect 20\.0, heartbeat 40\.0, disconnect 20\.0/);
    const summary = JSON.parse(result.stdout);
    expect(Object.keys(summary.kinds).sort()).toEqual(['authorization', 'connect', 'disconnect', 'heartbeat']);
  });

  it('bad input: one line naming the part, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--stages', '10s:100,oops'], /^authkit: --stages part 2 \("oops"\): expected DURATION:TARGET/],
      [['--rate', '10', '--threshold', 'p99<<5'], /^authkit: --threshold "p99<<5": /],
      [['--rate', '0'], /^authkit: --rate: expected a number above 0, got "0"/],
      [['--rate=-5'], /^authkit: --rate: expected a number above 0, got "-5"/],
      [['--rate', '10', '--duration', '25h'], /^authkit: a 25\.0 h run: over 24 h needs --yes/],
      [['--rate', '10', '--concurrency', '5'], /exclude each other/],
      [[], /--load needs --rate R/],
      [['--concurrency', '5', '--threshold', 'achieved_rate>0.9*target'], /the closed model has no target rate/],
      [['--arrival', '10', '--requests', '100'], /^authkit: --requests: the event mix runs for --duration/],
      [['--rate', '10', '--threshold', 'p99{alow}<5ms'], /^authkit: --threshold "p99\{alow\}<5ms": unknown outcome class "alow" \(this target's: allow, policy-deny/],
      [['--rate', '10', '--percentiles', '50,101'], /^authkit: --percentiles: expected percentiles above 0 and up to 100/],
      [['--rate', '10', '--arrivals', 'bursty'], /^authkit: --arrivals: expected uniform or poisson, got "bursty"/],
      [['--concurrency', '2', '--arrivals', 'poisson'], /^authkit: --arrivals: the closed model has no arrivals/],
    ];
    for (const [extra, message] of cases) {
      const result = await sim(extra);
      expect(result.code, extra.join(' ')).toBe(2);
      expect(expectOneLineError(result)).toMatch(message);
    }
  });

  it('Ctrl-C: stops sending, prints the partial report, exit 130', async () => {
    const child = spawn(process.execPath, [BIN, 'xray-sim', '--url', xray.url, '--credential', UUID, '--load', '--rate', '100', '--duration', '60s', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    // Once requests arrive the run is under way (its handlers installed): then Ctrl-C. Waiting
    // on the backend rather than a clock keeps this independent of how fast the machine starts node.
    const before = xray.requests.length;
    await eventually(() => xray.requests.length >= before + 5, 30_000);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    const summary = JSON.parse(stdout);
    expect(summary.interrupted).toBe(true);
    expect(summary.requests).toBeGreaterThan(0);
    // 60 s at 100 req/s would be 6000: it stopped long before.
    expect(summary.requests).toBeLessThan(6000);
  });
});

describe('authkit report merge', () => {
  it('merges the logs of two generators into one report', async () => {
    const [a, b] = [join(dir, 'a.hlog'), join(dir, 'b.hlog')];
    const runs = await Promise.all([a, b].map((file) => runCli(['capnp-check', '--socket', capnp.path, '--timeout-ms', '10s', '--load', '--rate', '100', '--duration', '2s', '--hdr-log', file, '--json'])));
    const [ra, rb] = runs.map((r) => JSON.parse(r.stdout));
    const merged = await runMain(['report', 'merge', a, b, '--json', '--html', join(dir, 'merged.html'), '--threshold', 'requests>=400']);
    expect(merged.code).toBe(0);
    const summary = JSON.parse(merged.stdout);
    expect(summary).toMatchObject({ files: 2, requests: ra.requests + rb.requests, outcomes: { pass: 400 }, targetRate: 200 });
    checkWellFormed(readFileSync(join(dir, 'merged.html'), 'utf8'));
    // The same log twice, or a copy of it, would count one generator twice.
    copyFileSync(a, join(dir, 'a-copy.hlog'));
    for (const twice of [[a, a], [a, b, join(dir, 'a-copy.hlog')]]) {
      const refused = await runMain(['report', 'merge', ...twice]);
      expect(refused.code).toBe(2);
      expect(expectOneLineError(refused)).toMatch(/a(-copy)?\.hlog: the same log as .*a\.hlog/);
    }
  });

  it('a missing or cut-off log: one line, exit 2', async () => {
    const missing = await runMain(['report', 'merge', join(dir, 'none.hlog')]);
    expect(missing.code).toBe(2);
    expect(expectOneLineError(missing)).toMatch(/none\.hlog: .*(no such file|not found)/i);
  });
});

describe.skipIf(!existsSync('/usr/bin/chromium'))('the HTML report in headless Chromium', () => {
  it('renders to a screenshot with content', async () => {
    const html = join(dir, 'shot.html');
    await runMain(['capnp-check', '--socket', capnp.path, '--load', '--rate', '200', '--duration', '2s', '--html', html]);
    const png = join(dir, 'shot.png');
    execFileSync('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--screenshot=${png}`, '--window-size=800,1300', `file://${html}`], { stdio: 'ignore', timeout: 60_000 });
    // A blank page is ~5 KB; three charts and tables are tens of KB.
    expect(statSync(png).size).toBeGreaterThan(30_000);
  }, 90_000);
});
