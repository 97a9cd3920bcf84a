import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runLoad } from '../../src/load/engine.js';
import { summarize } from '../../src/load/summary.js';
import { type LoadOptions } from '../../src/load/run-types.js';
import type { LoadTarget } from '../../src/load/target.js';
import { XrayEventMix, type MixOp, type MixSettings } from '../../src/xray/load-mix.js';
import { EVENT_TYPES, type ConnectionFacts, type EventType } from '../../src/xray/wire/dialect.js';

function seeded(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

const facts = (i: number, users = 5): ConnectionFacts => ({
  credential: `user-${i % users}`, connectionId: `conn-${i}`, protocol: 'vless', sourceIp: '198.51.100.10', sourcePort: 40000 + i, localIp: '10.0.0.1', localPort: 443,
});

/** A backend that answers in 2 ms; authorization denied for user-4. Records every event per connection. */
function backend(): LoadTarget<MixOp> & { log: Map<string, EventType[]> } {
  const log = new Map<string, EventType[]>();
  return {
    log,
    failures: new Set(),
    open: async () => undefined,
    close: async () => undefined,
    send(op, done) {
      const events = log.get(op.facts.connectionId) ?? [];
      events.push(op.type);
      log.set(op.facts.connectionId, events);
      setTimeout(() => done(op.type === 'authorization' && op.facts.credential === 'user-4' ? 'policy-deny' : 'allow', op.type), 2);
    },
  };
}

const options: LoadOptions = { model: 'open', start: 10, durationMs: 60_000, warmupMs: 0, maxInflight: 1000, pipelining: 1, precise: false, drainMs: 1000 };
const settings: MixSettings = {
  arrivalRate: 10, initialSessions: 0, meanDurationS: 5, heartbeatS: 1, ttlS: 0, cache: true, kickOnDeny: true, events: EVENT_TYPES,
  factsFor: (i) => facts(i), random: seeded(42),
};

describe('the Xray event mix', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  it('sends each connection\'s events in Xray\'s order, at the rates docs/xray-extauth.md §2.7 predicts', async () => {
    const target = backend();
    const mix = new XrayEventMix(settings);
    const promise = runLoad(target, options, mix);
    await vi.advanceTimersByTimeAsync(63_000);
    const result = await promise;
    for (const events of target.log.values()) {
      expect(events[0]).toBe('authorization');
      if (events.length === 1) continue;
      expect(events[1]).toBe('connect');
      expect(events.slice(2, -1).every((e) => e === 'heartbeat')).toBe(true);
    }
    const denied = [...target.log].filter(([id]) => Number(id.slice(5)) % 5 === 4);
    expect(denied.every(([, events]) => events.length === 1)).toBe(true);
    const count = (kind: string): number => result.kinds.get(kind)?.response.totalCount ?? 0;
    const expected = mix.expectedRates(5, 1);
    // The target is what the mix scheduled, every event, not the arrival rate that labels the profile.
    const { targetRate } = summarize(result);
    expect(targetRate).toBeCloseTo(result.scheduled / 60, 1);
    expect(targetRate).toBeGreaterThan(3 * options.start);
    // 60 s of Poisson arrivals at 10/s: 600 +- 15 %; 4 in 5 connect; heartbeats ~ live/H.
    expect(count('authorization')).toBeGreaterThan(0.85 * expected.authorization * 60);
    expect(count('authorization')).toBeLessThan(1.15 * expected.authorization * 60);
    expect(count('connect') / count('authorization')).toBeCloseTo(0.8, 1);
    expect(count('heartbeat')).toBeGreaterThan(0.8 * 0.8 * expected.heartbeat * 50);
    expect(count('heartbeat')).toBeLessThan(1.2 * 0.8 * expected.heartbeat * 60);
  });

  it('with a cache (ttl), a repeat (credential, IP) goes straight to connect', async () => {
    const target = backend();
    const mix = new XrayEventMix({ ...settings, ttlS: 3600, factsFor: (i) => facts(i, 2) });
    const promise = runLoad(target, { ...options, durationMs: 10_000 }, mix);
    await vi.advanceTimersByTimeAsync(12_000);
    const result = await promise;
    expect(result.kinds.get('authorization')?.response.totalCount).toBe(2);
    expect(result.kinds.get('connect')!.response.totalCount).toBeGreaterThan(60);
  });

  it('live connections at the start send heartbeats spread over one period', async () => {
    const target = backend();
    const mix = new XrayEventMix({ ...settings, arrivalRate: 0, initialSessions: 300, meanDurationS: 1e6, heartbeatS: 2 });
    const promise = runLoad(target, { ...options, start: 0.001, durationMs: 4000, intervalMs: 500 }, mix);
    await vi.advanceTimersByTimeAsync(6000);
    const result = await promise;
    // 300 connections, one heartbeat each per 2 s, for 4 s; spread, not in one burst.
    expect(result.kinds.get('heartbeat')!.response.totalCount).toBe(600);
    expect(percentilesOf2(result.kinds.get('heartbeat')!.response)).toBeLessThan(50_000);
  });
});

describe('the Xray event mix, unit by unit', () => {
  it('sends no disconnect to a dialect without one (Hysteria 2), even for the connections live at the start', () => {
    const mix = new XrayEventMix({ ...settings, arrivalRate: 0, initialSessions: 20, meanDurationS: 0.001, events: ['authorization'], heartbeatS: 0 });
    expect(mix.peek()).toBe(Infinity);
  });

  it('a heartbeat the engine dropped comes back on the next tick', () => {
    const mix = new XrayEventMix({ ...settings, arrivalRate: 0, initialSessions: 1, meanDurationS: 1e6, heartbeatS: 10, random: () => 0.5 });
    const first = mix.peek();
    const op = mix.take();
    expect(op.type).toBe('heartbeat');
    // Only the disconnect, at the end of a long life, is left.
    expect(mix.peek()).toBeGreaterThan(first + 1e6);
    mix.dropped(op, first);
    expect(mix.peek()).toBeCloseTo(first + 10_000, 6);
  });

  it('after a slow heartbeat reply fires the buffered tick at once, then keeps to the ticker\'s grid (§2.7)', () => {
    const mix = new XrayEventMix({ ...settings, arrivalRate: 0, initialSessions: 1, meanDurationS: 1e6, heartbeatS: 10, random: () => 0.5 });
    const first = mix.peek();
    mix.completed(mix.take(), 'allow', first + 22_000);
    expect(mix.peek()).toBeCloseTo(first + 22_000, 6);
    mix.completed(mix.take(), 'allow', first + 22_001);
    expect(mix.peek()).toBeCloseTo(first + 30_000, 6);
  });

  it('a denied heartbeat deletes the (credential, IP) cache entry: the next connection asks again (§2.6)', () => {
    const secondConnection = (denyHeartbeat: boolean): string => {
      const mix = new XrayEventMix({ ...settings, arrivalRate: 1, meanDurationS: 100, heartbeatS: 0.1, ttlS: 3600, kickOnDeny: false, factsFor: (i) => facts(i, 1), random: () => 0.5 });
      const auth = mix.take();
      expect(auth.type).toBe('authorization');
      // Arrivals come every 693 ms (random 0.5 at 1/s), heartbeats every 100 ms from the allow.
      mix.completed(auth, 'allow', 700);
      for (let denied = false; ; ) {
        const at = mix.peek();
        const op = mix.take();
        if (op.session !== auth.session) return op.type;
        if (op.type !== 'heartbeat') continue;
        mix.completed(op, denyHeartbeat && !denied ? 'policy-deny' : 'allow', at + 1);
        denied = true;
      }
    };
    expect(secondConnection(false)).toBe('connect');
    expect(secondConnection(true)).toBe('authorization');
  });
});

function percentilesOf2(h: { getValueAtPercentile(p: number): number }): number {
  return h.getValueAtPercentile(99);
}
