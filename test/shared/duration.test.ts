/** The one parser for time flags, and every time flag using it. */
import { describe, expect, it } from 'vitest';
import { parseTime } from '../../src/shared/duration.js';
import { buildProgram } from '../../src/cli/main.js';

describe('parseTime', () => {
  it('takes durations with units and bare numbers in the flag\'s own unit', () => {
    expect(parseTime('500ms', '--t', 's')).toBe(0.5);
    expect(parseTime('2s', '--t', 'ms')).toBe(2000);
    expect(parseTime('1.5m', '--t', 's')).toBe(90);
    expect(parseTime('1h', '--t', 'ms')).toBe(3_600_000);
    expect(parseTime('5', '--t', 's')).toBe(5);
    expect(parseTime('5', '--t', 'ms')).toBe(5);
  });

  it('refuses what is not a duration, or out of range, naming the flag', () => {
    expect(() => parseTime('5 parsecs', '--timeout', 's')).toThrow(/^--timeout: expected a duration like 500ms, 2s or 1m \(a bare number is seconds\)/);
    expect(() => parseTime('-1s', '--timeout', 's')).toThrow(/--timeout/);
    expect(() => parseTime('2h', '--timeout', 's', { max: 3600 })).toThrow(/from 0s to 3600s, got "2h"/);
  });
});

const program = await buildProgram();

describe('every time flag takes a duration', () => {
  const command = (name: string) => program.commands.find((c) => c.name() === name)!;
  const parsed = (name: string, flag: string, text: string): unknown => {
    const option = command(name).options.find((o) => o.long === flag)!;
    return option.parseArg ? option.parseArg(text, undefined) : text;
  };

  it.each([
    ['xray-sim', '--timeout', '1500ms', 1.5],
    ['xray-sim', '--heartbeat', '500ms', 0.5],
    ['xray-sim', '--ttl', '1m', 60],
    ['xray-sim', '--stagger', '100ms', 0.1],
    ['snell-probe', '--timeout', '2s', 2000],
    ['capnp-check', '--timeout-ms', '1s', 1000],
    ['snell-serve', '--idle-timeout', '5m', 300],
  ])('%s %s %s', (name, flag, text, value) => {
    expect(parsed(name, flag, text)).toBe(value);
    // The bare number each flag took before still means what it meant.
    expect(typeof parsed(name, flag, '3')).toBe('number');
  });
});
