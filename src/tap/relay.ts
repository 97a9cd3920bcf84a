/**
 * The byte relay both taps stand on: each client connection gets its own upstream connection,
 * bytes go both ways untouched (pipe, with its backpressure), and each direction is also handed
 * to a watcher as it passes. The client's connection mirrors the upstream's: an upstream that
 * cannot be reached resets the client's connection, a close on one side closes the other, a
 * half-close is passed on as one. Nothing here waits for a watcher.
 */
import net from 'node:net';
import { describeListenAt, listenOn, type ListenAt } from '../shared/listen.js';
import { checkSocketPath, clearStaleSocket } from '../shared/unix-socket.js';

/** Where the upstream is: TCP or a Unix socket. */
export type UpstreamAt = { host: string; port: number } | { path: string };

export interface RelayedConnection {
  /** Bytes from the client (the proxy), as they pass. */
  onClientBytes(chunk: Buffer): void;
  /** Bytes from the upstream (the backend), as they pass. */
  onUpstreamBytes(chunk: Buffer): void;
  /** The client stopped sending: its FIN, or its connection closed (`reset`: by an error or a reset). */
  onClientEnd(reset: boolean): void;
  /** The same for the upstream: after a reset, a body read until close is not whole. */
  onUpstreamEnd(reset: boolean): void;
  /** Both sides are closed. */
  onClosed(): void;
  /** The tap is stopping: what is in flight is not the proxy's or the backend's doing. */
  onStop(): void;
}

export interface RelayOptions {
  listen: ListenAt;
  upstream: UpstreamAt;
  /** A watcher per connection, made once its upstream connection is up. */
  watch: (id: number) => RelayedConnection;
  /** The upstream could not be reached for a client: its connection was reset. */
  onUpstreamDown: (id: number, error: NodeJS.ErrnoException) => void;
}

export interface Relay {
  readonly where: string;
  readonly address: net.AddressInfo | string;
  /** Connections open now. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const watchers = new Set<RelayedConnection>();
  let nextId = 1;
  // Paused until the upstream answers: no byte is read from a client that cannot be relayed.
  // Half-open both ways: a FIN from one side is passed on (pipe), and the other side's reply still
  // comes back, as it would without the tap.
  const server = net.createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, (client) => {
    const id = nextId++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    const upstream = net.connect({ ...options.upstream, noDelay: true, allowHalfOpen: true } as net.NetConnectOpts);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    let relaying = false;
    upstream.once('error', (error: NodeJS.ErrnoException) => {
      if (relaying) return;
      options.onUpstreamDown(id, error);
      // As the network would answer the proxy without the tap: a reset, not a polite close.
      reset(client);
    });
    upstream.once('connect', () => {
      relaying = true;
      const watcher = options.watch(id);
      watchers.add(watcher);
      relay(client, upstream, watcher, () => watchers.delete(watcher));
    });
    // A client that leaves before the upstream answers takes its upstream attempt with it.
    client.once('close', () => {
      if (!relaying) upstream.destroy();
    });
  });
  if ('path' in options.listen) {
    // A socket file left by a tap that died is replaced; a live one or another file is refused.
    checkSocketPath(options.listen.path, '--listen');
    await clearStaleSocket(options.listen.path, '--listen');
  }
  await listenOn(server, options.listen);
  const address = server.address()!;
  return {
    // Where it listens as bound: port 0 names the port it got.
    where: typeof address === 'string' ? address : describeListenAt({ host: address.address, port: address.port }),
    address,
    get open() {
      return sockets.size;
    },
    // Resolves once every connection has closed, so no watcher reports after the tap's totals.
    close: async () => {
      for (const watcher of watchers) watcher.onStop();
      const closed = [...sockets].map((socket) => new Promise<void>((resolve) => (socket.destroyed && socket.closed ? resolve() : socket.once('close', () => resolve()))));
      const listening = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await Promise.all([listening, ...closed]);
    },
  };
}

/** After one side closes, how long the other may take to finish sending what it has. */
const CLOSE_GRACE_MS = 5000;

function relay(client: net.Socket, upstream: net.Socket, watcher: RelayedConnection, done: () => void): void {
  upstream.on('error', () => undefined);
  // pipe passes a half-close on (the source's end ends the destination's writing side). Its
  // listeners come first, so a chunk is written on before the watcher reads its copy.
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('data', (chunk: Buffer) => watcher.onClientBytes(chunk));
  upstream.on('data', (chunk: Buffer) => watcher.onUpstreamBytes(chunk));
  client.once('end', () => watcher.onClientEnd(false));
  upstream.once('end', () => watcher.onUpstreamEnd(false));
  let closed = 0;
  const onClose = (other: net.Socket, ended: (reset: boolean) => void) => (hadError: boolean): void => {
    ended(hadError);
    // A reset is passed on as a reset; a clean close lets the other side flush, then closes it.
    if (hadError) reset(other);
    else if (!other.destroyed) {
      other.end();
      setTimeout(() => other.destroy(), CLOSE_GRACE_MS).unref();
    }
    if (++closed === 2) {
      watcher.onClosed();
      done();
    }
  };
  client.once('close', onClose(upstream, (reset) => watcher.onClientEnd(reset)));
  upstream.once('close', onClose(client, (reset) => watcher.onUpstreamEnd(reset)));
  client.resume();
}

/** A TCP reset where there is one (a Unix socket has none: it is closed). */
function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  if (typeof socket.remotePort === 'number' || socket.localPort !== undefined) socket.resetAndDestroy();
  else socket.destroy();
}
