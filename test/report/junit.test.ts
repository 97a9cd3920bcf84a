/**
 * The JUnit report, read back by an independent XML parser: libxml2's xmllint (Debian package
 * libxml2-utils). Without it those tests skip, except in CI, where they fail.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { runSuite, type CheckResult, type SuiteReport } from '../../src/conformance/runner.js';
import { renderJunit } from '../../src/report/junit.js';
import { TOY_TIMEOUT_MS, toyBackend, toySuite } from '../conformance/toy-suite.js';

const haveXmllint = spawnSync('xmllint', ['--version']).error === undefined;
const withXmllint = it.skipIf(!haveXmllint && !process.env.CI);

function xmllint(xml: string, ...args: string[]): { ok: boolean; output: string } {
  if (!haveXmllint) throw new Error('CI must install libxml2-utils for xmllint');
  const result = spawnSync('xmllint', [...args, '-'], { input: xml, encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

/** An XPath string value as libxml2 decodes it (xmllint adds a newline). */
function xpath(xml: string, expression: string): string {
  const { ok, output } = xmllint(xml, '--xpath', expression);
  expect(ok, output).toBe(true);
  return output.replace(/\n$/, '');
}

const toyXml = async (): Promise<string> => renderJunit(await runSuite(toySuite, toyBackend(), { timeoutMs: TOY_TIMEOUT_MS }));

/** Every character class that needs care: markup, quotes, whitespace, controls, non-XML. */
const NASTY = `a <b> & "c" 'd'\ttab\nline\r\x01\x1b[31m\x7f]]> \uFFFE\uD800 é 🔑`;

function nastyReport(): SuiteReport {
  const result = (status: CheckResult['status'], id: string): CheckResult => ({
    id,
    level: 'MUST',
    title: NASTY,
    status,
    message: NASTY,
    evidence: [{ sent: NASTY, received: { [NASTY]: NASTY }, expected: NASTY }],
    durationMs: 1,
  });
  return {
    suite: `suite ${NASTY}`,
    startedAt: '2025-01-02T03:04:05.678Z',
    durationMs: 12,
    results: [result('fail', 'N1'), result('error', 'N2'), result('skip', 'N3'), result('warn', 'N4')],
    summary: { total: 4, pass: 0, fail: 1, warn: 1, skip: 1, info: 0, error: 1, mustFailed: 2, mustSkipped: 1 },
    verdict: 'failed',
    passed: false,
    skippedMust: [],
    allowSkips: false,
  };
}

describe('renderJunit', () => {
  it('counts what gates as failures and errors, and a SHOULD error as skipped', async () => {
    const xml = await toyXml();
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites /);
    expect(xml).toMatch(/<testsuite name="toy" tests="7" failures="1" errors="1" skipped="2" time="\d+\.\d{3}" timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d">/);
  });

  withXmllint('is well-formed XML with one testcase per check, named by ID and title', async () => {
    const xml = await toyXml();
    expect(xmllint(xml, '--noout')).toEqual({ ok: true, output: '' });
    expect(xpath(xml, 'count(/testsuites/testsuite/testcase)')).toBe('7');
    expect(xpath(xml, 'string(//testcase[1]/@name)')).toBe('T01 The server MUST answer a well-formed request');
    expect(xpath(xml, 'string(//testcase[1]/@classname)')).toBe('toy.MUST');
  });

  withXmllint('records each status the way CI reporters read it', async () => {
    const xml = await toyXml();
    const of = (id: string, what: string): string => xpath(xml, `${what}(//testcase[starts-with(@name, "${id} ")]/*)`);
    expect(of('T01', 'count')).toBe('0');
    expect(of('T02', 'name')).toBe('failure');
    expect(xpath(xml, 'string(//testcase[starts-with(@name, "T02 ")]/failure/@message)')).toBe('the unknown user was accepted');
    expect(xpath(xml, 'string(//testcase[starts-with(@name, "T02 ")]/failure)')).toContain('"body": "<ok & \\"welcome\\">"');
    // A SHOULD warning passes: it must not turn CI red.
    expect(of('T03', 'name')).toBe('system-out');
    expect(xpath(xml, 'string(//testcase[starts-with(@name, "T03 ")]/system-out)')).toMatch(/^WARN: still open after 90 s\n/);
    expect(xpath(xml, 'string(//testcase[starts-with(@name, "T04 ")]/skipped/@message)')).toBe('needs fixture.allowed');
    expect(of('T05', 'name')).toBe('error');
    expect(xpath(xml, 'string(//testcase[starts-with(@name, "T06 ")]/skipped/@message)')).toMatch(/^error in a SHOULD check, which does not gate: timed out/);
    expect(xpath(xml, 'string(//testcase[starts-with(@name, "T07 ")]/system-out)')).toBe('INFO: toy/1.0');
  });

  it('escapes markup and quotes, and leaves out what XML 1.0 cannot hold', () => {
    const xml = renderJunit(nastyReport());
    expect(xml).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f\uFFFE\uFFFF]/);
    expect(xml).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    expect(xml).toContain('name="N1 a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;&#9;tab&#10;line\\u000d\\u0001\\u001b[31m\\u007f]]&gt;  é 🔑"');
    expect(xml).not.toContain(']]>');
  });

  withXmllint('round-trips awkward text through an independent parser', () => {
    const xml = renderJunit(nastyReport());
    expect(xmllint(xml, '--noout')).toEqual({ ok: true, output: '' });
    // What a reader sees: controls made visible, non-XML characters gone, the rest intact.
    const seen = NASTY.replace(/[\r\x01\x1b\x7f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).replace(/[\uFFFE\uD800]/g, '');
    expect(xpath(xml, 'string(//testcase[1]/@name)')).toBe(`N1 ${seen}`);
    expect(xpath(xml, 'string(//testcase[1]/failure/@message)')).toBe(seen);
    expect(xpath(xml, 'string(/testsuites/testsuite/@name)')).toBe(`suite ${seen}`);
    expect(xpath(xml, 'string(//testcase[1]/failure)')).toContain(`sent:\n  ${seen.replace('\n', '\n  ')}`);
    expect(xpath(xml, 'count(//testcase)')).toBe('4');
  });
});
