import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/shared/errors.js';
import type { Check, CheckInfo, Suite } from '../../src/conformance/check.js';
import { listChecks, parseOnly, runSuite, type CheckResult } from '../../src/conformance/runner.js';
import { thrownBy } from '../helpers.js';
import { TOY_TIMEOUT_MS, toyBackend, toySuite } from './toy-suite.js';

const run = (options: Parameters<typeof runSuite>[2] = {}, backend = toyBackend()) =>
  runSuite(toySuite, backend, { timeoutMs: TOY_TIMEOUT_MS, ...options });
const byId = (results: CheckResult[], id: string): CheckResult => results.find((r) => r.id === id)!;
const suiteOf = (...checks: Check<null>[]): Suite<null> => ({ name: 'one', checks });
const check = (level: Check<null>['level'], run: Check<null>['run']): Check<null> => ({ id: 'C1', level, title: 'c', run });

describe('runSuite', () => {
  it('runs every check once, in suite order, and records one status each', async () => {
    const backend = toyBackend();
    const report = await run({}, backend);
    expect(backend.ran).toEqual(['T01', 'T02', 'T03', 'T05', 'T06', 'T07']);
    expect(report.results.map((r) => [r.id, r.level, r.status])).toEqual([
      ['T01', 'MUST', 'pass'],
      ['T02', 'MUST', 'fail'],
      ['T03', 'SHOULD', 'warn'],
      ['T04', 'MUST', 'skip'],
      ['T05', 'MUST', 'error'],
      ['T06', 'SHOULD', 'error'],
      ['T07', 'INFO', 'info'],
    ]);
    expect(report.summary).toEqual({ total: 7, pass: 1, fail: 1, warn: 1, skip: 1, info: 1, error: 2, mustFailed: 2, mustSkipped: 1 });
    expect(report.passed).toBe(false);
    expect(report.suite).toBe('toy');
    expect(new Date(report.startedAt).toISOString()).toBe(report.startedAt);
  });

  it('counts a plain return as a pass and keeps the evidence recorded on the way', async () => {
    const t01 = byId((await run()).results, 'T01');
    expect(t01).toMatchObject({ status: 'pass', evidence: [{ sent: 'HELLO', received: 'OK' }] });
    expect(t01.message).toBeUndefined();
  });

  it('fails a MUST check with what was sent, received and expected', async () => {
    expect(byId((await run()).results, 'T02')).toMatchObject({
      status: 'fail',
      message: 'the unknown user was accepted',
      evidence: [{ sent: { user: 'nobody' }, received: { status: 200 }, expected: 'HTTP 403' }],
    });
  });

  it('records a failed SHOULD or INFO check as a warning, which does not gate', async () => {
    for (const level of ['SHOULD', 'INFO'] as const) {
      const report = await runSuite(suiteOf(check(level, (_, t) => t.fail('no'))), null);
      expect(report.results[0]).toMatchObject({ status: 'warn', message: 'no' });
      expect(report.passed).toBe(true);
    }
  });

  it('lets a MUST check warn without failing the run', async () => {
    const report = await runSuite(suiteOf(check('MUST', (_, t) => t.warn('slow', { received: 'late' }))), null);
    expect(report.results[0]).toMatchObject({ status: 'warn', evidence: [{ received: 'late' }] });
    expect(report.passed).toBe(true);
  });

  it('a MUST check that did not run leaves the run incomplete, not passed; --allow-skips accepts it', async () => {
    const needs: Check<null> = { id: 'C2', level: 'MUST', title: 'needs input', requires: ['fixture.allowed'], run: (_, t) => t.pass() };
    const report = await runSuite(suiteOf(check('MUST', (_, t) => t.pass()), needs), null);
    expect(report).toMatchObject({ verdict: 'incomplete', passed: false, summary: { mustSkipped: 1, mustFailed: 0 } });
    expect(report.skippedMust.map((r) => [r.id, r.needs])).toEqual([['C2', ['fixture.allowed']]]);
    expect(await runSuite(suiteOf(needs), null, { allowSkips: true })).toMatchObject({ verdict: 'passed', passed: true });
    // A check that skips itself did not run either.
    expect(await runSuite(suiteOf(check('MUST', (_, t) => t.skip('gave up'))), null)).toMatchObject({ verdict: 'incomplete' });
  });

  it('a check that does not apply here (an inapplicable capability is missing) leaves the run complete', async () => {
    const other: Check<null> = { id: 'C3', level: 'MUST', title: 'other dialect', requires: ['fixture.allowed', 'dialect.src'], run: (_, t) => t.pass() };
    const report = await runSuite(suiteOf(other), null, { inapplicable: (c) => c.startsWith('dialect.') });
    expect(report).toMatchObject({ verdict: 'passed', passed: true, summary: { skip: 1, mustSkipped: 0 } });
  });

  it('skips a check whose capability is missing, saying which, and runs it when present', async () => {
    expect(byId((await run()).results, 'T04')).toMatchObject({ status: 'skip', message: 'needs fixture.allowed' });
    const backend = toyBackend();
    const report = await run({ has: (capability) => capability === 'fixture.allowed' }, backend);
    expect(byId(report.results, 'T04').status).toBe('pass');
    expect(backend.ran).toContain('T04');
  });

  it('turns a thrown error into an `error` with its cause, keeps the evidence and carries on', async () => {
    const backend = toyBackend();
    const t05 = byId((await run({}, backend)).results, 'T05');
    expect(t05.status).toBe('error');
    expect(t05.message).toBe('TypeError: fetch failed (cause: Error: connect ECONNREFUSED 127.0.0.1:1)');
    expect(t05.evidence).toEqual([{ sent: new Uint8Array([0xde, 0xad]) }]);
    expect(backend.ran.at(-1)).toBe('T07');
  });

  it('catches a throw before the first await, an InputError and a thrown non-Error alike', async () => {
    const sync: Check<null> = { id: 'S', level: 'MUST', title: 's', run: () => { throw new RangeError('bad'); } };
    const input: Check<null> = { id: 'I', level: 'MUST', title: 'i', run: async () => { throw new InputError('--user is empty'); } };
    const odd: Check<null> = { id: 'O', level: 'SHOULD', title: 'o', run: async () => { throw 'a string'; } };
    const report = await runSuite(suiteOf(sync, input, odd), null);
    expect(report.results.map((r) => [r.status, r.message])).toEqual([
      ['error', 'RangeError: bad'],
      ['error', '--user is empty'],
      ['error', "threw 'a string'"],
    ]);
  });

  it('gives up on a hung check after the timeout, aborts its signal and runs the next', async () => {
    const backend = toyBackend();
    const report = await run({}, backend);
    expect(byId(report.results, 'T06')).toMatchObject({
      status: 'error',
      message: `timed out after ${TOY_TIMEOUT_MS} ms`,
      evidence: [{ sent: 'PING' }],
    });
    expect(byId(report.results, 'T06').durationMs).toBeGreaterThanOrEqual(TOY_TIMEOUT_MS - 5);
    expect(backend.aborted).toEqual(['T06']);
    expect(byId(report.results, 'T07').status).toBe('info');
  });

  it('does not gate on an error in a SHOULD check', async () => {
    const report = await run({ only: ['T01', 'T06'] });
    expect(report.summary.error).toBe(1);
    expect(report.passed).toBe(true);
  });

  it('reports live progress: each start, then its result', async () => {
    const events: string[] = [];
    await run({
      only: ['T01', 'T02'],
      onStart: (c: CheckInfo) => events.push(`start ${c.id}`),
      onResult: (r) => events.push(`${r.status} ${r.id}`),
    });
    expect(events).toEqual(['start T01', 'pass T01', 'start T02', 'fail T02']);
  });

  it('runs only the chosen checks, in suite order whatever order they were given in', async () => {
    const backend = toyBackend();
    const report = await run({ only: ['T07', 'T01'] }, backend);
    expect(report.results.map((r) => r.id)).toEqual(['T01', 'T07']);
    expect(backend.ran).toEqual(['T01', 'T07']);
    expect(report.passed).toBe(true);
  });

  it('takes Infinity as no timeout at all', async () => {
    const report = await runSuite(suiteOf(check('MUST', async () => { await new Promise((resolve) => setTimeout(resolve, 20)); })), null, { timeoutMs: Infinity });
    expect(report.results[0]!.status).toBe('pass');
  });

  it('rejects a bad timeout as an input error', async () => {
    for (const timeoutMs of [0, -1, Number.NaN]) await expect(runSuite(toySuite, toyBackend(), { timeoutMs })).rejects.toThrow(InputError);
  });

  it('rejects a suite with two checks of one ID as a bug, not an input error', async () => {
    const twice = suiteOf(check('MUST', () => {}), check('MUST', () => {}));
    await expect(runSuite(twice, null)).rejects.toThrow('suite one has two checks with ID C1');
    expect(() => listChecks(twice)).toThrow(/two checks/);
  });
});

describe('parseOnly', () => {
  it('takes IDs separated by commas or spaces, in any case, once each', () => {
    expect(parseOnly('T01,T07', toySuite)).toEqual(['T01', 'T07']);
    expect(parseOnly(' t02, T05  t02 ', toySuite)).toEqual(['T02', 'T05']);
  });

  it('names the unknown IDs in an InputError', () => {
    expect(thrownBy(InputError, () => parseOnly('T01,X99', toySuite)).message).toBe('--only: toy has no check X99 (--list shows its checks)');
    expect(thrownBy(InputError, () => parseOnly('X98 X99', toySuite)).message).toMatch(/no checks X98, X99/);
    expect(thrownBy(InputError, () => parseOnly(' , ', toySuite)).message).toMatch(/at least one check ID/);
  });

  it('is applied to RunOptions.only as well', async () => {
    await expect(run({ only: ['T01', 'nope'] })).rejects.toThrow(/toy has no check nope/);
    await expect(run({ only: [] })).rejects.toThrow(InputError);
  });
});

describe('listChecks', () => {
  it('lists every check with what it needs, running none', () => {
    const list = listChecks(toySuite);
    expect(list.map((c) => c.id)).toEqual(['T01', 'T02', 'T03', 'T04', 'T05', 'T06', 'T07']);
    expect(list[3]).toEqual({ id: 'T04', level: 'MUST', title: 'An allowed user MUST be accepted', requires: ['fixture.allowed'] });
    expect(list[0]).not.toHaveProperty('run');
  });
});
