// `npm run bench`, snell-serve part (issues 6 and 16): new multi-user connections per second
// through snell-serve (100 and 10,000 users, 16 of them spread over the store in turn, no IP
// cache: every connection is trial-authenticated) next to the trial authentication alone
// (snell-auth bench's parallel match of the same positions) in alternating rounds; and one
// CONNECT stream's throughput.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { buildFirstPacket } from '../../dist/index.js';
import { selectKdf } from '../../dist/snell/wire/kdf.js';
import { benchTrialAuth, spreadOver, syntheticUsers } from '../../dist/snell/scan/bench.js';
import { defaultScanners } from '../../dist/snell/scan/workers.js';
import { threadCpuSeconds } from './proc-cpu.js';
import { AeadDirection, aeadKey } from '../../dist/snell/wire/aead.js';
import { deriveSnellKey } from '../../dist/snell/wire/kdf.js';
import { SnellStreamWriter } from '../../dist/snell/wire/stream.js';
import { encodeRequest } from '../../dist/snell/wire/request.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const USER_COUNTS = (process.env.BENCH_SERVE_USERS ?? '100,10000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
const say = (m) => process.stderr.write(`bench: ${m}\n`);
const CORES = availableParallelism();
// snell-serve's scan workers.
const SCANNERS = defaultScanners();
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const kdf = await selectKdf();
const dir = mkdtempSync(join(tmpdir(), 'authkit-snell-bench-'));

// The byte sink a tunnel pours into.
let sunk = 0;
const sink = net.createServer((socket) => socket.on('data', (chunk) => (sunk += chunk.length)));
await new Promise((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkPort = sink.address().port;

/** snell-serve on a users file of these users; resolves when it listens. */
async function startServe(users) {
  const file = join(dir, `users-${users.length}.txt`);
  writeFileSync(file, users.map((u) => `${u.name}:${u.psk}`).join('\n'));
  const serve = spawn(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'snell-serve', '--listen', '127.0.0.1:0', '--users', file,
    '--no-ip-cache', '--quiet', '--allow-target', `127.0.0.1:${sinkPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise((resolve) => {
    let text = '';
    serve.stderr.on('data', (c) => {
      text += c;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
  });
  return { serve, port };
}

// PING first packets, built before the clock starts (the client's own KDF must not compete with
// the server for the two cores), each with its own salt, for the 16 users the reference's
// parallel match takes in turn (spread evenly over the store), in the same turn: both sides
// trial-authenticate the same users in the same order.
async function firstPackets(users) {
  say(`building 3000 first packets for 16 users spread over ${users.length}`);
  const spread = spreadOver(users, 16);
  const packets = [];
  for (let i = 0; i < 3000; i++) {
    const user = spread[i % spread.length];
    packets.push(Buffer.from((await buildFirstPacket({ psk: user.psk, kdf, request: { command: 'ping', clientId: new Uint8Array(0) } })).wire));
  }
  return packets;
}

/**
 * Where snell-serve's CPU went between two readings, in µs per connection: its main thread (the
 * network, replies, messaging), its scan workers (the busiest `SCANNERS` other threads: Node
 * does not name its worker threads) and the rest (V8's and libuv's helper threads).
 */
function serverCpuSplit(pid, before, after, connections) {
  const spent = [...after].map(([tid, seconds]) => ({ tid, ms: (seconds - (before.get(tid) ?? 0)) * 1000 }));
  const main = spent.find((t) => t.tid === String(pid))?.ms ?? 0;
  const others = spent.filter((t) => t.tid !== String(pid)).sort((a, b) => b.ms - a.ms);
  const scan = others.slice(0, SCANNERS).reduce((sum, t) => sum + t.ms, 0);
  const rest = others.slice(SCANNERS).reduce((sum, t) => sum + t.ms, 0);
  const per = (ms) => (ms * 1000) / connections;
  return { main: per(main), scan: per(scan), rest: per(rest) };
}

/** Connections answered per second: connect, first packet, wait for the server's reply and close. */
async function serveRate({ serve, port }, packets) {
  const cpu0 = process.cpuUsage();
  const threads0 = threadCpuSeconds(serve.pid);
  let answered = 0;
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (performance.now() - started < SECONDS * 1000) {
      const packet = packets[next++ % packets.length];
      const ok = await new Promise((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        let bytes = 0;
        socket.on('connect', () => socket.write(packet));
        socket.on('data', (c) => (bytes += c.length));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(bytes >= 16 + 23 + 17));
      });
      if (ok) answered++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const rate = (answered * 1000) / (performance.now() - started);
  const cpu = process.cpuUsage(cpu0);
  const client = (cpu.user + cpu.system) / answered;
  const server = serverCpuSplit(serve.pid, threads0, threadCpuSeconds(serve.pid), answered);
  say(`CPU µs/connection: client ${client.toFixed(0)}, snell-serve main thread ${server.main.toFixed(0)}, scan workers ${server.scan.toFixed(0)}, other threads ${server.rest.toFixed(0)}`);
  return { rate, client, ...server };
}

async function referenceRate(count) {
  const [row] = await benchTrialAuth({ users: count, kdfs: [kdf], seconds: SECONDS });
  return row.parallel.connectionsPerSec;
}

/** One CONNECT stream through snell-serve into the sink: MB/s arriving at the sink. */
async function throughput({ port }, users) {
  const psk = Buffer.from(users[0].psk);
  const salt = randomBytes(16);
  const writer = new SnellStreamWriter(new AeadDirection('aes-128-gcm', aeadKey(await deriveSnellKey(kdf, psk, salt), 'aes-128-gcm')), salt);
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(writer.write(encodeRequest({ command: 'connect-v2', clientId: new Uint8Array(0), host: '127.0.0.1', port: sinkPort })));
  const block = randomBytes(1 << 20);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const from = sunk;
  const started = performance.now();
  while (performance.now() - started < SECONDS * 1000) {
    if (!socket.write(writer.write(block))) await new Promise((resolve) => socket.once('drain', resolve));
  }
  const mb = (sunk - from) / 1e6 / ((performance.now() - started) / 1000);
  socket.destroy();
  return mb;
}

const rows = [];
const mbps = [];
try {
  for (const count of USER_COUNTS) {
    const users = syntheticUsers(count);
    const server = await startServe(users);
    const packets = await firstPackets(users);
    const figures = { serve: [], reference: [] };
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        say(`snell-serve, ${count} users, round ${round}/${ROUNDS}: trial authentication alone, then new connections through snell-serve`);
        figures.reference.push(await referenceRate(count));
        figures.serve.push(await serveRate(server, packets));
      }
      if (mbps.length === 0) {
        say('one CONNECT stream through snell-serve');
        for (let i = 0; i < 3; i++) mbps.push(await throughput(server, users));
      }
    } finally {
      server.serve.kill('SIGTERM');
    }
    // What the cores allow even if snell-serve's main thread and helper threads cost nothing: the
    // scans' own CPU and the bench client's, per connection, on CORES cores.
    const ceilings = figures.serve.map((f) => (CORES * 1e6) / (f.scan + f.client));
    rows.push({
      count, serve: median(figures.serve.map((f) => f.rate)), reference: median(figures.reference),
      ratios: figures.serve.map((f, i) => f.rate / figures.reference[i]),
      ceilingRatios: ceilings.map((c, i) => c / figures.reference[i]),
      cpu: Object.fromEntries(['client', 'main', 'scan', 'rest'].map((k) => [k, median(figures.serve.map((f) => f[k]))])),
    });
  }
} finally {
  sink.close();
  rmSync(dir, { recursive: true, force: true });
}
const lines = [
  `**snell-serve**, 16 users spread evenly over the store, one per connection in turn, no IP cache (every connection trial-authenticated), ${IN_FLIGHT} connections at a time, median of ${ROUNDS} alternating rounds of ${SECONDS} s; the reference is the trial authentication alone (snell-auth bench, parallel match, ${kdf.name}) of the same positions in the same turn:`,
  '',
  '| users | trial authentication alone, conn/s | new connections through snell-serve (TCP, first packet, PONG, close), conn/s | ratio | target |',
  '|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${fmt(r.count)} | ${fmt(r.reference)} | ${fmt(r.serve)} | ${median(r.ratios).toFixed(2)} | 1.0 |`),
  '',
  `Where the CPU goes, µs per connection through snell-serve (medians), and the most ${CORES} cores allow if snell-serve's main thread and helper threads cost nothing: ${CORES} cores over the scan workers' CPU and the bench client's:`,
  '',
  '| users | bench client | snell-serve main thread | scan workers | other threads | that ceiling, against the reference |',
  '|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${fmt(r.count)} | ${fmt(r.cpu.client)} | ${fmt(r.cpu.main)} | ${fmt(r.cpu.scan)} | ${fmt(r.cpu.rest)} | ${median(r.ceilingRatios).toFixed(2)} |`),
];
if (mbps.length > 0) lines.push('', `One CONNECT stream through snell-serve on loopback (client encrypts, snell-serve decrypts and forwards): ${mbps.map((m) => `${Math.round(m)}`).join(', ')} MB/s (target 200).`);
console.log(lines.join('\n'));
