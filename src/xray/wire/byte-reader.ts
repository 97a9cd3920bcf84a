/**
 * Pull-style reading from a socket (or any stream of chunks): lines, exact counts, whatever has
 * arrived. The reply reader is written against this so it reads like Go's bufio-based parser:
 * it takes only the bytes it needs, and what it leaves stays for the next reply on the connection.
 */
import type { Duplex } from 'node:stream';

/** Bytes buffered before the socket is paused: reading never holds more than this unasked for. */
const HIGH_WATER = 256 * 1024;

export class UnexpectedEof extends Error {
  constructor() {
    super('unexpected EOF');
  }
}

export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered > HIGH_WATER) socket.pause();
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (error: Error) => {
      this.failure ??= error;
      this.notify();
    });
    socket.on('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  /** True when nothing is buffered and the peer has closed (an idle connection that died). */
  get closed(): boolean {
    return this.buffered === 0 && (this.ended || this.failure !== undefined);
  }

  get pending(): number {
    return this.buffered;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Waits for more bytes; false at a clean end of stream, throws the socket's error. */
  private async more(): Promise<boolean> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (this.ended) return false;
      const before = this.buffered;
      this.socket.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
      if (this.buffered > before) return true;
    }
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && n <= first.length) {
      if (n === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    const head = Buffer.concat(this.chunks);
    const out = head.subarray(0, n);
    const rest = head.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /**
   * One line without its LF and a CR before it (Go's textproto accepts bare LF). undefined at a
   * clean end before any byte of the line; throws UnexpectedEof for a line cut by the end.
   */
  async readLine(limit: number): Promise<string | undefined> {
    let searched = 0;
    for (;;) {
      const joined = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = joined.length > 0 ? [joined] : [];
      const lf = joined.indexOf(0x0a, searched);
      if (lf >= 0) {
        const line = this.take(lf + 1);
        const end = lf > 0 && line[lf - 1] === 0x0d ? lf - 1 : lf;
        return line.toString('latin1', 0, end);
      }
      if (joined.length > limit) throw new Error(`a line over ${limit} bytes`);
      searched = joined.length;
      if (!(await this.more())) {
        if (this.buffered === 0) return undefined;
        throw new UnexpectedEof();
      }
    }
  }

  /** Up to `max` bytes, at least one; undefined at a clean end of stream. */
  async readSome(max: number): Promise<Buffer | undefined> {
    if (this.buffered === 0 && !(await this.more())) return undefined;
    return this.take(Math.min(max, this.chunks[0]!.length));
  }

  /** Exactly n bytes, or UnexpectedEof. */
  async readExact(n: number): Promise<Buffer> {
    while (this.buffered < n) if (!(await this.more())) throw new UnexpectedEof();
    return this.take(n);
  }
}
