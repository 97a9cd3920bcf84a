import { describe, expect, it } from 'vitest';
import { Chalk } from 'chalk';
import { listChecks, runSuite, type SuiteReport } from '../../src/conformance/runner.js';
import { renderText } from '../../src/report/text.js';
import { renderJson } from '../../src/report/json.js';
import { renderCheckList } from '../../src/report/list.js';
import { VALUE_LIMIT } from '../../src/report/_format.js';
import { TOY_TIMEOUT_MS, toyBackend, toySuite } from '../conformance/toy-suite.js';

/** The toy suite's report with every duration 3 ms, so the text can be compared whole. */
async function toyReport(): Promise<SuiteReport> {
  const report = await runSuite(toySuite, toyBackend(), { timeoutMs: TOY_TIMEOUT_MS });
  for (const result of report.results) result.durationMs = 3;
  return report;
}

/** A report of one failed MUST check with the given evidence, for formatting edge cases. */
function reportWith(received: unknown, message = 'wrong'): SuiteReport {
  return {
    suite: 'edge',
    startedAt: '2025-01-02T03:04:05.678Z',
    durationMs: 1234,
    results: [{ id: 'E1', level: 'MUST', title: 'edge', status: 'fail', message, evidence: [{ received }], durationMs: 1 }],
    summary: { total: 1, pass: 0, fail: 1, warn: 0, skip: 0, info: 0, error: 0, mustFailed: 1, mustSkipped: 0 },
    verdict: 'failed',
    passed: false,
    skippedMust: [],
    allowSkips: false,
  };
}

const ESC = '\x1b';

describe('renderText', () => {
  it('prints one line per check, failures with their evidence, a summary and the verdict', async () => {
    expect(renderText(await toyReport(), { color: false })).toBe(
      [
        '  PASS   T01  MUST    The server MUST answer a well-formed request (3 ms)',
        '  FAIL   T02  MUST    An unknown user MUST be rejected with 403 (3 ms)',
        '         the unknown user was accepted',
        '         sent:',
        '           {',
        '             "user": "nobody",',
        '             "password": ""',
        '           }',
        '         received:',
        '           {',
        '             "status": 200,',
        '             "body": "<ok & \\"welcome\\">"',
        '           }',
        '         expected: HTTP 403',
        '  WARN   T03  SHOULD  The server SHOULD close idle connections within 60 s (3 ms)',
        '         still open after 90 s',
        '         expected: closed within 60 s',
        '  SKIP   T04  MUST    An allowed user MUST be accepted (3 ms)',
        '         needs fixture.allowed',
        '  ERROR  T05  MUST    A malformed request MUST NOT crash the server (3 ms)',
        '         TypeError: fetch failed (cause: Error: connect ECONNREFUSED 127.0.0.1:1)',
        '         sent: dead (2 bytes, hex)',
        '  ERROR  T06  SHOULD  The server SHOULD answer a ping (3 ms)',
        `         timed out after ${TOY_TIMEOUT_MS} ms`,
        '         sent: PING',
        '  INFO   T07  INFO    The server announces its version (3 ms)',
        '         toy/1.0',
        '',
        '7 checks: 1 passed, 1 failed, 1 warning, 1 skipped, 1 info, 2 errors (1 MUST)',
        'FAILED  toy: 2 MUST checks failed or errored: T02, T05',
      ].join('\n'),
    );
  });

  it('says PASSED when no MUST check failed', async () => {
    const report = await runSuite(toySuite, toyBackend(), { only: ['T01', 'T03'] });
    expect(renderText(report).split('\n').slice(-2)).toEqual(['2 checks: 1 passed, 1 warning', 'PASSED  toy: no MUST check failed']);
  });

  it('colours only when asked, by a boolean or a chalk instance', async () => {
    const report = await toyReport();
    expect(renderText(report, { color: false })).not.toContain(ESC);
    expect(renderText(report)).not.toContain(ESC);
    expect(renderText(report, { color: true })).toContain(`${ESC}[`);
    expect(renderText(report, { color: new Chalk({ level: 1 }) })).toContain(`${ESC}[`);
    expect(renderText(report, { color: new Chalk({ level: 0 }) })).not.toContain(ESC);
  });

  it('shows terminal escapes from a backend as text instead of sending them to the terminal', () => {
    const text = renderText(reportWith('\x1b]0;pwned\x07\x1b[2J\r\x9b', 'bell\x07'), { color: false });
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(text).toContain('received: \\u001b]0;pwned\\u0007\\u001b[2J\\u000d\\u009b');
    expect(text).toContain('bell\\u0007');
  });

  it('cuts a long value at about 2 KB and says how much is missing', () => {
    const text = renderText(reportWith('x'.repeat(10_000)), { color: false });
    expect(text).toContain(`x`.repeat(VALUE_LIMIT));
    expect(text).not.toContain(`x`.repeat(VALUE_LIMIT + 1));
    expect(text).toContain(`… truncated: ${10_000 - VALUE_LIMIT} more characters`);
  });

  it('never cuts an emoji in half', () => {
    const text = renderText(reportWith('a' + '🔑'.repeat(VALUE_LIMIT)), { color: false });
    expect(text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

describe('renderJson', () => {
  it('has the documented fields, in order', async () => {
    const json = JSON.parse(renderJson(await toyReport()));
    expect(Object.keys(json)).toEqual(['version', 'suite', 'passed', 'verdict', 'startedAt', 'durationMs', 'summary', 'skippedMust', 'results']);
    expect(json).toMatchObject({ version: 1, suite: 'toy', passed: false });
    expect(json.summary).toEqual({ total: 7, pass: 1, fail: 1, warn: 1, skip: 1, info: 1, error: 2, mustFailed: 2, mustSkipped: 1 });
    expect(Object.keys(json.results[1])).toEqual(['id', 'level', 'title', 'status', 'message', 'durationMs', 'evidence']);
    expect(json.results[1].evidence).toEqual([
      { sent: { user: 'nobody', password: '' }, received: { status: 200, body: '<ok & "welcome">' }, expected: 'HTTP 403' },
    ]);
    expect(json.results[0]).not.toHaveProperty('message');
  });

  it('writes bytes as hex, bigints as strings, Maps as objects and cuts cycles, without truncating', () => {
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    const value = { bytes: Buffer.from([1, 2]), big: 2n ** 70n, map: new Map([['a', 1]]), cycle, long: 'y'.repeat(5000) };
    const evidence = JSON.parse(renderJson(reportWith(value))).results[0].evidence[0];
    expect(evidence.received).toEqual({
      bytes: { hex: '0102' },
      big: '1180591620717411303424',
      map: { a: 1 },
      cycle: { name: 'loop', self: '[circular]' },
      long: 'y'.repeat(5000),
    });
  });
});

describe('renderCheckList', () => {
  it('lists IDs, levels, titles and needs, then counts by level', () => {
    expect(renderCheckList(listChecks(toySuite))).toBe(
      [
        'T01  MUST    The server MUST answer a well-formed request',
        'T02  MUST    An unknown user MUST be rejected with 403',
        'T03  SHOULD  The server SHOULD close idle connections within 60 s',
        'T04  MUST    An allowed user MUST be accepted',
        '             needs fixture.allowed',
        'T05  MUST    A malformed request MUST NOT crash the server',
        'T06  SHOULD  The server SHOULD answer a ping',
        'T07  INFO    The server announces its version',
        '',
        '7 checks (4 MUST, 2 SHOULD, 1 INFO)',
      ].join('\n'),
    );
  });
});
