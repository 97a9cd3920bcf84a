/**
 * Fault injection for testing proxies against a misbehaving backend: latency on every event reply,
 * and a share of events answered 503 or with a body cut mid-JSON instead of being acted on.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { InputError } from '../../shared/errors.js';
import type { RequestStats } from './stats.js';

export interface FaultOptions {
  /** Every event reply waits a uniformly random time in [min, max] ms. */
  latencyMs?: readonly [number, number];
  /** Share of events (0..1) answered 503 without being acted on. */
  errorRate?: number;
  /** Share of events (0..1) answered 200 with a body cut mid-JSON, without being acted on. */
  garbageRate?: number;
  /** Math.random unless a test needs otherwise. */
  random?: () => number;
}

export function checkFaults({ latencyMs, errorRate = 0, garbageRate = 0 }: FaultOptions): void {
  if (latencyMs && !(latencyMs[0] >= 0 && latencyMs[1] >= latencyMs[0] && Number.isFinite(latencyMs[1]))) throw new InputError('latency: expected 0 <= min <= max');
  for (const [name, rate] of [['error rate', errorRate], ['garbage rate', garbageRate]] as const) {
    if (!(rate >= 0 && rate <= 1)) throw new InputError(`${name}: expected a share from 0 to 1`);
  }
  if (errorRate + garbageRate > 1) throw new InputError('error rate + garbage rate: at most 1 together');
}

export class FaultInjector {
  private readonly random: () => number;

  /** `closing`: once aborted, replies are no longer delayed, so the server can close. */
  constructor(
    private readonly options: FaultOptions,
    private readonly stats: RequestStats,
    private readonly closing: AbortSignal,
  ) {
    this.random = options.random ?? Math.random;
  }

  /** Waits the injected latency, if any, before an event reply. */
  async delayReply(): Promise<void> {
    const [min = 0, max = min] = this.options.latencyMs ?? [];
    if (max <= 0) return;
    this.stats.injected.delayed++;
    try {
      await delay(min + this.random() * (max - min), undefined, { signal: this.closing });
    } catch {
      // closing: answer at once
    }
  }

  /** The fault, if any, this event gets instead of being acted on (one roll per event). */
  roll(): 'error' | 'garbage' | undefined {
    const roll = this.random();
    const errorRate = this.options.errorRate ?? 0;
    if (roll < errorRate) {
      this.stats.injected.error++;
      return 'error';
    }
    if (roll < errorRate + (this.options.garbageRate ?? 0)) {
      this.stats.injected.garbage++;
      return 'garbage';
    }
    return undefined;
  }
}
