/**
 * JSON as Go's encoding/json reads it, because the verdict is whatever Xray (or Hysteria)
 * decides, not what a strict reader would. What differs from JSON.parse:
 *   - numbers keep their text, since Go parses `1.0` or `-1` into a uint32 field as an error;
 *   - object keys match struct fields exactly or, failing that, case-insensitively, and a
 *     later key for the same field overwrites an earlier one;
 *   - json.Decoder.Decode reads only the first value (trailing bytes are ignored), while
 *     json.Unmarshal requires the whole body to be that one value.
 */

export type GoJson =
  | { kind: 'object'; entries: [string, GoJson][] }
  | { kind: 'array'; items: GoJson[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; raw: string }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' };

export class JsonSyntaxError extends Error {
  constructor(readonly offset: number, reason: string) {
    super(`${reason} at offset ${offset}`);
  }
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
/** Sticky, so a number is matched where it stands without copying the rest of the text. */
const NUMBER = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** Go's scanner refuses nesting deeper than this (encoding/json maxNestingDepth). */
export const GO_MAX_DEPTH = 10_000;

const ESCAPES = new Map([['"', '"'], ['\\', '\\'], ['/', '/'], ['b', '\b'], ['f', '\f'], ['n', '\n'], ['r', '\r'], ['t', '\t']]);

type Frame = { kind: 'object'; entries: [string, GoJson][]; key: string } | { kind: 'array'; items: GoJson[] };

/**
 * Parses with an explicit stack rather than recursion, so Go's 10,000 levels parse wherever
 * Node's stack would give out first.
 */
class Reader {
  at = 0;
  constructor(readonly text: string) {}

  skipWhitespace(): void {
    while (WHITESPACE.has(this.text[this.at]!)) this.at++;
  }

  fail(reason: string): never {
    throw new JsonSyntaxError(this.at, this.at >= this.text.length ? 'unexpected end of JSON input' : reason);
  }

  value(): GoJson {
    const stack: Frame[] = [];
    for (;;) {
      this.skipWhitespace();
      const c = this.text[this.at];
      let value: GoJson;
      if (c === '{' || c === '[') {
        if (stack.length >= GO_MAX_DEPTH) this.fail('exceeded max depth');
        this.at++;
        this.skipWhitespace();
        if (c === '{' && this.text[this.at] === '}') {
          this.at++;
          value = { kind: 'object', entries: [] };
        } else if (c === '[' && this.text[this.at] === ']') {
          this.at++;
          value = { kind: 'array', items: [] };
        } else {
          stack.push(c === '{' ? { kind: 'object', entries: [], key: this.key() } : { kind: 'array', items: [] });
          continue;
        }
      } else {
        value = this.scalar(c);
      }
      // Hand the value to the containers it completes, innermost first.
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) return value;
        if (top.kind === 'object') top.entries.push([top.key, value]);
        else top.items.push(value);
        this.skipWhitespace();
        const d = this.text[this.at++];
        const close = top.kind === 'object' ? '}' : ']';
        if (d === close) {
          stack.pop();
          value = top.kind === 'object' ? { kind: 'object', entries: top.entries } : { kind: 'array', items: top.items };
          continue;
        }
        if (d !== ',') {
          this.at--;
          this.fail(`expected ',' or '${close}' after ${top.kind === 'object' ? 'object value' : 'array element'}`);
        }
        if (top.kind === 'object') top.key = this.key();
        break;
      }
    }
  }

  /** An object key and the ':' after it. */
  key(): string {
    this.skipWhitespace();
    if (this.text[this.at] !== '"') this.fail('expected a string key');
    const key = this.string();
    this.skipWhitespace();
    if (this.text[this.at] !== ':') this.fail("expected ':' after object key");
    this.at++;
    return key;
  }

  scalar(c: string | undefined): GoJson {
    if (c === '"') return { kind: 'string', value: this.string() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return { kind: 'number', raw: this.number() };
    for (const [word, value] of [['true', { kind: 'bool', value: true }], ['false', { kind: 'bool', value: false }], ['null', { kind: 'null' }]] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return value;
      }
    }
    return this.fail(`invalid character ${JSON.stringify(c)} looking for beginning of value`);
  }

  /**
   * A string as Go unquotes it: a \u escape of a lone surrogate, or a high surrogate not followed
   * by a low one, becomes U+FFFD (invalid UTF-8 bytes already did, in goUtf8Text).
   */
  string(): string {
    this.at++;
    let out = '';
    let run = this.at;
    for (;;) {
      const c = this.text.charCodeAt(this.at);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) {
        out += this.text.slice(run, this.at);
        this.at++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      if (c !== 0x5c) {
        this.at++;
        continue;
      }
      out += this.text.slice(run, this.at);
      const e = this.text[this.at + 1];
      const simple = e === undefined ? undefined : ESCAPES.get(e);
      if (simple !== undefined) {
        out += simple;
        this.at += 2;
      } else if (e === 'u') {
        const unit = this.hex4(this.at + 2);
        if (unit < 0) this.fail('invalid escape in string');
        this.at += 6;
        if (unit >= 0xd800 && unit < 0xe000) {
          const low = this.text[this.at] === '\\' && this.text[this.at + 1] === 'u' ? this.hex4(this.at + 2) : -1;
          if (unit < 0xdc00 && low >= 0xdc00 && low < 0xe000) {
            out += String.fromCharCode(unit, low);
            this.at += 6;
          } else {
            out += '\ufffd';
          }
        } else {
          out += String.fromCharCode(unit);
        }
      } else {
        this.at++;
        this.fail(`invalid character ${JSON.stringify(e)} in string escape code`);
      }
      run = this.at;
    }
  }

  hex4(at: number): number {
    const digits = this.text.slice(at, at + 4);
    return /^[0-9a-fA-F]{4}$/.test(digits) ? Number.parseInt(digits, 16) : -1;
  }

  number(): string {
    NUMBER.lastIndex = this.at;
    const match = NUMBER.exec(this.text);
    if (!match) this.fail('invalid number');
    this.at += match![0].length;
    return match![0];
  }
}

/** json.Decoder.Decode: the first value; `rest` is what Go leaves unread. */
export function decodeFirstValue(text: string): { value: GoJson; rest: string } {
  const reader = new Reader(text);
  const value = reader.value();
  return { value, rest: text.slice(reader.at) };
}

/** json.Unmarshal: exactly one value, with nothing but whitespace after it. */
export function unmarshalWhole(text: string): GoJson {
  const reader = new Reader(text);
  const value = reader.value();
  reader.skipWhitespace();
  if (reader.at < text.length) reader.fail('invalid character after top-level value');
  return value;
}

/**
 * Go's case-insensitive key match (bytes.EqualFold-style simple folding): besides ASCII case,
 * U+017F (long s) folds to "s" and U+212A (Kelvin sign) to "k", so both can spell a field.
 */
export function goKeyMatches(key: string, name: string): { exact: boolean } | undefined {
  if (key === name) return { exact: true };
  const folded = key.replace(/\u017f/g, 's').replace(/\u212a/g, 'k').toLowerCase();
  return folded === name.toLowerCase() ? { exact: false } : undefined;
}

export type GoFieldKind = 'string' | 'uint32' | 'bool';

/** What decoding into a Go value found: the first type error (Go reports that one) and warnings. */
export interface GoDecoding {
  firstError?: string;
  warnings: string[];
}

/**
 * Decodes an object's entries, in order, into the fields of a Go struct: a later entry for a
 * field overwrites an earlier one, a type error is remembered (the first one is what Go returns)
 * and decoding goes on, unknown keys are ignored.
 */
export function goDecodeStruct(
  object: GoJson & { kind: 'object' }, fields: Record<string, GoFieldKind>, into: Record<string, unknown>, decoding: GoDecoding, path = '',
): void {
  for (const [key, value] of object.entries) {
    for (const [name, kind] of Object.entries(fields)) {
      const match = goKeyMatches(key, name);
      if (!match) continue;
      if (!match.exact) decoding.warnings.push(`key "${path}${key}" accepted as "${path}${name}" only because Go matches keys case-insensitively`);
      // null into a string, number or bool leaves the field as it was.
      if (value.kind === 'null') break;
      const read = kind === 'string' ? goString(value) : kind === 'uint32' ? goUint32(value) : goBool(value);
      if (read.ok) into[name] = read.value;
      else decoding.firstError ??= `"${path}${name}": ${read.reason}`;
      break;
    }
  }
}

/** Go's decoding of a JSON value into a uint32 field: an integer literal in range, or null (left 0). */
export function goUint32(value: GoJson): { ok: true; value: number } | { ok: false; reason: string } {
  if (value.kind === 'null') return { ok: true, value: 0 };
  if (value.kind !== 'number') return { ok: false, reason: `cannot unmarshal ${goKind(value)} into uint32` };
  if (!/^\d+$/.test(value.raw) || Number(value.raw) > 0xffffffff) return { ok: false, reason: `cannot unmarshal number ${value.raw} into uint32` };
  return { ok: true, value: Number(value.raw) };
}

/** Into a string field: a JSON string, or null (left ""). */
export function goString(value: GoJson): { ok: true; value: string } | { ok: false; reason: string } {
  if (value.kind === 'null') return { ok: true, value: '' };
  if (value.kind !== 'string') return { ok: false, reason: `cannot unmarshal ${goKind(value)} into string` };
  return { ok: true, value: value.value };
}

/** Into a bool field: true/false, or null (left false). */
export function goBool(value: GoJson): { ok: true; value: boolean } | { ok: false; reason: string } {
  if (value.kind === 'null') return { ok: true, value: false };
  if (value.kind !== 'bool') return { ok: false, reason: `cannot unmarshal ${goKind(value)} into bool` };
  return { ok: true, value: value.value };
}

export function goKind(value: GoJson): string {
  return value.kind === 'bool' ? 'bool' : value.kind;
}
