/**
 * One CONNECT or CONNECT-v2 request on an authenticated connection (docs/snell.md §5-§6; the
 * connection's request loop is tunnel.ts): the target checked against --allow-target and the
 * authorize hook, dialled or echoed (upstream.ts), the lazy `00` reply sent with the first
 * upstream bytes. CONNECT ends with the connection; CONNECT-v2 sends a zero chunk when the
 * target is done and, once the client's zero chunk has come too, hands the stream back for the
 * next request, nonces continuing. A failed dial is an error reply carrying the errno.
 */
import net from 'node:net';
import { encodeReply } from '../wire/reply.js';
import { DialledTarget, EchoUpstream, type Upstream } from './upstream.js';
import { askAuthorizeHook } from './authorize-hook.js';
import type { TunnelResult, TunnelSettings } from './tunnel-settings.js';
import { concatBytes } from '../../shared/bytes.js';

/** What a request needs from the connection it runs on. */
export interface ClientStream {
  readonly settings: TunnelSettings;
  readonly user: string;
  readonly remote: string;
  /** The connection's result: a request counts its bytes and names its outcome there. */
  readonly result: TunnelResult;
  /** Whether the client's FIN has come: OpenSnell's relay has no half-close, so it ends the connection. */
  clientEnded(): boolean;
  /** Seals a payload to the client; false when the client is not keeping up. */
  send(plain: Uint8Array): boolean;
  pause(): void;
  resume(): void;
  close(outcome: string, error?: boolean): void;
  /** This request is over on a reused stream: read the next one. */
  nextRequest(): void;
}

/** `connecting`: the hook and the dial; `tunnel`: bytes flow; `draining`: ours is done, the client's zero chunk is awaited. */
type State = 'connecting' | 'tunnel' | 'draining' | 'done';

export class TcpTunnel {
  private state: State = 'connecting';
  private upstream: Upstream | undefined;
  /** The target being dialled or in use: the only one whose events count. */
  private current: DialledTarget | undefined;
  /** The lazy `00` has gone out. */
  private replied = false;
  /** The client's zero chunk has come: its side of this request is done. */
  private clientDone = false;
  /** Bytes the client sent with or after the request while the target was being dialled. */
  private pendingEarly: Uint8Array[];

  constructor(private readonly client: ClientStream, private readonly reuse: boolean, early: Uint8Array) {
    this.pendingEarly = early.length > 0 ? [early] : [];
  }

  /** A client's FIN waits while the request is being dialled: it finishes first. */
  get connecting(): boolean {
    return this.state === 'connecting';
  }

  start(host: string, port: number, target: string): void {
    // Nothing more is read from the client until the target is there (bounded memory).
    this.client.pause();
    const { targets } = this.client.settings;
    const allowed = targets.allows(host, port);
    if (!allowed && !targets.echo) {
      this.fail(0, `target ${target} is not allowed by snell-serve (--allow-target, --echo)`, 'target refused');
      return;
    }
    void this.authorize(target).then((refusal) => {
      if (this.state !== 'connecting') return;
      if (refusal) {
        this.fail(0, refusal, 'refused by --authorize-url');
        return;
      }
      if (allowed) this.dial(host, port, target);
      else this.open(new EchoUpstream((bytes) => this.upstreamData(bytes), () => this.upstreamEnd(), () => this.client.resume()));
    });
  }

  payload(p: Uint8Array): void {
    switch (this.state) {
      case 'connecting':
        if (p.length === 0) this.clientDone = true;
        else this.pendingEarly.push(p);
        return;
      case 'tunnel':
        if (p.length === 0) {
          this.clientDone = true;
          if (!this.reuse) this.client.close('client ended');
          else this.upstream?.end();
          return;
        }
        this.client.result.bytesIn += p.length;
        if (!this.upstream!.write(p)) this.client.pause();
        return;
      case 'draining':
        if (p.length === 0) this.finish();
        return;
      default:
    }
  }

  /** The client is not keeping up: the upstream waits until it drains. */
  pauseUpstream(): void {
    this.upstream?.pause();
  }

  resumeUpstream(): void {
    this.upstream?.resume();
  }

  /** The connection is closing: so does the target. */
  destroy(): void {
    this.state = 'done';
    this.upstream?.destroy();
    this.current?.destroy();
  }

  /** The OnAuthorize hook (docs/snell.md §9 step 9): a refusal becomes an error reply. */
  private authorize(target: string): Promise<string | undefined> {
    const { authorizeUrl, log } = this.client.settings;
    if (!authorizeUrl) return Promise.resolve(undefined);
    return askAuthorizeHook(authorizeUrl, { user: this.client.user, remote: this.client.remote, target }, log);
  }

  private dial(host: string, port: number, target: string): void {
    const { ipv6, idleTimeoutMs } = this.client.settings;
    if (!ipv6 && net.isIP(host) === 6) {
      // Go's resolver turns the address down before any dial (errNoSuitableAddress).
      this.fail(0, `dial tcp4: address ${host}: no suitable address found`, 'connect failed (IPv6 off)');
      return;
    }
    this.current = new DialledTarget({ host, port, target, ipv6, idleTimeoutMs }, {
      connected: (upstream) => this.open(upstream),
      failed: (code, message, outcome) => this.fail(code, message, outcome),
      broken: (outcome) => this.client.close(outcome, true),
      data: (bytes) => this.upstreamData(bytes),
      end: () => this.upstreamEnd(),
      drain: () => this.client.resume(),
    });
  }

  /** A target that is done may still say something: it no longer counts. */
  private forgetTarget(): void {
    this.current?.forget();
    this.current = undefined;
  }

  private open(upstream: Upstream): void {
    if (this.state !== 'connecting') {
      upstream.destroy();
      return;
    }
    this.upstream = upstream;
    this.state = 'tunnel';
    this.client.result.outcome = 'tunnel';
    this.client.resume();
    for (const bytes of this.pendingEarly) {
      this.client.result.bytesIn += bytes.length;
      upstream.write(bytes);
    }
    this.pendingEarly = [];
    if (this.client.clientEnded()) this.client.close('client ended');
    else if (this.clientDone) {
      if (this.reuse) upstream.end();
      else this.client.close('client ended');
    }
  }

  /** The lazy reply: `00` goes out with the first upstream bytes. */
  private upstreamData(bytes: Uint8Array): void {
    if (this.state !== 'tunnel') return;
    if (!this.replied) {
      this.replied = true;
      this.client.send(concatBytes(Uint8Array.of(0x00), bytes));
    } else {
      this.client.send(bytes);
    }
  }

  /** Upstream closing with no data still gets its lone `00`, then a zero chunk, as OpenSnell (§6). */
  private upstreamEnd(): void {
    if (this.state !== 'tunnel') return;
    if (!this.replied) {
      this.replied = true;
      this.client.send(Uint8Array.of(0x00));
    }
    this.upstream = undefined;
    this.forgetTarget();
    // A client paused behind a slow upstream must be heard again: its zero chunk comes next.
    this.client.resume();
    if (!this.reuse) {
      this.client.send(new Uint8Array(0));
      this.client.close('upstream ended');
      return;
    }
    // CONNECT-v2: our zero chunk ends this request; the client's (seen or awaited) ends theirs.
    this.client.send(new Uint8Array(0));
    if (this.clientDone) this.finish();
    else this.state = 'draining';
  }

  /** An error reply; on a reused stream OpenSnell then reads the next request at once. */
  private fail(code: number, message: string, outcome: string): void {
    this.client.result.outcome = outcome;
    this.client.result.error = true;
    this.client.send(encodeReply({ kind: 'error', code, message }));
    this.pendingEarly = [];
    this.forgetTarget();
    if (this.reuse) this.finish();
    else this.client.close(outcome, true);
  }

  /** CONNECT-v2: both sides are done with this request; the stream goes on to the next. */
  private finish(): void {
    this.state = 'done';
    this.client.nextRequest();
  }
}
