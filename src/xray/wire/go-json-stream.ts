/**
 * Reading a reply body the way Go's json.Decoder does: byte by byte through its scanner, so the
 * reading stops exactly where Go's stops (at the end of the first value, or at the first byte
 * that cannot be JSON), and text decoded the way Go decodes it (one U+FFFD per invalid byte).
 */
import { isUtf8 } from 'node:buffer';
import { GO_MAX_DEPTH } from './go-json.js';

/**
 * Bytes to text as Go's utf8.DecodeRune walks them: each byte that does not start a valid,
 * complete, shortest-form sequence becomes one U+FFFD (Node's decoder merges a cut sequence
 * into one U+FFFD; Go does not).
 */
export function goUtf8Text(bytes: Uint8Array): string {
  if (isUtf8(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let out = '';
  let run = 0;
  let at = 0;
  const flush = (end: number): void => {
    if (end > run) out += Buffer.from(bytes.buffer, bytes.byteOffset + run, end - run).toString('utf8');
  };
  while (at < bytes.length) {
    const size = sequenceLength(bytes, at);
    if (size > 0) {
      at += size;
      continue;
    }
    flush(at);
    out += '\ufffd';
    at++;
    run = at;
  }
  flush(at);
  return out;
}

/** The length of the valid UTF-8 sequence at `at`, or 0. */
function sequenceLength(b: Uint8Array, at: number): number {
  const c = b[at]!;
  if (c < 0x80) return 1;
  const cont = (i: number, lo = 0x80, hi = 0xbf): boolean => at + i < b.length && b[at + i]! >= lo && b[at + i]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const [lo, hi] = c === 0xe0 ? [0xa0, 0xbf] : c === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const [lo, hi] = c === 0xf0 ? [0x90, 0xbf] : c === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

export type ScanResult = { state: 'more' } | { state: 'end'; length: number } | { state: 'error' };

const enum S {
  Value, ObjectKeyOrEnd, ObjectKey, Colon, AfterValue, ArrayValueOrEnd,
  String, Escape, Unicode, Minus, Zero, Integer, Dot, Fraction, Exponent, ExponentSign, ExponentDigits, Literal,
}

/**
 * Go's scanner, reduced to what the decoder needs to know: has the first value ended, and where
 * (an object or array ends at its closing byte; a scalar one byte later, or at the end of input),
 * or has a byte arrived that no JSON can contain.
 */
export class FirstValueScanner {
  private state = S.Value;
  /** Open containers: '{' or '['. */
  private readonly stack: number[] = [];
  private inKey = false;
  private hexLeft = 0;
  private literal = '';
  private scalarDone = false;
  private offset = 0;

  push(chunk: Uint8Array): ScanResult {
    for (let i = 0; i < chunk.length; i++) {
      const result = this.step(chunk[i]!);
      this.offset++;
      if (result !== undefined) return result;
    }
    return { state: 'more' };
  }

  /** The body ended: a top-level scalar that was complete ends here. */
  finish(): ScanResult {
    if (this.scalarDone || (this.stack.length === 0 && this.endsScalar())) return { state: 'end', length: this.offset };
    return { state: 'error' };
  }

  private endsScalar(): boolean {
    return this.state === S.Zero || this.state === S.Integer || this.state === S.Fraction || this.state === S.ExponentDigits;
  }

  private step(c: number): ScanResult | undefined {
    const space = c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
    const digit = c >= 0x30 && c <= 0x39;
    // A top-level scalar ends at the first byte that is not part of it (that byte is not consumed).
    if (this.scalarDone) return { state: 'end', length: this.offset };
    switch (this.state) {
      case S.Value:
      case S.ArrayValueOrEnd:
        if (space) return undefined;
        if (this.state === S.ArrayValueOrEnd && c === 0x5d) return this.close();
        return this.beginValue(c);
      case S.ObjectKeyOrEnd:
      case S.ObjectKey:
        if (space) return undefined;
        if (this.state === S.ObjectKeyOrEnd && c === 0x7d) return this.close();
        if (c !== 0x22) return { state: 'error' };
        this.inKey = true;
        this.state = S.String;
        return undefined;
      case S.Colon:
        if (space) return undefined;
        if (c !== 0x3a) return { state: 'error' };
        this.state = S.Value;
        return undefined;
      case S.AfterValue: {
        if (space) return undefined;
        const top = this.stack[this.stack.length - 1];
        if (c === 0x2c) {
          this.state = top === 0x7b ? S.ObjectKey : S.Value;
          return undefined;
        }
        if ((top === 0x7b && c === 0x7d) || (top === 0x5b && c === 0x5d)) return this.close();
        return { state: 'error' };
      }
      case S.String:
        if (c === 0x22) {
          if (this.inKey) {
            this.inKey = false;
            this.state = S.Colon;
            return undefined;
          }
          return this.valueEnded();
        }
        if (c === 0x5c) this.state = S.Escape;
        else if (c < 0x20) return { state: 'error' };
        return undefined;
      case S.Escape:
        if (c === 0x75) {
          this.hexLeft = 4;
          this.state = S.Unicode;
        } else if ('"\\/bfnrt'.includes(String.fromCharCode(c))) {
          this.state = S.String;
        } else {
          return { state: 'error' };
        }
        return undefined;
      case S.Unicode:
        if (!/[0-9a-fA-F]/.test(String.fromCharCode(c))) return { state: 'error' };
        if (--this.hexLeft === 0) this.state = S.String;
        return undefined;
      case S.Minus:
        if (c === 0x30) this.state = S.Zero;
        else if (digit) this.state = S.Integer;
        else return { state: 'error' };
        return undefined;
      case S.Zero:
      case S.Integer:
        if (this.state === S.Integer && digit) return undefined;
        if (c === 0x2e) this.state = S.Dot;
        else if (c === 0x65 || c === 0x45) this.state = S.Exponent;
        else return this.afterScalar(c);
        return undefined;
      case S.Dot:
        if (!digit) return { state: 'error' };
        this.state = S.Fraction;
        return undefined;
      case S.Fraction:
        if (digit) return undefined;
        if (c === 0x65 || c === 0x45) this.state = S.Exponent;
        else return this.afterScalar(c);
        return undefined;
      case S.Exponent:
        if (c === 0x2b || c === 0x2d) this.state = S.ExponentSign;
        else if (digit) this.state = S.ExponentDigits;
        else return { state: 'error' };
        return undefined;
      case S.ExponentSign:
        if (!digit) return { state: 'error' };
        this.state = S.ExponentDigits;
        return undefined;
      case S.ExponentDigits:
        if (digit) return undefined;
        return this.afterScalar(c);
      case S.Literal:
        if (c !== this.literal.charCodeAt(0)) return { state: 'error' };
        this.literal = this.literal.slice(1);
        if (this.literal === '') return this.valueEnded();
        return undefined;
    }
  }

  private beginValue(c: number): ScanResult | undefined {
    if (c === 0x7b || c === 0x5b) {
      if (this.stack.length >= GO_MAX_DEPTH) return { state: 'error' };
      this.stack.push(c);
      this.state = c === 0x7b ? S.ObjectKeyOrEnd : S.ArrayValueOrEnd;
      return undefined;
    }
    if (c === 0x22) {
      this.state = S.String;
      return undefined;
    }
    if (c === 0x2d) {
      this.state = S.Minus;
      return undefined;
    }
    if (c === 0x30) {
      this.state = S.Zero;
      return undefined;
    }
    if (c >= 0x31 && c <= 0x39) {
      this.state = S.Integer;
      return undefined;
    }
    const words: Record<number, string> = { 0x74: 'rue', 0x66: 'alse', 0x6e: 'ull' };
    if (words[c] === undefined) return { state: 'error' };
    this.literal = words[c]!;
    this.state = S.Literal;
    return undefined;
  }

  /** A number ended by byte c, which belongs to what follows it. */
  private afterScalar(c: number): ScanResult | undefined {
    if (this.stack.length === 0) return { state: 'end', length: this.offset };
    this.state = S.AfterValue;
    return this.step(c);
  }

  private valueEnded(): ScanResult | undefined {
    if (this.stack.length === 0) {
      // Go's scanner reports the end one byte later (or at the end of input).
      this.scalarDone = true;
      return undefined;
    }
    this.state = S.AfterValue;
    return undefined;
  }

  private close(): ScanResult | undefined {
    this.stack.pop();
    if (this.stack.length === 0) return { state: 'end', length: this.offset + 1 };
    this.state = S.AfterValue;
    return undefined;
  }
}
