/**
 * Recordings: one JSON object per line, written by a tap (xray-tap, capnp-tap) or by snell-serve
 * --record, read back by a replay. Each line names its protocol, so a recording of another
 * protocol is refused by name rather than half-read. Reading stops at the first bad line, with
 * its number: a replay of part of a recording would compare part of the verdicts.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { InputError } from '../shared/errors.js';
import { FileReadError, openForWrite, readBoundedFileSync, type ReadLimits } from '../shared/files.js';

export type RecordedProtocol = 'xray' | 'capnp' | 'snell';

export interface RecordBase {
  protocol: RecordedProtocol;
  /** Wall clock, ISO 8601. */
  at: string;
  /** Milliseconds since the recording started: a replay keeps these gaps. */
  offsetMs: number;
  /** Credentials in clear (--record-secrets); masked otherwise. */
  secrets: boolean;
}

/** The lines of a recording, each checked to be an object of `protocol`. */
export function readRecording<T extends RecordBase>(path: string, protocol: RecordedProtocol, limits: ReadLimits = {}): T[] {
  let text: string;
  try {
    text = readBoundedFileSync(path, limits).toString('utf8');
  } catch (error) {
    throw new InputError(`--replay ${path}: ${error instanceof FileReadError ? error.why : (error as Error).message}`);
  }
  const records: T[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${path}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      const cut = i === lines.length - 1 && !text.endsWith('\n');
      throw new InputError(`${where}: ${cut ? 'a truncated line (the recording was cut off?)' : `not JSON (${(error as Error).message})`}`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InputError(`${where}: not a JSON object`);
    const record = value as Partial<RecordBase>;
    if (record.protocol !== protocol) {
      throw new InputError(`${where}: ${typeof record.protocol === 'string' ? `a recording of ${record.protocol}, not ${protocol}` : `not an authkit ${protocol} recording (no "protocol")`}`);
    }
    if (typeof record.offsetMs !== 'number' || !Number.isFinite(record.offsetMs) || record.offsetMs < 0) throw new InputError(`${where}: "offsetMs" must be a number >= 0`);
    if (typeof record.secrets !== 'boolean') throw new InputError(`${where}: "secrets" must be true or false`);
    const previous = records[records.length - 1];
    if (previous && record.offsetMs < previous.offsetMs) throw new InputError(`${where}: "offsetMs" goes back (${record.offsetMs} after ${previous.offsetMs}): one recording per file`);
    records.push(Object.assign(value as T, { line: i + 1 }));
  }
  if (records.length === 0) throw new InputError(`${path}: an empty recording`);
  return records;
}

/** What a field of a record must be. `pairs`: [[string, string], ...]; `headers`: [{name, value}, ...]. */
export type FieldKind = 'string' | 'string?' | 'number' | 'object' | 'object?' | 'pairs' | 'headers';

/**
 * Checks the fields a replay reads (dotted paths), so that a line of the right protocol with a
 * field missing or of another type is one InputError with its line, not a TypeError later.
 */
export function checkFields(record: RecordBase, file: string, fields: readonly (readonly [string, FieldKind])[]): void {
  for (const [path, kind] of fields) {
    const value = path.split('.').reduce<unknown>((at, key) => (at && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined), record);
    if (!fits(value, kind)) throw new InputError(`${file}:${lineOf(record)}: "${path}" must be ${DESCRIBED[kind]}`);
  }
}

const DESCRIBED: Record<FieldKind, string> = {
  string: 'a string', 'string?': 'a string or null', number: 'a number', object: 'an object', 'object?': 'an object or null',
  pairs: 'a list of [name, value] strings', headers: 'a list of {"name", "value"} strings',
};

function fits(value: unknown, kind: FieldKind): boolean {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  switch (kind) {
    case 'string':
      return typeof value === 'string';
    case 'string?':
      return typeof value === 'string' || value === null;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'object':
      return isObject(value);
    case 'object?':
      return value === null || isObject(value);
    case 'pairs':
      return Array.isArray(value) && value.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
    case 'headers':
      return Array.isArray(value) && value.every((h) => isObject(h) && typeof h.name === 'string' && typeof h.value === 'string');
  }
}

/** Where a record came from in its file (added by readRecording). */
export function lineOf(record: RecordBase): number {
  return (record as RecordBase & { line?: number }).line ?? 0;
}

/** Lines are written in batches of about this many bytes, or every FLUSH_MS, whichever comes first. */
export const DEFAULT_RECORD_BATCH_BYTES = 64 * 1024;
const FLUSH_MS = 10;
/** Bytes waiting for the disk past which new records are dropped (and counted), not queued. */
export const DEFAULT_RECORD_BACKLOG_BYTES = 64 << 20;

export interface RecordingBounds {
  /** A batch is written once it holds this many bytes (or after 10 ms): `--record-batch`. */
  batchBytes?: number;
  /** Bytes waiting for the disk past which records are dropped and counted: `--record-backlog`. */
  backlogBytes?: number;
}

/**
 * Appends one line per record, in batches (one write per 64 KiB or 10 ms instead of one per
 * exchange: a write per exchange cost the tap a thread-pool round trip each). A write error (a full
 * disk, a removed directory) is reported once through `onError` and later records are dropped; a
 * disk that falls the backlog (64 MiB) behind drops records too, counted in `dropped`: the tap goes
 * on relaying whatever happens to its recording.
 */
export class RecordingWriter {
  private readonly stream: WriteStream;
  private failed = false;
  private batch: string[] = [];
  private batchBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly maxBatchBytes: number;
  readonly backlogBytes: number;
  written = 0;
  dropped = 0;

  /** Opens (and empties) the file now: one that cannot be written is an InputError naming `flag`. */
  constructor(path: string, flag: string, onError: (error: Error) => void, bounds: RecordingBounds = {}) {
    this.maxBatchBytes = bounds.batchBytes ?? DEFAULT_RECORD_BATCH_BYTES;
    this.backlogBytes = bounds.backlogBytes ?? DEFAULT_RECORD_BACKLOG_BYTES;
    this.stream = createWriteStream('', { fd: openForWrite(path, flag) });
    this.stream.on('error', (error) => {
      if (!this.failed) onError(error);
      this.failed = true;
    });
  }

  write(record: RecordBase): void {
    if (this.failed) return;
    if (this.stream.writableLength > this.backlogBytes) {
      this.dropped++;
      return;
    }
    const line = `${JSON.stringify(record)}\n`;
    this.batch.push(line);
    this.batchBytes += Buffer.byteLength(line);
    this.written++;
    if (this.batchBytes >= this.maxBatchBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch.length === 0 || this.failed) return;
    this.stream.write(this.batch.join(''));
    this.batch = [];
    this.batchBytes = 0;
  }

  close(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
