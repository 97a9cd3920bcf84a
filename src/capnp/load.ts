/**
 * Proksi external_auth as a load target: check() calls on one or more connections, as Proksi
 * makes them, each reported by the decision's action or by how the call failed. A connection
 * that drops is reopened (one attempt at a time); calls meanwhile fail as `disconnected`.
 */
import { AuthServiceClient, CallError } from './client.js';
import type { AuthRequest } from './wire/schema.js';
import type { LoadTarget } from '../load/target.js';

export const CAPNP_FAILURES: ReadonlySet<string> = new Set(['unknown-action', 'timeout', 'exception', 'disconnected', 'protocol', 'aborted', 'connect']);
/** The three decisions, then the failures. */
export const CAPNP_CLASSES: readonly string[] = ['pass', 'block', 'redirect', ...CAPNP_FAILURES];

export interface CapnpLoadSettings {
  socketPath: string;
  request: AuthRequest;
  timeoutMs: number;
  connections: number;
}

/** A request of its own (a replay's), or undefined: the run's one request. */
export class CapnpLoadTarget implements LoadTarget<AuthRequest | undefined> {
  readonly failures = CAPNP_FAILURES;
  readonly classes = CAPNP_CLASSES;
  private readonly clients: (AuthServiceClient | undefined)[] = [];
  private readonly reconnecting = new Set<number>();
  private next = 0;

  constructor(private readonly settings: CapnpLoadSettings) {}

  async open(): Promise<void> {
    for (let i = 0; i < this.settings.connections; i++) {
      try {
        this.clients[i] = await AuthServiceClient.connect(this.settings.socketPath);
      } catch (error) {
        await this.close();
        throw new Error((error as Error).message);
      }
    }
    // One call proves the service answers (a bootstrap that fails shows here, not as load).
    try {
      await this.clients[0]!.check(this.settings.request, { timeoutMs: Math.max(this.settings.timeoutMs, 1000) });
    } catch (error) {
      await this.close();
      throw new Error(`the service does not answer check(): ${(error as Error).message}`);
    }
  }

  send(op: AuthRequest | undefined, done: (outcome: string) => void): void {
    const index = this.next;
    this.next = (this.next + 1) % this.settings.connections;
    const client = this.clients[index];
    if (!client || client.closed) {
      this.reconnect(index);
      done('disconnected');
      return;
    }
    client.check(op ?? this.settings.request, { timeoutMs: this.settings.timeoutMs }).then(
      (reply) => done(typeof reply.decision.action === 'number' ? 'unknown-action' : reply.decision.action),
      (error: unknown) => done(error instanceof CallError ? error.kind : 'protocol'),
    );
  }

  async close(): Promise<void> {
    for (const client of this.clients) client?.close();
    this.clients.length = 0;
  }

  private reconnect(index: number): void {
    if (this.reconnecting.has(index)) return;
    this.reconnecting.add(index);
    this.clients[index] = undefined;
    AuthServiceClient.connect(this.settings.socketPath, 1000).then(
      (client) => {
        this.clients[index] = client;
        this.reconnecting.delete(index);
      },
      // Pace the attempts: a dead service must not turn the run into a connect storm.
      () => setTimeout(() => this.reconnecting.delete(index), 100).unref(),
    );
  }
}
