// `npm run bench`: the figures the README quotes. The headline is a ratio against a native
// reference measured on the same machine in the same run; the two are measured in alternating
// rounds and the median taken, because a shared VM's speed drifts within a minute.
// Progress goes to stderr, the results (Markdown) to stdout.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { availableKdfs } from '../../dist/snell/wire/kdf.js';
import { UserStore } from '../../dist/snell/user-store.js';
import { buildFirstPacket, TrialAuthenticator } from '../../dist/index.js';
import { benchTrialAuth, syntheticUsers } from '../../dist/snell/scan/bench.js';

const USERS = Number(process.env.BENCH_USERS ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const REFERENCE = new URL('./reference_trial.py', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const say = (m) => process.stderr.write(`bench: ${m}\n`);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const frame = async (psk) => (await buildFirstPacket({ psk, request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } })).wire;

say(`machine: ${cpus().length} x ${cpus()[0]?.model}, Node ${process.version}`);
const kdfs = await availableKdfs();
const best = kdfs[0];

// Headline: the cold path (no user matches), USERS users, both cores, against libargon2 + OpenSSL.
const users = syntheticUsers(USERS);
const auth = await TrialAuthenticator.create(UserStore.fromUsers(users), { kdf: best, detectLegacy: false });
const miss = await frame(randomBytes(16).toString('base64'));
async function ourColdRate(authenticator = auth) {
  let scans = 0;
  const started = performance.now();
  while (performance.now() - started < SECONDS * 1000) {
    await authenticator.authenticate(miss);
    scans++;
  }
  return (scans * USERS * 1000) / (performance.now() - started);
}
function referenceRate(mode) {
  const out = execFileSync(PYTHON, [REFERENCE, String(USERS), String(SECONDS), mode], { encoding: 'utf8' });
  const json = JSON.parse(out);
  return json.twoProcessesUserTrialsPerSec ?? json.twoThreadsUserTrialsPerSec ?? json.serialUserTrialsPerSec;
}
let reference;
try {
  execFileSync(PYTHON, ['-c', 'import argon2, cryptography']);
  reference = { ours: [], processes: [] };
} catch {
  say(`no reference: ${PYTHON} lacks python3-argon2 / python3-cryptography`);
}
for (let round = 1; round <= ROUNDS; round++) {
  say(`headline round ${round}/${ROUNDS}: authkit cold path, ${USERS} users`);
  const ours = await ourColdRate();
  if (!reference) continue;
  reference.ours.push(ours);
  // Processes, not threads: two Python threads contend for the GIL between calls, which made
  // that figure swing between 26k and 62k here.
  say(`headline round ${round}/${ROUNDS}: reference, 2 processes`);
  reference.processes.push(referenceRate('processes'));
}
const ours = reference ? median(reference.ours) : await ourColdRate();

// A miss with the legacy diagnosis on, against the v4 scan alone, alternating.
const diagnosis = { on: [], off: [] };
// The same scan with snell-auth's default legacy v1-v3 diagnosis after the miss.
const diagnosing = await TrialAuthenticator.create(auth.users, { kdf: best });
for (let round = 1; round <= ROUNDS; round++) {
  say(`legacy diagnosis round ${round}/${ROUNDS}: a miss without it, then with it`);
  diagnosis.off.push(await ourColdRate(auth));
  diagnosis.on.push(await ourColdRate(diagnosing));
}
await diagnosing.close();
const diagnosisCost = median(diagnosis.off.map((off, i) => off / diagnosis.on[i]));

// A cache hit costs one derivation and one open: check the count rather than assume it.
const hitBlob = await frame(users[USERS - 1].psk);
await auth.authenticate(hitBlob, '192.0.2.7');
const hit = await auth.authenticate(hitBlob, '192.0.2.7');
await auth.close();

const rows = await benchTrialAuth({ users: USERS, kdfs, seconds: SECONDS, progress: say });

const dir = mkdtempSync(join(tmpdir(), 'authkit-bench-'));
const loads = [];
const whole = { startup: [], process: [], reference: [], nodeAlone: [] };
const CAPTURES = 200;
try {
  // snell-auth as a user runs it: its own process, defaults (legacy diagnosis on), the users
  // file and CAPTURES captures that match no one.
  writeFileSync(join(dir, `users-${USERS}.txt`), users.map((u) => `${u.name}:${u.psk}`).join('\n'));
  writeFileSync(join(dir, 'captures.jsonl'), Array.from({ length: CAPTURES }, () => JSON.stringify({ blob: randomBytes(64).toString('hex') })).join('\n'));
  const snellAuth = (args) => {
    const started = performance.now();
    const result = spawnSync(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'snell-auth', '--users', join(dir, `users-${USERS}.txt`), '--json', ...args], { encoding: 'utf8' });
    const seconds = (performance.now() - started) / 1000;
    if (result.status !== 1) throw new Error(`snell-auth exited ${result.status}: ${result.stderr}`);
    return { seconds, outcomes: result.stdout.trim().split('\n').map((line) => JSON.parse(line)) };
  };
  // Start-up to the first trial: from the spawn to the first capture's line, less the time that
  // capture reports (its scan); the line is printed as soon as the scan is over.
  const startupToFirstTrial = () => new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'authkit.js'), 'snell-auth', '--users', join(dir, `users-${USERS}.txt`), '--json', '--blob', randomBytes(64).toString('hex')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    let printedAt;
    child.stdout.on('data', (chunk) => {
      printedAt ??= performance.now();
      text += chunk;
    });
    child.on('error', reject);
    child.on('close', () => resolve(printedAt - started - JSON.parse(text.split('\n')[0]).micros / 1000));
  });
  for (let round = 1; round <= ROUNDS; round++) {
    say(`snell-auth whole process round ${round}/${ROUNDS}: start-up, ${CAPTURES} captures x ${USERS} users, reference`);
    const nodeStarted = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    whole.nodeAlone.push(performance.now() - nodeStarted);
    whole.startup.push(await startupToFirstTrial());
    say(`start-up sample ${whole.startup.at(-1).toFixed(0)} ms`);
    const many = snellAuth(['--captures', join(dir, 'captures.jsonl')]);
    if (many.outcomes.some((o) => o.trials !== USERS)) throw new Error('a capture was not scanned over every user');
    whole.process.push((CAPTURES * USERS) / many.seconds);
    if (reference) whole.reference.push(referenceRate('processes'));
  }

  say('users files: 1,000,000 users in each format');
  const million = Array.from({ length: 1_000_000 }, (_, i) => ({ name: `user-${i}`, psk: randomBytes(16).toString('base64') }));
  writeFileSync(join(dir, 'users.txt'), million.map((u) => `${u.name}:${u.psk}`).join('\n'));
  writeFileSync(join(dir, 'users.csv'), `name,psk\n${million.map((u) => `${u.name},${u.psk}`).join('\n')}\n`);
  writeFileSync(join(dir, 'users.jsonl'), `${million.map((u) => JSON.stringify(u)).join('\n')}\n`);
  writeFileSync(join(dir, 'users.json'), `[\n${million.map((u) => JSON.stringify(u)).join(',\n')}\n]\n`);
  for (const file of ['users.txt', 'users.csv', 'users.jsonl', 'users.json']) {
    const runs = Array.from({ length: 3 }, () => JSON.parse(execFileSync(process.execPath, [new URL('./load-users.js', import.meta.url).pathname, join(dir, file)], { encoding: 'utf8' })));
    loads.push({ ...runs[0], seconds: median(runs.map((r) => r.seconds)), maxRssMiB: Math.max(...runs.map((r) => r.maxRssMiB)) });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const lines = [];
lines.push(`Machine: ${cpus().length} cores (${cpus()[0]?.model}), ${Math.round(totalmem() / 2 ** 30)} GiB, ${release()}, Node ${process.version}.`);
lines.push('');
lines.push(`**Cold trial path** (no user matches, all ${USERS} users tried, both cores), median of ${ROUNDS} alternating rounds of ${SECONDS} s:`);
lines.push('');
lines.push('| | user-trials/s | authkit / this |');
lines.push('|---|---:|---:|');
lines.push(`| authkit, ${best.name} | ${fmt(ours)} | |`);
if (reference) {
  const p = median(reference.processes);
  lines.push(`| reference: libargon2 + OpenSSL, 2 processes | ${fmt(p)} | ${(ours / p).toFixed(2)} |`);
}
lines.push('');
lines.push(`**snell-auth, whole process, defaults** (legacy diagnosis on), ${CAPTURES} captures that match no one x ${USERS} users, median of ${ROUNDS} rounds:`);
lines.push('');
lines.push('| what | figure | against | ratio | target |');
lines.push('|---|---:|---:|---:|---:|');
lines.push(`| a miss with the legacy diagnosis, cost against the v4 scan alone | ${fmt(median(diagnosis.on))} user-trials/s | ${fmt(median(diagnosis.off))} | ${diagnosisCost.toFixed(3)}x | <= 1.05x |`);
lines.push(`| start-up to the first trial (from the spawn to the first capture's line, less its scan; \`node -e 0\` alone, start to exit: ${fmt(median(whole.nodeAlone))} ms) | ${fmt(median(whole.startup))} ms | | | <= 250 ms |`);
if (reference) {
  const ratios = whole.process.map((p, i) => p / whole.reference[i]);
  lines.push(`| whole process, ${CAPTURES} x ${USERS} user-trials | ${fmt(median(whole.process))} user-trials/s | ${fmt(median(whole.reference))} (libargon2 + OpenSSL, 2 processes) | ${median(ratios).toFixed(2)} | >= 1.1 |`);
}
lines.push('');
lines.push(`**Every path, every KDF backend** (\`snell-auth bench\`, ${USERS} users, ${SECONDS} s each):`);
lines.push('');
lines.push('| KDF backend | derivations/s (1 thread) | cold path user-trials/s | cold ms/connection | serial match conn/s (16 users) | parallel match conn/s | cache hit conn/s |');
lines.push('|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  lines.push(`| ${r.kdf} | ${fmt(r.derivationsPerSec)} | ${fmt(r.cold.userTrialsPerSec)} | ${r.cold.msPerConnection.toFixed(2)} | ${fmt(r.serial.connectionsPerSec)} | ${r.parallel ? fmt(r.parallel.connectionsPerSec) : 'n/a'} | ${fmt(r.cacheHit.connectionsPerSec)} |`);
}
lines.push('');
const slowest = rows[rows.length - 1];
lines.push(`- KDF: ${rows[0].kdf} derives ${(rows[0].derivationsPerSec / slowest.derivationsPerSec).toFixed(1)}x as fast as ${slowest.kdf} on one thread.`);
lines.push(`- Cache hit: ${hit.trials} derivation and one open (path \`${hit.path}\`): ${(1e6 / rows[0].cacheHit.connectionsPerSec).toFixed(0)} µs per connection, against ${(1e6 / rows[0].derivationsPerSec).toFixed(0)} µs for a derivation alone.`);
lines.push('');
lines.push('**Users files**, 1,000,000 users (`loadUserStore`, as snell-auth and snell-serve load them; its own process, median of 3; targets <= 1 s and <= 300 MiB):');
lines.push('');
lines.push('| format | load time | peak RSS |');
lines.push('|---|---:|---:|');
for (const l of loads) lines.push(`| ${l.format} | ${l.seconds.toFixed(2)} s | ${Math.round(l.maxRssMiB)} MiB |`);
process.stdout.write(`${lines.join('\n')}\n`);
