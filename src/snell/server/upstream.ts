/**
 * Where a CONNECT tunnel's bytes go (tunnel.ts): a dialled target, with OpenSnell's words for a
 * dial that fails (docs/snell.md §6: the errno and Go's message go back in an error reply), or
 * `--echo`'s in-process echo.
 */
import net from 'node:net';
import { constants } from 'node:os';

export interface Upstream {
  /** False when the upstream is not keeping up (the client is paused until it drains). */
  write(bytes: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  pause(): void;
  resume(): void;
}

/** What a dialled target tells its tunnel. */
export interface DialEvents {
  connected(upstream: Upstream): void;
  /** The dial failed: an error reply with this errno and message (docs/snell.md §6). */
  failed(code: number, message: string, outcome: string): void;
  /** A connected target went idle or failed: the tunnel closes. */
  broken(outcome: string): void;
  data(bytes: Uint8Array): void;
  end(): void;
  drain(): void;
}

export interface DialOptions {
  host: string;
  port: number;
  /** HOST:PORT as the messages name it. */
  target: string;
  /** false: IPv4 only, and say so as Go does ("dial tcp4 ..."). */
  ipv6: boolean;
  idleTimeoutMs: number;
}

/** A target that does not answer the dial within this long gets an error reply (errno 110, ETIMEDOUT). */
const DIAL_TIMEOUT_MS = 10_000;

/**
 * One dial of a target. A reused stream moves on to its next request while an old target may
 * still say something: once `forget` is called its events no longer reach the tunnel.
 */
export class DialledTarget implements Upstream {
  private readonly socket: net.Socket;
  private connected = false;
  private current = true;

  constructor(options: DialOptions, events: DialEvents) {
    const { host, port, target } = options;
    const network = options.ipv6 ? 'tcp' : 'tcp4';
    const socket = (this.socket = net.connect({ host, port, family: options.ipv6 ? 0 : 4 }));
    socket.setNoDelay(true);
    socket.setTimeout(DIAL_TIMEOUT_MS, () => {
      if (this.connected) {
        if (this.current) events.broken('upstream idle');
        socket.destroy();
        return;
      }
      socket.destroy();
      if (this.current) events.failed(110, `dial ${network} ${target}: i/o timeout`, 'connect failed (timeout)');
    });
    socket.once('connect', () => {
      this.connected = true;
      socket.setTimeout(options.idleTimeoutMs);
      if (this.current) events.connected(this);
      else socket.destroy();
    });
    socket.on('data', (bytes: Buffer) => this.current && events.data(bytes));
    socket.on('end', () => this.current && events.end());
    socket.on('drain', () => this.current && events.drain());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!this.current) return;
      if (this.connected) {
        events.broken(`upstream error (${error.code ?? error.message})`);
        return;
      }
      const errno = error.code ? (constants.errno as Record<string, number>)[error.code] ?? 0 : 0;
      events.failed(errno & 0xff, `dial ${network} ${target}: connect: ${goErrorText(error)}`, `connect failed (${error.code ?? error.message})`);
    });
  }

  /** This target's events stop counting: the tunnel has moved on. */
  forget(): void {
    this.current = false;
  }

  write(bytes: Uint8Array): boolean {
    return this.socket.write(bytes);
  }
  end(): void {
    this.socket.end();
  }
  destroy(): void {
    this.socket.destroy();
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
}

/** Go's net package's words for the errors a dial meets, as OpenSnell's error replies carry them. */
function goErrorText(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENETUNREACH':
      return 'network is unreachable';
    case 'ENOTFOUND':
      return 'no such host';
    default:
      return error.code ?? error.message;
  }
}

/** Echoed bytes waiting for a client that does not read: above this the client is paused. */
const ECHO_HIGH_WATER = 1 << 20;

/** `--echo`: whatever the client sends comes back; a half-close ends it. */
export class EchoUpstream implements Upstream {
  private paused = false;
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private full = false;
  private ended = false;
  private dead = false;
  constructor(private readonly onData: (bytes: Uint8Array) => void, private readonly onEnd: () => void, private readonly onDrain: () => void) {}
  write(bytes: Uint8Array): boolean {
    if (this.dead) return false;
    this.queued.push(Uint8Array.from(bytes));
    this.queuedBytes += bytes.length;
    setImmediate(() => this.flush());
    this.full = this.queuedBytes > ECHO_HIGH_WATER;
    return !this.full;
  }
  end(): void {
    this.ended = true;
    setImmediate(() => this.flush());
  }
  destroy(): void {
    this.dead = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    setImmediate(() => this.flush());
  }
  private flush(): void {
    while (!this.dead && !this.paused && this.queued.length > 0) {
      const bytes = this.queued.shift()!;
      this.queuedBytes -= bytes.length;
      this.onData(bytes);
    }
    if (this.full && this.queuedBytes <= ECHO_HIGH_WATER / 2) {
      this.full = false;
      this.onDrain();
    }
    if (!this.dead && this.ended && this.queued.length === 0) {
      this.dead = true;
      this.onEnd();
    }
  }
}
