/**
 * A Snell server as a load target: every operation is a new connection that authenticates (a
 * probe: random salt, first packet, reply), as new clients arriving at a node do. With a bad
 * ratio a share of them use a PSK no user has, so the server's no-match cost and its 50 ms
 * delay show under load, reported as their own kind.
 */
import { randomBytes } from 'node:crypto';
import { probeSnell } from './client.js';
import { type ProbeOptions } from './client/probe-types.js';
import type { LoadTarget } from '../load/target.js';

export const SNELL_FAILURES: ReadonlySet<string> = new Set(['rejected', 'timeout', 'connect-failed', 'authenticated-bad-psk']);
/** A probe's outcomes, and with --bad-psk-ratio what a wrong PSK got. */
export const SNELL_CLASSES: readonly string[] = ['authenticated', 'rejected', 'timeout', 'connect-failed', 'authenticated-bad-psk', 'rejected-bad-psk'];

export interface SnellLoadSettings {
  probe: Omit<ProbeOptions, 'psk'>;
  /** PSKs to spread the connections over (a users file), or one. */
  psks: string[];
  /** Share of connections (0..1) made with a PSK no user has. */
  badRatio: number;
  random?: () => number;
}

export class SnellLoadTarget implements LoadTarget<undefined> {
  readonly failures = SNELL_FAILURES;
  readonly classes = SNELL_CLASSES;
  private next = 0;
  private readonly random: () => number;

  constructor(private readonly settings: SnellLoadSettings) {
    this.random = settings.random ?? Math.random;
  }

  async open(): Promise<void> {
    const result = await probeSnell({ ...this.settings.probe, psk: this.settings.psks[0]! });
    if (result.outcome === 'connect-failed') throw new Error(`cannot connect to ${this.settings.probe.host}:${this.settings.probe.port}: ${result.note ?? 'connection failed'}`);
  }

  async close(): Promise<void> {}

  send(_op: undefined, done: (outcome: string, kind?: string) => void): void {
    const bad = this.settings.badRatio > 0 && this.random() < this.settings.badRatio;
    const psk = bad ? `authkit-bad-${randomBytes(12).toString('base64')}` : this.settings.psks[this.next++ % this.settings.psks.length]!;
    probeSnell({ ...this.settings.probe, psk }).then(
      (result) => {
        if (!bad) done(result.outcome, this.settings.badRatio > 0 ? 'good PSK' : undefined);
        else done(result.outcome === 'authenticated' ? 'authenticated-bad-psk' : result.outcome === 'rejected' ? 'rejected-bad-psk' : result.outcome, 'bad PSK');
      },
      () => done('connect-failed', bad ? 'bad PSK' : undefined),
    );
  }
}
