/**
 * HTTP/1.1 read from a copy of a connection's bytes, for the tap: the bytes themselves are
 * forwarded untouched elsewhere (tap.ts), and this reads what they say. Requests are read as a
 * backend reads them; replies with the same code xray-sim reads them with (wire/go-reply.ts), so
 * the tap reaches the verdict Go would.
 */
import { PassThrough } from 'node:stream';
import { ByteReader, UnexpectedEof } from '../wire/byte-reader.js';
import { GoProtocolError, MAX_HEAD_BYTES, readReplyBody, readReplyHead, replyFraming, type ReplyHead } from '../wire/go-reply.js';
import { canonicalHeaderKey } from '../wire/go-request.js';

/** One direction of a connection, as a stream the readers below pull from. */
export class ByteCopy {
  private readonly stream = new PassThrough();
  readonly reader = new ByteReader(this.stream);
  private stopped = false;

  push(chunk: Buffer): void {
    if (!this.stopped) this.stream.write(chunk);
  }

  end(): void {
    if (!this.stream.writableEnded) this.stream.end();
  }

  /** Nothing more is read: later bytes are not kept. */
  stop(): void {
    this.stopped = true;
    this.end();
  }
}

export interface SeenRequest {
  method: string;
  target: string;
  /** As received: names in their case, in order. */
  headers: [string, string][];
  body: Buffer;
  /** The body was longer than the keep limit; `body` is its beginning. */
  truncated: boolean;
}

export interface SeenReply {
  head: ReplyHead;
  /** As received, names in their case (`head.headers` has Go's canonical names). */
  rawHeaders: [string, string][];
  body: Buffer;
  truncated: boolean;
}

/** Keeps the first `limit` bytes of a body that is read whole. */
async function keep(chunks: AsyncIterable<Buffer>, limit: number): Promise<{ body: Buffer; truncated: boolean }> {
  const kept: Buffer[] = [];
  let size = 0;
  let truncated = false;
  for await (const chunk of chunks) {
    if (size >= limit) {
      truncated = true;
      continue;
    }
    const part = chunk.subarray(0, limit - size);
    if (part.length < chunk.length) truncated = true;
    kept.push(Buffer.from(part));
    size += part.length;
  }
  return { body: Buffer.concat(kept, size), truncated };
}

/** The next request; undefined when the connection ended cleanly between requests. */
export async function readRequest(reader: ByteReader, keepLimit: number): Promise<SeenRequest | undefined> {
  const line = await reader.readLine(MAX_HEAD_BYTES);
  if (line === undefined) return undefined;
  const [method, target, proto] = line.split(' ');
  if (!method || !target || !proto?.startsWith('HTTP/1.')) throw new GoProtocolError(`not an HTTP/1.x request line: ${JSON.stringify(line.slice(0, 64))}`);
  const headers = await readHeaderLines(reader);
  // Only the framing headers need Go's canonical names here.
  const framingHeaders = headers.filter(([name]) => name.length === 14 || name.length === 17).map(([name, value]): [string, string] => [canonicalHeaderKey(name), value]);
  const head: ReplyHead = { proto, status: 200, headers: framingHeaders };
  // A request's body is framed as a reply's, except that no length means no body.
  const framing = replyFraming(head, method);
  const { body, truncated } = framing.kind === 'until-close' ? { body: Buffer.alloc(0), truncated: false } : await keep(readReplyBody(reader, framing), keepLimit);
  return { method, target, headers, body, truncated };
}

/**
 * The reply to a request made with `method`; 1xx interim replies are passed over as Go passes
 * over them. undefined when the connection ended before a byte of it.
 */
export async function readReply(reader: ByteReader, method: string, keepLimit: number): Promise<SeenReply | undefined> {
  for (;;) {
    const raw: [string, string][] = [];
    const head = await readReplyHead(reader, raw);
    if (!head) return undefined;
    if (head.status >= 100 && head.status < 200 && head.status !== 101) continue;
    const { body, truncated } = await keep(readReplyBody(reader, replyFraming(head, method)), keepLimit);
    return { head, rawHeaders: raw, body, truncated };
  }
}

async function readHeaderLines(reader: ByteReader): Promise<[string, string][]> {
  const headers: [string, string][] = [];
  let budget = MAX_HEAD_BYTES;
  for (;;) {
    const line = await reader.readLine(budget);
    if (line === undefined) throw new UnexpectedEof();
    if (line === '') return headers;
    budget -= line.length;
    const colon = line.indexOf(':');
    if (colon <= 0 || budget <= 0) throw new GoProtocolError(`malformed header line: ${line.slice(0, 64)}`);
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
}
