/**
 * A dialect is data: which events exist, which body keys carry which facts about a connection
 * (in order, with what formatting and when they are left out), how the secret travels, and how
 * the reply is read. The request builder, the backend's request reader and the contract are
 * generic over it, so a new dialect is one file in dialects/.
 */
import { isIP } from 'node:net';
import { ipToBytes, isIpv4Mapped } from '../../shared/ip.js';
import { unmarshalWhole, type GoJson } from './go-json.js';

export const EVENT_TYPES = ['authorization', 'connect', 'heartbeat', 'disconnect'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What a proxy knows about one connection when it sends an event. */
export interface ConnectionFacts {
  credential: string;
  connectionId: string;
  protocol: string;
  inboundTag?: string;
  sourceIp: string;
  sourcePort: number;
  localIp: string;
  localPort: number;
  /** Hints the wiki dialect sends; a backend must not trust them. */
  email?: string;
  level?: number;
  /** Hysteria's declared receive rate, bytes/s, as decimal digits (it is a uint64). */
  tx?: string;
}

export type Fact = keyof ConnectionFacts | 'type' | 'timestamp' | 'address';

/**
 * How a fact is written: `text` and `number` as they are, `ip` with IPv6 in brackets and
 * IPv4-mapped folded (Go's net.IPAddress String()), `address` as ip:port the same way,
 * `uint64` as a bare integer that may exceed 2^53.
 */
export type FactFormat = 'text' | 'number' | 'ip' | 'address' | 'uint64';

export interface BodyField {
  key: string;
  fact: Fact;
  format: FactFormat;
  /** Events on which the key is absent (src: `protocol` on authorization and connect). */
  omitOn?: readonly EventType[];
  /** Go's omitempty: absent when the fact is empty or missing. */
  omitEmpty?: boolean;
}

export interface Dialect {
  name: string;
  summary: string;
  events: readonly EventType[];
  body: readonly BodyField[];
  /** `bearer`: the proxy's `secret` goes as `Authorization: Bearer <secret>`; `none`: the config has no secret key. */
  secret: 'bearer' | 'none';
  /** Whether the proxy config has a free-form headers map (which can carry a bearer token too). */
  customHeaders: boolean;
  /** Whether the proxy keeps a positive cache of allowed (credential, source IP) pairs. */
  cache: boolean;
  /** Seconds; `fixed` when the proxy hard-codes it. */
  timeout: { default: number; fixed: boolean };
  /** Whether a 401/403 on a heartbeat ends the connection by default (wiki says so, the code does not). */
  kickOnDenyDefault: boolean;
  /**
   * `extauth-user`: allow = 200 + {"user":{"email","level"}} read by json.Decoder (first value);
   * `hysteria-ok`: allow = 200 + {"ok":true,"id"} read by json.Unmarshal (whole body).
   */
  reply: 'extauth-user' | 'hysteria-ok';
}

/**
 * Go's rendering of an address: IPv6 in brackets as net.IP.String() prints it (`::1.2.3.4` is
 * `::102:304`: only IPv4-mapped addresses are dotted, and Xray folds those into IPv4), a zone
 * kept, anything else as given.
 */
export function goIpText(ip: string): string {
  const percent = ip.indexOf('%');
  const address = percent < 0 ? ip : ip.slice(0, percent);
  const family = isIP(address);
  if (family === 0) return ip;
  if (family === 4) return address;
  const bytes = ipToBytes(address);
  if (isIpv4Mapped(bytes)) return Array.from(bytes.subarray(12)).join('.');
  return `[${goIpv6Text(bytes)}${percent < 0 ? '' : ip.slice(percent)}]`;
}

/** RFC 5952 as Go writes it: lower-case hex, the first longest run of two or more zero groups as "::". */
function goIpv6Text(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLength).join(':')}`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * json.Marshal's string: as JSON.stringify, but `<`, `>`, `&`, U+2028 and U+2029 escaped
 * (HTML-safe, Go's default) and a lone surrogate, which Go cannot hold, as U+FFFD.
 */
export function goJsonString(text: string): string {
  return JSON.stringify(text.replace(LONE_SURROGATE, '\ufffd')).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function factValue(field: BodyField, facts: ConnectionFacts, type: EventType, now: Date): string | number | undefined {
  switch (field.fact) {
    case 'type':
      return type;
    case 'timestamp':
      return Math.floor(now.getTime() / 1000);
    case 'address':
      return `${goIpText(facts.sourceIp)}:${facts.sourcePort}`;
    default:
      return facts[field.fact];
  }
}

/** The JSON body as Go's json.Marshal writes it: compact, keys in declared order. */
export function buildEventBody(dialect: Dialect, type: EventType, facts: ConnectionFacts, now = new Date()): string {
  const parts: string[] = [];
  for (const field of dialect.body) {
    if (field.omitOn?.includes(type)) continue;
    const value = factValue(field, facts, type, now);
    if (value === undefined || (field.omitEmpty && (value === '' || value === 0))) continue;
    parts.push(`${goJsonString(field.key)}:${encodeFact(field.format, value)}`);
  }
  return `{${parts.join(',')}}`;
}

function encodeFact(format: FactFormat, value: string | number): string {
  switch (format) {
    case 'number':
      return String(Number(value));
    case 'uint64':
      return /^\d+$/.test(String(value)) ? String(value) : '0';
    case 'ip':
      return goJsonString(goIpText(String(value)));
    default:
      return goJsonString(String(value));
  }
}

/** A request body the backend cannot act on; the backend answers 400 with this reason. */
export class BadEventError extends Error {
  override readonly name = 'BadEventError';
}

export interface ParsedEvent {
  type: EventType;
  facts: Partial<ConnectionFacts>;
  /** Keys the dialect does not define (X10: a backend should ignore them). */
  unknownKeys: string[];
}

/**
 * Reads a request body as the dialect defines it, for a backend. Strict where a real backend
 * must be (a JSON object, a string credential, a known event type), lenient about optional and
 * unknown keys. Dialects without a `type` key have only authorization events.
 */
export function parseEventBody(dialect: Dialect, text: string): ParsedEvent {
  let value: GoJson;
  try {
    value = unmarshalWhole(text);
  } catch (error) {
    throw new BadEventError(`body is not JSON (${(error as Error).message})`);
  }
  if (value.kind !== 'object') throw new BadEventError('body is not a JSON object');
  const byKey = new Map(value.entries);
  const facts: Partial<ConnectionFacts> = {};
  let type: EventType = 'authorization';
  for (const field of dialect.body) {
    const item = byKey.get(field.key);
    if (item === undefined || item.kind === 'null') continue;
    if (field.fact === 'type') {
      if (item.kind !== 'string' || !(EVENT_TYPES as readonly string[]).includes(item.value) || !dialect.events.includes(item.value as EventType)) {
        throw new BadEventError(`"${field.key}" must be one of ${dialect.events.join(', ')}`);
      }
      type = item.value as EventType;
    } else if (field.fact === 'timestamp') {
      if (item.kind !== 'number') throw new BadEventError(`"${field.key}" must be a number`);
    } else if (field.fact === 'address') {
      if (item.kind !== 'string') throw new BadEventError(`"${field.key}" must be a string`);
      const match = /^\[?(.*?)\]?:(\d+)$/.exec(item.value);
      facts.sourceIp = match ? match[1] : item.value;
      facts.sourcePort = match ? Number(match[2]) : 0;
    } else if (field.format === 'number') {
      if (item.kind !== 'number') throw new BadEventError(`"${field.key}" must be a number`);
      (facts as Record<string, unknown>)[field.fact] = Number(item.raw);
    } else if (field.format === 'uint64') {
      if (item.kind !== 'number' || !/^\d+$/.test(item.raw)) throw new BadEventError(`"${field.key}" must be a non-negative integer`);
      (facts as Record<string, unknown>)[field.fact] = item.raw;
    } else {
      if (item.kind !== 'string') throw new BadEventError(`"${field.key}" must be a string`);
      const text = field.format === 'ip' ? item.value.replace(/^\[(.*)\]$/, '$1') : item.value;
      (facts as Record<string, unknown>)[field.fact] = text;
    }
  }
  const typeField = dialect.body.find((f) => f.fact === 'type');
  if (typeField && !byKey.has(typeField.key)) throw new BadEventError(`"${typeField.key}" is missing`);
  if (typeof facts.credential !== 'string') {
    const key = dialect.body.find((f) => f.fact === 'credential')?.key ?? 'credential';
    throw new BadEventError(`"${key}" is missing`);
  }
  const known = new Set(dialect.body.map((f) => f.key));
  return { type, facts, unknownKeys: value.entries.map(([k]) => k).filter((k) => !known.has(k)) };
}
