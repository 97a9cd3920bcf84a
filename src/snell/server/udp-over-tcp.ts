/**
 * UDP-over-TCP (docs/snell.md §6): after the `00` reply each frame from the client is one
 * datagram (wire/udp.ts); this sends them to their targets and frames what comes back. Targets
 * outside --allow-target are echoed under --echo, else dropped; UDP has no error reply.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { encodeServerDatagram, type UdpDatagram } from '../wire/udp.js';
import type { TargetPolicy } from './targets.js';

export class UdpForwarder {
  private socket: dgram.Socket | undefined;

  /** `send` frames a datagram for the client; false when the client is not keeping up. */
  constructor(private readonly targets: TargetPolicy, private readonly send: (plain: Uint8Array) => boolean) {}

  /** False when an echo found the client not keeping up (pause it until it drains). */
  forward({ host, port, payload }: UdpDatagram): boolean {
    if (!this.targets.allows(host, port)) {
      const echoable = this.targets.echo && port >= 1 && port <= 65535;
      return !echoable || this.send(encodeServerDatagram({ host: net.isIP(host) ? host : '127.0.0.1', port, payload }));
    }
    if (!this.socket) {
      // One socket per tunnel, of the first target's family.
      this.socket = dgram.createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
      this.socket.on('message', (message, info) => this.send(encodeServerDatagram({ host: info.address, port: info.port, payload: message })));
      this.socket.on('error', () => undefined);
    }
    try {
      this.socket.send(payload, port, host);
    } catch {
      // A datagram that cannot go is dropped, as UDP does.
    }
    return true;
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}
