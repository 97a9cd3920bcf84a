/**
 * Reading a request body and writing a reply, for every route of `xray-backend`: the body is read
 * up to a limit (then reading stops and the 413 closes the connection), and a reply is written at
 * most once, never to a client that has gone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a request turned out to be, for its log line; routes fill it in as they learn more. */
export interface RequestLog {
  type: string;
  credential?: string;
  note?: string;
}

export type BodyResult = Buffer | 'too-large' | 'aborted';

/** The body, or why there is none. Over the limit, reading stops (the 413 closes the connection). */
export function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve('too-large');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyResult): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish('too-large');
      } else {
        chunks.push(chunk);
      }
    };
    req.on('data', onData);
    req.on('end', () => finish(Buffer.concat(chunks)));
    req.on('error', () => finish('aborted'));
    req.on('close', () => finish('aborted'));
  });
}

/** The 413 for a body over `limit` bytes: its connection is closed, since the body was left unread. */
export function sendTooLarge(res: ServerResponse, limit: number): void {
  send(res, 413, { error: `request body over ${limit} bytes` }, { connection: 'close' });
}

/** A reply: JSON unless `body` is already text, nothing at all when undefined. */
export function send(res: ServerResponse, status: number, body?: unknown, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status, extra).end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
  if (extra.connection === 'close') {
    // Reading has stopped: give the client a moment to read the reply, then drop the connection.
    res.once('finish', () => setTimeout(() => res.socket?.destroy(), 1000).unref());
  }
}
