import { describe, expect, it } from 'vitest';
import { groupDigits } from '../../src/shared/text.js';

describe('groupDigits', () => {
  it('prints what toLocaleString(\'en-US\') prints for a rounded number', () => {
    const numbers = [0, 1, 12, 999, 1000, 1234.5, 9999.4, 12_345, 999_999, 1_000_000, 28_637.49, -1, -1234, -999_999.6, 2 ** 40, Number.MAX_SAFE_INTEGER, 1e21, 0.4];
    for (let i = 0; i < 200; i++) numbers.push(Math.floor(Math.random() * 10 ** (i % 16)));
    for (const n of numbers) expect(groupDigits(n), String(n)).toBe(Math.round(n).toLocaleString('en-US'));
  });

  it('never prints -0', () => {
    expect(groupDigits(-0.4)).toBe('0');
  });
});
