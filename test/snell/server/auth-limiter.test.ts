import { describe, expect, it } from 'vitest';
import { AuthLimiter, defaultAuthQueue, defaultMaxPendingAuth } from '../../../src/snell/server/auth-limiter.js';
import { availableParallelism } from 'node:os';

describe('AuthLimiter (snell-serve --max-pending-auth, --auth-queue)', () => {
  it('grants up to the bound, queues up to the queue, then says busy; slots pass on first come, first served', async () => {
    const limiter = new AuthLimiter(1, 2);
    const first = await limiter.acquire();
    expect(typeof first).toBe('function');
    const order: string[] = [];
    const second = limiter.acquire().then((r) => (order.push('second'), r));
    const third = limiter.acquire().then((r) => (order.push('third'), r));
    expect(await limiter.acquire()).toBe('busy');
    expect([limiter.runningCount, limiter.waitingCount]).toEqual([1, 2]);
    (first as () => void)();
    (first as () => void)(); // a second call is a no-op
    const granted = await second;
    expect([limiter.runningCount, limiter.waitingCount]).toEqual([1, 1]);
    (granted as () => void)();
    ((await third) as () => void)();
    expect(order).toEqual(['second', 'third']);
    expect([limiter.runningCount, limiter.waitingCount]).toEqual([0, 0]);
  });

  it('a waiter whose signal aborts is "gone" and gives its place up', async () => {
    const limiter = new AuthLimiter(1, 1);
    const release = (await limiter.acquire()) as () => void;
    const leaving = new AbortController();
    const waiting = limiter.acquire(leaving.signal);
    expect(await limiter.acquire()).toBe('busy');
    leaving.abort();
    expect(await waiting).toBe('gone');
    expect(limiter.waitingCount).toBe(0);
    const next = limiter.acquire();
    release();
    expect(typeof (await next)).toBe('function');
    expect(await limiter.acquire(AbortSignal.abort())).toBe('gone');
  });

  it('defaults: 2 scans and 16 waiting per core; bad bounds are refused', () => {
    expect(defaultMaxPendingAuth()).toBe(2 * availableParallelism());
    expect(defaultAuthQueue()).toBe(16 * availableParallelism());
    expect(() => new AuthLimiter(0, 1)).toThrow(RangeError);
    expect(() => new AuthLimiter(1, -1)).toThrow(RangeError);
    expect(new AuthLimiter(1, 0).maxWaiting).toBe(0);
  });
});
