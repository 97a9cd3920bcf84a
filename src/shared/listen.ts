/**
 * Listening, written once for the three simulators: where a server may listen (`HOST:PORT` or a
 * Unix socket path), and why it could not, in words a user can act on.
 */
import { existsSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname } from 'node:path';
import { InputError } from './errors.js';
import { hostPort } from './ip.js';

/** `127.0.0.1:8080`, `localhost:0`, `[::1]:8080` (port 0: any free port). */
export function parseHostPort(text: string, flag = '--listen'): { host: string; port: number } {
  const match = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^\s:[\]]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new InputError(`${flag}: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got "${text}"`);
  return { host: match[1]!, port };
}

export type ListenAt = { path: string } | { host: string; port: number; backlog?: number };

/** Where, as a user wrote it: `host:port` (IPv6 in brackets) or the socket path. */
export function describeListenAt(at: ListenAt): string {
  return 'path' in at ? at.path : hostPort(at.host, at.port);
}

/**
 * Starts `server` listening; a failure to listen becomes one InputError line. Once listening, errors
 * belong to the connections, so the server itself ignores them.
 */
export async function listenOn(server: Server, at: ListenAt): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => reject(listenError(error, at));
    server.once('error', onError);
    const ready = (): void => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in at) server.listen(at.path, ready);
    else server.listen({ port: at.port, host: at.host, backlog: at.backlog }, ready);
  });
  server.on('error', () => {});
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'not an address of this host',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ENOENT: 'no such directory',
  ENOTDIR: 'a parent is not a directory',
  EINVAL: 'not a valid socket path (too long?)',
};

function listenError(error: NodeJS.ErrnoException, at: ListenAt): Error {
  // libuv reports a socket in a missing directory as EACCES.
  const code = 'path' in at && error.code === 'EACCES' && !existsSync(dirname(at.path)) ? 'ENOENT' : error.code;
  const reason = code && REASONS[code];
  return reason ? new InputError(`cannot listen on ${describeListenAt(at)}: ${reason}`) : error;
}
