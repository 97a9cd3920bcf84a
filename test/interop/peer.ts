/** Drives test/interop/snell_peer.py, an independent Python implementation, one JSON line per request. */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PYTHON = process.env.AUTHKIT_PYTHON ?? '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./snell_peer.py', import.meta.url));

/** Whether Debian's python3-argon2 and python3-cryptography are installed; CI installs them. */
export function peerAvailable(): boolean {
  const probe = spawnSync(PYTHON, ['-c', 'import argon2, cryptography'], { encoding: 'utf8' });
  return probe.status === 0;
}

export class SnellPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: ((line: string) => void)[] = [];

  constructor() {
    this.child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout }).on('line', (line) => this.waiting.shift()?.(line));
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async call(request: Record<string, unknown>): Promise<any> {
    const line = await new Promise<string>((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(`${JSON.stringify(request)}\n`);
    });
    const reply = JSON.parse(line);
    if (reply.error) throw new Error(`peer ${request.op}: ${reply.error}`);
    return reply;
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
