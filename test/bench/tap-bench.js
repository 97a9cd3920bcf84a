// `npm run bench`, tap part (issue 17's figures): xray-tap between `xray-sim --load` and the
// stand-in backend, against the direct path in the same run, alternating rounds:
//   - what the tap adds to p50 latency at 1000 req/s (open model);
//   - the closed-model rate (50 connections) through the tap as a share of the direct rate;
//   - both again through a bare Node pipe relay (pipe-relay.js): the floor for any relay on Node;
//   - and through a native epoll relay (native-relay.c, built here with cc): the floor for any
//     relay process on these cores, whatever it is written in;
//   - the tap's memory (RSS) while it relays and records at 1000 req/s for BENCH_TAP_MINUTES (10).
// The tap, the backend and the load generator are three processes on the same cores. Markdown on stdout.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;
const AUTHKIT = join(ROOT, 'bin', 'authkit.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 5);
const MINUTES = Number(process.env.BENCH_TAP_MINUTES ?? 10);
const UUID = '550e8400-e29b-41d4-a716-446655440000';
const say = (m) => process.stderr.write(`bench: ${m}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Every child started, stopped at the end whatever happened. */
const children = [];

/** A child that prints a line matching `ready` once it serves; resolves with the match. */
async function start(args, ready, command = process.execPath) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  const match = await new Promise((resolve, reject) => {
    const look = (chunk) => {
      text += chunk;
      const m = ready.exec(text);
      if (m) resolve(m);
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${text}`)));
  });
  child.removeAllListeners('exit');
  return { child, match };
}

function load(url, args) {
  const out = execFileSync(process.execPath, [AUTHKIT, 'xray-sim', '--url', url, '--credential', UUID, '--load', '--duration', `${SECONDS}s`, '--json', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out);
}

function rssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/\d+/.exec(line)[0]) / 1024;
}

const dir = mkdtempSync(join(tmpdir(), 'authkit-tap-bench-'));
try {
  const backend = await start([join(ROOT, 'test', 'bench', 'json-server.js'), '0'], /^(\d+)$/m);
  const direct = `http://127.0.0.1:${backend.match[1]}/auth`;
  const tap = await start([AUTHKIT, 'xray-tap', '--listen', '127.0.0.1:0', '--upstream', `http://127.0.0.1:${backend.match[1]}`, '--record', join(dir, 'bench.jsonl'), '--record-secrets', '--quiet'], /listening on 127\.0\.0\.1:(\d+)/);
  const tapped = `http://127.0.0.1:${tap.match[1]}/auth`;
  const pipe = await start([join(ROOT, 'test', 'bench', 'pipe-relay.js'), backend.match[1]], /relaying 127\.0\.0\.1:(\d+)/);
  const piped = `http://127.0.0.1:${pipe.match[1]}/auth`;
  const nativeBinary = join(dir, 'native-relay');
  const built = spawnSync('cc', ['-O2', '-o', nativeBinary, join(ROOT, 'test', 'bench', 'native-relay.c')], { encoding: 'utf8' });
  if (built.status !== 0) say(`no native relay (cc: ${built.error?.message ?? built.stderr.trim()}): its column is left out`);
  const native = built.status === 0 ? await start([backend.match[1]], /relaying 127\.0\.0\.1:(\d+)/, nativeBinary) : undefined;
  const paths = [['direct', direct], ['tap', tapped], ['pipe', piped], ...(native ? [['native', `http://127.0.0.1:${native.match[1]}/auth`]] : [])];
  const rows = { open: Object.fromEntries(paths.map(([name]) => [name, []])), closed: Object.fromEntries(paths.map(([name]) => [name, []])) };
  for (let round = 1; round <= ROUNDS; round++) {
    say(`tap round ${round}/${ROUNDS}: 1000 req/s and 50 connections, direct, through the tap, through a bare Node relay${native ? ', through a native relay' : ''}`);
    for (const [name, url] of paths) {
      rows.open[name].push(load(url, ['--rate', '1000']).latencyUs.p50);
      rows.closed[name].push(load(url, ['--concurrency', '50']).achievedRate);
    }
  }
  say(`tap memory: 1000 req/s through the tap, recording, for ${MINUTES} min`);
  const memory = [];
  const long = spawn(process.execPath, [AUTHKIT, 'xray-sim', '--url', tapped, '--credential', UUID, '--load', '--rate', '1000', '--duration', `${MINUTES * 60}s`, '--json'], { stdio: ['ignore', 'ignore', 'ignore'] });
  // Listened for now: the run may end while the last sample waits.
  const longEnded = new Promise((resolve) => long.on('exit', resolve));
  memory.push({ minute: 0, mib: rssMiB(tap.child.pid) });
  for (let minute = 1; minute <= MINUTES; minute++) {
    await new Promise((resolve) => setTimeout(resolve, 60_000));
    memory.push({ minute, mib: rssMiB(tap.child.pid) });
    say(`tap memory: minute ${minute}: ${memory.at(-1).mib.toFixed(0)} MiB`);
  }
  await longEnded;
  const recorded = statSync(join(dir, 'bench.jsonl')).size;
  const added = (name) => median(rows.open[name].map((t, i) => t - rows.open.direct[i]));
  const ratio = (name) => median(rows.closed[name].map((t, i) => t / rows.closed.direct[i]));
  const lines = [
    `**xray-tap** between \`xray-sim --load\` and the stand-in backend, median of ${ROUNDS} alternating rounds of ${SECONDS} s (tap, backend and load generator share the cores):`,
    '',
    `| figure | direct | through xray-tap | tap | through a bare Node relay | Node relay |${native ? ' through a native relay (C, epoll) | native relay |' : ''} target for the tap |`,
    `|---|---:|---:|---:|---:|---:|${native ? '---:|---:|' : ''}---:|`,
    `| p50 latency at 1000 req/s (open model) | ${fmt(median(rows.open.direct))} µs | ${fmt(median(rows.open.tap))} µs | +${fmt(added('tap'))} µs | ${fmt(median(rows.open.pipe))} µs | +${fmt(added('pipe'))} µs |${native ? ` ${fmt(median(rows.open.native))} µs | +${fmt(added('native'))} µs |` : ''} <= +100 µs |`,
    `| rate, closed model, 50 connections | ${fmt(median(rows.closed.direct))} req/s | ${fmt(median(rows.closed.tap))} req/s | ${ratio('tap').toFixed(2)}x | ${fmt(median(rows.closed.pipe))} req/s | ${ratio('pipe').toFixed(2)}x |${native ? ` ${fmt(median(rows.closed.native))} req/s | ${ratio('native').toFixed(2)}x |` : ''} >= 0.8x |`,
    '',
    `**Memory** of xray-tap relaying and recording (--record-secrets) 1000 req/s for ${MINUTES} min (RSS, MiB): ${memory.map((m) => `${m.minute} min: ${m.mib.toFixed(0)}`).join(', ')}; the recording grew to ${(recorded / 2 ** 20).toFixed(0)} MiB.`,
  ];
  console.log(lines.join('\n'));
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
