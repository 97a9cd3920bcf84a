/**
 * snell-serve's bound on trial authentication (not in OpenSnell, which scans every connection at
 * once): at most `maxRunning` scans at a time (--max-pending-auth), and at most `maxWaiting`
 * connections waiting for one, first come first served (--auth-queue); past both a connection is
 * closed as `busy`. Only scans take a slot: an IP-cache hit is one trial and never waits.
 */
import { availableParallelism } from 'node:os';

/**
 * Every scan of more than 16 users runs on all the pool's workers (one per core) and a worker
 * takes one scan at a time, so scans started beyond the core count do not finish sooner; they
 * only queue inside the workers, where nothing can drop them. Two per core keeps every worker fed
 * (the next scan is already posted while the main thread handles the last reply) and leaves the
 * rest in a queue that is ours to bound.
 */
export function defaultMaxPendingAuth(): number {
  return 2 * availableParallelism();
}

/**
 * Sixteen waiting connections per core: a cold scan of 10,000 users takes about 170 ms on two
 * cores (about 60,000 user-trials/s: README, Speed), so a full queue on such a node drains in about 6 s (4 running + 32 waiting),
 * inside a client's usual connect timeout, and scans get shorter as cores are added, as the queue
 * grows. A burst of new clients against a small users file (scans of a few ms) fits in it.
 */
export function defaultAuthQueue(): number {
  return 16 * availableParallelism();
}

/** A granted slot: call it once the scan is over. */
export type Release = () => void;

export class AuthLimiter {
  private running = 0;
  private readonly waiting: ((release: Release | 'gone') => void)[] = [];

  constructor(
    readonly maxRunning: number,
    readonly maxWaiting: number,
  ) {
    if (!Number.isInteger(maxRunning) || maxRunning < 1) throw new RangeError(`maxRunning must be a positive integer, got ${maxRunning}`);
    if (!Number.isInteger(maxWaiting) || maxWaiting < 0) throw new RangeError(`maxWaiting must be a non-negative integer, got ${maxWaiting}`);
  }

  /** Scans running now. */
  get runningCount(): number {
    return this.running;
  }

  /** Connections waiting for a scan slot now. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * A slot at once, or after the connections ahead of this one; `busy` when the queue is full;
   * `gone` when `signal` aborts first (the client left while it waited: its place is freed).
   */
  acquire(signal?: AbortSignal): Promise<Release | 'busy' | 'gone'> {
    if (signal?.aborted) return Promise.resolve('gone');
    if (this.running < this.maxRunning) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxWaiting) return Promise.resolve('busy');
    return new Promise((resolve) => {
      const grant = (release: Release | 'gone'): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(release);
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        grant('gone');
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  /** The slot passes to the first connection waiting, if any. */
  private releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next(this.releaser());
      else this.running--;
    };
  }
}
