/**
 * Captured client first bytes, from the places snell-auth takes them: one blob, a JSON Lines
 * file of {"blob","sourceIp"?}, or a pcap. Each is stripped of obfs and trial-authenticated
 * in order through one authenticator, so the IP cache behaves as on a live server.
 */
import { isIP } from 'node:net';
import { parseHex } from '../shared/bytes.js';
import { DecodeError, InputError } from '../shared/errors.js';
import { parseJsonText } from '../shared/json.js';
import { stripObfs, type ObfsChoice } from './wire/obfs.js';
import { readPcap } from './wire/pcap.js';
import type { TrialAuthenticator, TrialOutcome } from './model.js';
import { hostPort } from '../shared/ip.js';

export interface Capture {
  blob: Uint8Array;
  sourceIp?: string;
  /** Where the capture came from, for messages: `line 3`, `10.0.0.1:5555`. */
  source: string;
}

export function parseCapturesJsonl(text: string, label: string): Capture[] {
  const captures: Capture[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const where = `${label}:${i + 1}`;
    const value = parseJsonText(line, label, i + 1);
    const { blob, sourceIp } = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    if (typeof blob !== 'string') throw new InputError(`${where}: expected {"blob": HEX, "sourceIp"?: IP}`);
    if (sourceIp !== undefined && (typeof sourceIp !== 'string' || isIP(sourceIp) === 0)) {
      throw new InputError(`${where}: "sourceIp" must be an IP address`);
    }
    captures.push({ blob: parseHex(blob, `${where}: "blob"`), sourceIp: sourceIp as string | undefined, source: `line ${i + 1}` });
  });
  if (captures.length === 0) throw new InputError(`${label}: no captures in the file`);
  return captures;
}

export interface PcapCaptures {
  captures: Capture[];
  /** Streams left out because their SYN was not captured: their first bytes may be mid-stream. */
  withoutSyn: number;
  /** The capture ends inside a record: a warning naming the byte offset; the streams before it are kept. */
  truncated?: string;
}

export function capturesFromPcap(bytes: Uint8Array, port: number, label: string): PcapCaptures {
  let read;
  try {
    read = readPcap(bytes, port);
  } catch (error) {
    if (error instanceof InputError) throw new InputError(`${label}: ${error.message}`);
    throw error;
  }
  const { streams } = read;
  const truncated = read.truncated && `${label}: capture is truncated at byte offset ${read.truncated.offset} (${read.truncated.what}); the records before it are read`;
  const opened = streams.filter((s) => s.synSeen);
  if (opened.length === 0) {
    const why = streams.length > 0 ? ` (${streams.length} without their SYN, so not from their start)` : '';
    const cut = read.truncated ? `; capture is truncated at byte offset ${read.truncated.offset} (${read.truncated.what})` : '';
    throw new InputError(`${label}: no TCP stream to port ${port} with client data from its start${why}${cut}`);
  }
  const captures = opened.map((s) => ({
    blob: s.bytes,
    sourceIp: s.sourceIp,
    source: hostPort(s.sourceIp, s.sourcePort),
  }));
  return { captures, withoutSyn: streams.length - opened.length, ...(truncated ? { truncated } : {}) };
}

export type CaptureOutcome = TrialOutcome | { ok: false; reason: 'obfs-mismatch'; detail: string; trials: 0; micros: 0 };

/**
 * Strips the obfs wrapper and authenticates. A wrapper cut short is `truncated`, like a short
 * read on a server; bytes that are not the wrapper asked for are `obfs-mismatch`.
 */
export async function authenticateCapture(auth: TrialAuthenticator, capture: Capture, obfs: ObfsChoice): Promise<CaptureOutcome> {
  let bytes: Uint8Array;
  try {
    bytes = stripObfs(capture.blob, obfs).bytes;
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    if (error.reason.startsWith('truncated')) return { ok: false, reason: 'truncated', bytes: capture.blob.length, trials: 0, micros: 0 };
    return { ok: false, reason: 'obfs-mismatch', detail: error.message, trials: 0, micros: 0 };
  }
  return auth.authenticate(bytes, capture.sourceIp);
}
