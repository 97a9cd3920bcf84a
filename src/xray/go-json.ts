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

class Reader {
  at = 0;
  constructor(readonly text: string) {}

  skipWhitespace(): void {
    while (WHITESPACE.has(this.text[this.at]!)) this.at++;
  }

  fail(reason: string): never {
    throw new JsonSyntaxError(this.at, this.at >= this.text.length ? 'unexpected end of JSON input' : reason);
  }

  value(depth: number): GoJson {
    // Go allows 10000 levels; JavaScript's stack gives out first, and says so as a RangeError.
    if (depth > 10_000) this.fail('exceeded max depth');
    this.skipWhitespace();
    const c = this.text[this.at];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
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

  object(depth: number): GoJson {
    this.at++;
    const entries: [string, GoJson][] = [];
    this.skipWhitespace();
    if (this.text[this.at] === '}') {
      this.at++;
      return { kind: 'object', entries };
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.at] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.skipWhitespace();
      if (this.text[this.at] !== ':') this.fail("expected ':' after object key");
      this.at++;
      entries.push([key, this.value(depth + 1)]);
      this.skipWhitespace();
      const c = this.text[this.at++];
      if (c === '}') return { kind: 'object', entries };
      if (c !== ',') this.fail("expected ',' or '}' after object value");
    }
  }

  array(depth: number): GoJson {
    this.at++;
    const items: GoJson[] = [];
    this.skipWhitespace();
    if (this.text[this.at] === ']') {
      this.at++;
      return { kind: 'array', items };
    }
    for (;;) {
      items.push(this.value(depth + 1));
      this.skipWhitespace();
      const c = this.text[this.at++];
      if (c === ']') return { kind: 'array', items };
      if (c !== ',') this.fail("expected ',' or ']' after array element");
    }
  }

  string(): string {
    const start = this.at;
    this.at++;
    for (;;) {
      const c = this.text[this.at];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') break;
      if (c === '\\') this.at++;
      else if (c < ' ') this.fail('control character in string');
      this.at++;
    }
    this.at++;
    try {
      return JSON.parse(this.text.slice(start, this.at)) as string;
    } catch {
      return this.fail('invalid escape in string');
    }
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
  const value = reader.value(0);
  return { value, rest: text.slice(reader.at) };
}

/** json.Unmarshal: exactly one value, with nothing but whitespace after it. */
export function unmarshalWhole(text: string): GoJson {
  const reader = new Reader(text);
  const value = reader.value(0);
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
