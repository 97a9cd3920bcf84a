/**
 * What a recording keeps: masked by default (the credential in the body and in free text, bearer
 * tokens, secret headers, query values), in clear with --record-secrets; and what a replay then
 * refuses.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { xrayRecord } from '../../src/xray/tap/record.js';
import { capnpRecord } from '../../src/capnp/tap/record.js';
import { checkCapnpReplayable } from '../../src/capnp/replay.js';
import { readRecording, RecordingWriter } from '../../src/tap/recording.js';
import { droppedRecordsLine } from '../../src/cli/options.js';
import { runMain } from '../cli/run.js';
import type { TappedExchange } from '../../src/xray/tap/tap.js';
import type { TappedCheck } from '../../src/capnp/tap/tap.js';
import type { CapnpRecord } from '../../src/capnp/tap/record.js';

const UUID = '550e8400-e29b-41d4-a716-446655440000';

const exchange: TappedExchange = {
  connection: 1, at: new Date(0), offsetMs: 12.5,
  request: { method: 'POST', target: '/auth?token=s3cr3t-t0ken&x', headers: [['Host', 'h'], ['Authorization', 'Bearer the-proxy-secret']], body: Buffer.from(`{"type":"authorization","credential":"${UUID}"}`), truncated: false },
  event: { type: 'authorization', facts: { credential: UUID } },
  reply: { head: { proto: 'HTTP/1.1', status: 403, headers: [] }, rawHeaders: [['Content-Type', 'text/plain']], body: Buffer.from(`unknown user ${UUID}`), truncated: false },
  latencyMs: 1.5,
  verdict: { verdict: 'deny', class: 'policy-deny', reason: '403: an explicit deny', effect: '', warnings: [] },
  violations: [],
};

describe('recordings', () => {
  it('an Xray exchange: masked by default everywhere it shows, whole with --record-secrets', () => {
    const masked = JSON.stringify(xrayRecord(exchange, 'wiki', false));
    for (const secret of [UUID, 'the-proxy-secret', 's3cr3t-t0ken']) expect(masked).not.toContain(secret);
    expect(masked).toContain('550e8400-****');
    expect(masked).toContain('/auth?token=redacted&x');
    const kept = xrayRecord(exchange, 'wiki', true);
    expect(kept).toMatchObject({ secrets: true, credential: UUID, request: { target: '/auth?token=s3cr3t-t0ken&x' }, class: 'policy-deny' });
    expect(kept.request.headers).toContainEqual(['Authorization', 'Bearer the-proxy-secret']);
  });

  it('a Proksi check: credential headers and query values masked, and such a recording is not replayed', () => {
    const check: TappedCheck = {
      connection: 1, questionId: 3, at: new Date(0), offsetMs: 0, latencyMs: 1,
      request: { method: 'GET', host: 'example.com', path: '/', query: 'session=abc123', clientIp: '203.0.113.7:1', headers: [{ name: 'cookie', value: 'sid=abc123' }, { name: 'accept', value: '*/*' }] },
      decision: { action: 'block', statusCode: 401, upstreamValue: '', redirectLocation: '', responseBody: '' },
      proksi: { outcome: 'blocked', status: 401, headers: [], body: '' }, warnings: [],
    };
    const masked = capnpRecord(check, false);
    expect(JSON.stringify(masked)).not.toContain('abc123');
    expect(masked).toMatchObject({ verdict: 'block 401', request: { query: 'session=redacted' } });
    const dir = mkdtempSync(join(tmpdir(), 'authkit-records-'));
    writeFileSync(join(dir, 'masked.jsonl'), `${JSON.stringify(masked)}\n`);
    expect(() => checkCapnpReplayable(readRecording<CapnpRecord>(join(dir, 'masked.jsonl'), 'capnp'), 'masked.jsonl')).toThrow(/masked.jsonl:1: recorded without --record-secrets: its cookie header is masked/);
    // Nothing secret in the request: replayable as it is.
    const plain = capnpRecord({ ...check, request: { ...check.request, query: '', headers: [{ name: 'accept', value: '*/*' }] } }, false);
    writeFileSync(join(dir, 'plain.jsonl'), `${JSON.stringify(plain)}\n`);
    expect(() => checkCapnpReplayable(readRecording<CapnpRecord>(join(dir, 'plain.jsonl'), 'capnp'), 'plain.jsonl')).not.toThrow();
    expect(capnpRecord(check, true).request).toMatchObject({ query: 'session=abc123', headers: [{ name: 'cookie', value: 'sid=abc123' }, { name: 'accept', value: '*/*' }] });
  });

  it('the recording\'s bounds: a batch goes out at --record-batch bytes; past --record-backlog bytes waiting for the disk, records are dropped and counted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authkit-records-'));
    const file = join(dir, 'bounded.jsonl');
    // A one-byte batch writes each record at once; the first write is still pending in this turn,
    // so with a one-byte backlog every later record is dropped.
    const writer = new RecordingWriter(file, '--record', (error) => { throw error; }, { batchBytes: 1, backlogBytes: 1 });
    for (let i = 0; i < 10; i++) writer.write({ protocol: 'xray', offsetMs: i, secrets: false });
    expect({ written: writer.written, dropped: writer.dropped }).toEqual({ written: 1, dropped: 9 });
    await writer.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(droppedRecordsLine('xray-tap', writer)).toBe('xray-tap: 9 records dropped: the disk fell 1 byte behind (--record-backlog)');

    // The defaults: 64k batches, a 64M backlog; ten small records wait for the 10 ms timer.
    const defaults = new RecordingWriter(join(dir, 'defaults.jsonl'), '--record', (error) => { throw error; });
    for (let i = 0; i < 10; i++) defaults.write({ protocol: 'xray', offsetMs: i, secrets: false });
    expect({ batch: defaults.maxBatchBytes, backlog: defaults.backlogBytes, dropped: defaults.dropped }).toEqual({ batch: 64 << 10, backlog: 64 << 20, dropped: 0 });
    await defaults.close();
    expect(readFileSync(join(dir, 'defaults.jsonl'), 'utf8').trim().split('\n')).toHaveLength(10);
    expect(droppedRecordsLine('snell-serve', defaults)).toMatch(/the disk fell 64M behind/);
  });

  it('--record-batch and --record-backlog: sizes, and only with --record (one line, exit 2)', async () => {
    const cases: [string[], RegExp][] = [
      [['xray-tap', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--record-backlog', '1M'], /--record-backlog needs --record FILE/],
      [['capnp-tap', '--listen', '/tmp/x.sock', '--upstream', '/tmp/y.sock', '--record-batch', '4k'], /--record-batch needs --record FILE/],
      [['snell-serve', '--listen', '127.0.0.1:0', '--psk-env', 'AUTHKIT_TEST_PSK', '--record-batch', '4k'], /--record-batch needs --record FILE/],
      [['xray-tap', '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:9', '--record', '/dev/null', '--record-backlog', 'lots'], /--record-backlog: expected a size like/],
    ];
    for (const [args, message] of cases) {
      const result = await runMain(args, { AUTHKIT_TEST_PSK: 'a-test-psk' });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
  });
});
