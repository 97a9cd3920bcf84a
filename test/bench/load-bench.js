// `npm run bench`, load-engine part (issue 5's figures), all against the same stand-in backend
// in the same run: client CPU per request and throughput in the closed model (50 connections)
// for authkit, autocannon, wrk (when installed) and the floor for any Node client (this file run
// with --floor: a bare net client that writes the request bytes and counts replies); scheduler
// lateness at 1000 req/s with and without --precise; memory over a long open-model run. Results
// (Markdown) on stdout.
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildEventBody } from '../../dist/xray/wire/dialect.js';
import { eventRequest } from '../../dist/xray/client.js';
import { goHeaderLines, goRequestBytes } from '../../dist/xray/wire/go-request.js';
import { parseGoUrl } from '../../dist/xray/wire/go-url.js';
import { DIALECTS } from '../../dist/xray/wire/dialects/index.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MEMORY_SECONDS = Number(process.env.BENCH_MEMORY_SECONDS ?? 60);
const CONNECTIONS = 50;
const UUID = '550e8400-e29b-41d4-a716-446655440000';
const say = (m) => process.stderr.write(`bench: ${m}\n`);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const AUTHKIT = join(ROOT, 'bin', 'authkit.js');
const AUTOCANNON = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((p) => existsSync(p));
const SELF = new URL(import.meta.url).pathname;
/** Issue 16: authkit's whole-process client CPU per request at most this share of autocannon's, at a rate at least autocannon's. */
const CPU_TARGET = 0.8;

/**
 * The interpreter itself, not a launcher: getrusage(RUSAGE_CHILDREN) also counts what a launcher
 * that execs Python ran before it (a pyenv shim: ~200 ms of helper processes), which would be
 * charged to every client measured.
 */
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';

/** Runs a client to completion; returns its stdout and the CPU seconds it and its children used. */
function measured(command, args) {
  const wrapper = 'import json,resource,subprocess,sys\np=subprocess.run(sys.argv[1:],capture_output=True,text=True)\nr=resource.getrusage(resource.RUSAGE_CHILDREN)\nprint(json.dumps({"code":p.returncode,"cpu":r.ru_utime+r.ru_stime,"out":p.stdout,"err":p.stderr[-2000:]}))';
  const result = JSON.parse(execFileSync(PYTHON, ['-c', wrapper, command, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.err}`);
  return result;
}

async function startServer() {
  const child = spawn(process.execPath, [join(ROOT, 'test', 'bench', 'json-server.js'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => child.stdout.once('data', (c) => resolve(Number(String(c).trim()))));
  return { url: `http://127.0.0.1:${port}/auth`, stop: () => child.kill('SIGTERM') };
}

// The request authkit sends (the wiki dialect's authorization), byte for byte the same for every tool.
const dialect = DIALECTS.wiki;
const body = buildEventBody(dialect, 'authorization', { credential: UUID, connectionId: '00000000-0000-4000-8000-000000000000', protocol: 'vless', sourceIp: '198.51.100.10', sourcePort: 40000, localIp: '10.0.0.1', localPort: 443 });
// Go's header lines less Host and Content-Length, which each tool writes itself.
const headers = Object.fromEntries(goHeaderLines(eventRequest(parseGoUrl('http://127.0.0.1/auth'), { dialect, headers: [] }, body)).filter(([n]) => n !== 'Host' && n !== 'Content-Length'));

/**
 * The floor for any Node client: 50 keep-alive connections, each writing the same request bytes
 * again as soon as a reply is in, replies counted by their Content-Length (it knows the stand-in's
 * replies), no parsing, no histogram, no start-up beyond Node's own. Reads go into one buffer per
 * connection (onread), as authkit's do.
 */
async function floorClient(url, seconds) {
  const target = new URL(url);
  const request = goRequestBytes(eventRequest(parseGoUrl(url), { dialect, headers: [] }, body));
  const LENGTH = Buffer.from('content-length: ');
  let requests = 0;
  let stopping = false;
  let open = 0;
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  /** Replies whole in data[at, end): each answered with the next request; returns where the first unfinished one starts. */
  const replies = (socket, data, at, end) => {
    for (;;) {
      const head = data.indexOf('\r\n\r\n', at, 'latin1');
      if (head < 0 || head >= end) return at;
      const field = data.indexOf(LENGTH, at);
      let length = 0;
      for (let j = field + LENGTH.length; data[j] !== 13; j++) length = length * 10 + data[j] - 48;
      if (head + 4 + length > end) return at;
      at = head + 4 + length;
      requests++;
      if (stopping) {
        socket.destroy();
        if (--open === 0) done();
        return end;
      }
      socket.write(request);
    }
  };
  for (let i = 0; i < CONNECTIONS; i++) {
    open++;
    const buffer = Buffer.allocUnsafe(65536);
    // A reply split across reads (rare: one request in flight per connection) waits, copied, for the rest.
    let carry;
    const socket = net.connect({
      host: target.hostname, port: Number(target.port), onread: { buffer, callback: (n) => {
        const data = carry ? Buffer.concat([carry, buffer.subarray(0, n)]) : buffer;
        const end = carry ? data.length : n;
        const at = replies(socket, data, 0, end);
        carry = at < end ? Buffer.from(data.subarray(at, end)) : undefined;
        return true;
      } },
    });
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(request));
  }
  setTimeout(() => (stopping = true), seconds * 1000);
  await finished;
  console.log(JSON.stringify({ requests, seconds }));
}

if (process.argv[2] === '--floor') {
  await floorClient(process.argv[3], Number(process.argv[4]));
  process.exit(0);
}

function floorClosed(url) {
  const r = measured(process.execPath, [SELF, '--floor', url, String(SECONDS)]);
  const s = JSON.parse(r.out);
  return { rate: s.requests / s.seconds, cpuUs: (r.cpu * 1e6) / s.requests };
}

/** CPU seconds of authkit's start-up and exit alone: `xray-sim --help` loads what a load run loads, and stops. */
function authkitStartup() {
  return measured(process.execPath, [AUTHKIT, 'xray-sim', '--help']).cpu;
}

/** `metrics`: with live Prometheus metrics on (issue 15: they must not cost the client). */
function authkitClosed(url, metrics = false) {
  const extra = metrics ? ['--metrics-listen', '127.0.0.1:0'] : [];
  const r = measured(process.execPath, [AUTHKIT, 'xray-sim', '--url', url, '--credential', UUID, '--load', '--concurrency', String(CONNECTIONS), '--duration', `${SECONDS}s`, '--json', ...extra]);
  const s = JSON.parse(r.out);
  return { rate: s.achievedRate, cpuUs: (r.cpu * 1e6) / s.requests, selfCpuUs: s.clientCpuUsPerRequest };
}

function autocannonClosed(url) {
  const args = [AUTOCANNON, '-c', String(CONNECTIONS), '-d', String(SECONDS), '-m', 'POST', '-b', body, '--json'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`);
  const r = measured(process.execPath, [...args, url]);
  const s = JSON.parse(r.out);
  const requests = s.requests.total;
  return { rate: requests / s.duration, cpuUs: (r.cpu * 1e6) / requests };
}

function wrkClosed(url) {
  const lua = `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\n${Object.entries(headers).map(([n, v]) => `wrk.headers[${JSON.stringify(n)}] = ${JSON.stringify(v)}`).join('\n')}\n`;
  const script = join(ROOT, 'test-results', 'wrk-post.lua');
  execFileSync('sh', ['-c', `mkdir -p ${join(ROOT, 'test-results')} && cat > ${script}`], { input: lua });
  const r = measured(WRK, ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, '-s', script, url]);
  const requests = Number(/(\d+) requests in/.exec(r.out)[1]);
  const seconds = Number(/requests in ([\d.]+)s/.exec(r.out)[1]);
  return { rate: requests / seconds, cpuUs: (r.cpu * 1e6) / requests };
}

function lateness(url, precise) {
  const r = measured(process.execPath, [AUTHKIT, 'xray-sim', '--url', url, '--credential', UUID, '--load', '--rate', '1000', '--duration', '10s', '--json', ...(precise ? ['--precise'] : [])]);
  const s = JSON.parse(r.out);
  return { p50: s.schedulerLatenessUs.p50, p99: s.schedulerLatenessUs.p99, latencyP99: s.latencyUs.p99, cpuPercent: (r.cpu / 10) * 100 };
}

async function memory(url) {
  const child = spawn(process.execPath, [AUTHKIT, 'xray-sim', '--url', url, '--credential', UUID, '--load', '--rate', '2000', '--duration', `${MEMORY_SECONDS}s`, '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const samples = [];
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
  const step = Math.max(5, MEMORY_SECONDS / 10);
  for (let t = step; t <= MEMORY_SECONDS; t += step) {
    await new Promise((resolve) => setTimeout(resolve, step * 1000));
    try {
      samples.push({ t, mib: rss() });
    } catch {
      break;
    }
  }
  await new Promise((resolve) => child.on('close', resolve));
  return samples;
}

const server = await startServer();
const rows = { authkit: [], metrics: [], autocannon: [], wrk: [], floor: [], startup: [] };
try {
  for (let round = 1; round <= ROUNDS; round++) {
    say(`load round ${round}/${ROUNDS}: authkit, autocannon, authkit with --metrics-listen${WRK ? ', wrk' : ''}, bare Node client, ${CONNECTIONS} connections, ${SECONDS} s each`);
    rows.authkit.push(authkitClosed(server.url));
    rows.autocannon.push(autocannonClosed(server.url));
    rows.metrics.push(authkitClosed(server.url, true));
    if (WRK) rows.wrk.push(wrkClosed(server.url));
    rows.floor.push(floorClosed(server.url));
    rows.startup.push({ cpu: authkitStartup() });
  }
  say('scheduler lateness at 1000 req/s, default and --precise');
  const late = [lateness(server.url, false), lateness(server.url, true)];
  say(`memory over a ${MEMORY_SECONDS} s open-model run at 2000 req/s`);
  const mem = await memory(server.url);

  const m = (name, key) => median(rows[name].map((r) => r[key]));
  const line = (label, name) => `| ${label} | ${fmt(m(name, 'rate'))} | ${m(name, 'cpuUs').toFixed(1)} | ${(m(name, 'rate') / m('autocannon', 'rate')).toFixed(2)} | ${(m(name, 'cpuUs') / m('autocannon', 'cpuUs')).toFixed(2)} |`;
  const out = [
    `**Load engine**, closed model, ${CONNECTIONS} connections, ${SECONDS} s per client, median of ${ROUNDS} alternating rounds, against one node:http process that JSON-parses each body (test/bench/json-server.js); the same request bytes for every client (the wiki authorization, ${Buffer.byteLength(body)}-byte body). Client CPU per request is the whole process's user+system time (getrusage) over its requests.`,
    '',
    '| client | req/s | client CPU µs/request | rate vs autocannon | CPU vs autocannon |',
    '|---|---:|---:|---:|---:|',
    line('authkit xray-sim --load', 'authkit'),
    line('authkit, with --metrics-listen', 'metrics'),
    line('autocannon 9', 'autocannon'),
    ...(WRK ? [line('wrk 4 (native reference)', 'wrk')] : []),
    line('bare Node net client (the floor for a Node client)', 'floor'),
    '',
    `Target (issue 16): authkit's client CPU at most ${CPU_TARGET.toFixed(2)}x autocannon's at a rate at least autocannon's: ` +
      `${(m('authkit', 'cpuUs') / m('autocannon', 'cpuUs')).toFixed(2)}x CPU, ${(m('authkit', 'rate') / m('autocannon', 'rate')).toFixed(2)}x rate: ` +
      `${m('authkit', 'cpuUs') <= CPU_TARGET * m('autocannon', 'cpuUs') && m('authkit', 'rate') >= m('autocannon', 'rate') ? 'met' : 'not met'}.`,
    '',
    `authkit's own figure for the measured part (no start-up): ${m('authkit', 'selfCpuUs').toFixed(1)} µs/request; ` +
      `start-up and exit alone (\`authkit xray-sim --help\`): ${fmt(m('startup', 'cpu') * 1000)} ms of CPU, ${((m('startup', 'cpu') * 1e6) / (m('authkit', 'rate') * SECONDS)).toFixed(1)} µs/request at this rate.`,
    '',
    '**Open model at 1000 req/s**, 10 s, same backend:',
    '',
    '| pacing | scheduler lateness p50 | p99 | target | from-intended p99 | client CPU |',
    '|---|---:|---:|---:|---:|---:|',
    `| default (timers) | ${fmt(late[0].p50)} µs | ${fmt(late[0].p99)} µs | < 2,000 µs | ${fmt(late[0].latencyP99)} µs | ${late[0].cpuPercent.toFixed(0)} % |`,
    `| --precise | ${fmt(late[1].p50)} µs | ${fmt(late[1].p99)} µs | < 500 µs | ${fmt(late[1].latencyP99)} µs | ${late[1].cpuPercent.toFixed(0)} % |`,
    '',
    `**Memory** of \`xray-sim --load --rate 2000\` over ${MEMORY_SECONDS} s (RSS, MiB): ${mem.map((s) => `${s.t} s: ${s.mib.toFixed(0)}`).join(', ')}.`,
  ];
  console.log(out.join('\n'));
} finally {
  server.stop();
}
