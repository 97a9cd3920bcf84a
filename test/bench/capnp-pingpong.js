// The floor for any Node client of the C++ server: a bare ping-pong on one Unix socket that
// keeps IN_FLIGHT pre-encoded check() Calls outstanding (question IDs 1..IN_FLIGHT, each encoded
// once), and for every Return read sends that question's Finish with its next Call, all of one
// read's in one write: no decoding beyond the Return's answer ID, no promise, no timer. What is
// left is Node's event loop and the socket. Prints calls per second and CPU seconds, as
// capnp-client-rate.js does.
// Usage: node test/bench/capnp-pingpong.js SOCKET SECONDS [IN_FLIGHT, default 1]
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeBootstrap, encodeCheckCall, encodeFinish } from '../../dist/capnp/wire/rpc.js';

const [socketPath, secondsText, inFlightText = '1'] = process.argv.slice(2);
const seconds = Number(secondsText);
const inFlight = Number(inFlightText);
const request = {
  method: 'GET', host: 'example.com', path: '/', query: '', clientIp: '203.0.113.5:40000',
  headers: [{ name: 'authorization', value: 'Bearer good' }, { name: 'user-agent', value: 'curl/8.5.0' }, { name: 'accept', value: '*/*' }, { name: 'x-request-id', value: 'req-1' }],
};
// Question 0 is the bootstrap; calls are questions 1..inFlight on the imported capability 0 (the
// C++ server's first export); a question's next call goes with the Finish of its last.
const firstCalls = [];
const nextCalls = [];
for (let id = 1; id <= inFlight; id++) {
  const call = Buffer.from(encodeCheckCall(id, { importedCap: 0 }, request));
  firstCalls[id] = call;
  nextCalls[id] = Buffer.concat([encodeFinish(id, true), call]);
}

/**
 * Calls `onReturn(answerId)` for each whole Return frame in `bytes` and gives back how many bytes
 * it used. The C++ server sends one segment a frame; the root is the RPC Message, whose union
 * tag is its first data field (3: return) and whose first pointer is the Return, whose first
 * data field is the answer ID.
 */
function readReturns(bytes, onReturn) {
  let at = 0;
  while (bytes.length - at >= 8) {
    if (bytes.readUInt32LE(at) !== 0) throw new Error('a frame of more than one segment');
    const frameBytes = 8 + 8 * bytes.readUInt32LE(at + 4);
    if (bytes.length - at < frameBytes) break;
    const segment = at + 8;
    const message = segment + 8 + 8 * (bytes.readInt32LE(segment) >> 2);
    if (bytes.readUInt16LE(message) === 3) {
      const pointer = message + 8 * bytes.readUInt16LE(segment + 4);
      onReturn(bytes.readUInt32LE(pointer + 8 + 8 * (bytes.readInt32LE(pointer) >> 2)));
    }
    at += frameBytes;
  }
  return at;
}

let calls = 0;
let started = 0;
let cpu;
let bootstrapped = false;
let partial = Buffer.alloc(0);
const buffer = Buffer.allocUnsafe(64 * 1024);
const socket = net.createConnection({ path: socketPath, onread: { buffer, callback: (n) => {
  const bytes = partial.length === 0 ? buffer.subarray(0, n) : Buffer.concat([partial, buffer.subarray(0, n)]);
  if (!bootstrapped) {
    // The bootstrap's Return (one frame, alone on the connection so far).
    bootstrapped = true;
    socket.write(Buffer.concat([encodeFinish(0, false), ...firstCalls.slice(1)]));
    cpu = process.cpuUsage();
    started = performance.now();
    return true;
  }
  const next = [];
  const used = readReturns(bytes, (id) => {
    calls++;
    next.push(nextCalls[id]);
  });
  partial = Buffer.from(bytes.subarray(used));
  const elapsed = performance.now() - started;
  if (elapsed < seconds * 1000) {
    if (next.length > 0) socket.write(next.length === 1 ? next[0] : Buffer.concat(next));
    return true;
  }
  const { user, system } = process.cpuUsage(cpu);
  console.log(JSON.stringify({ callsPerSec: (calls * 1000) / elapsed, cpuSeconds: (user + system) / 1e6 }));
  socket.destroy();
  return false;
} } });
socket.on('connect', () => socket.write(encodeBootstrap(0)));
