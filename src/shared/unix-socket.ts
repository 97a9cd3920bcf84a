import net from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { describeFsError, InputError } from './errors.js';

/**
 * Before listening on a Unix socket path: a socket file left by a service that died is removed;
 * a live socket (one that accepts, even without answering) or any other file is refused.
 * `label` names the path in messages ("socket", "--unix-socket").
 */
export async function clearStaleSocket(path: string, label: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new InputError(`${label} ${path}: ${describeFsError(error)}`);
  }
  if (!isSocket) throw new InputError(`${label} ${path}: exists and is not a socket (not replaced)`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path, () => {
      probe.destroy();
      resolve(true);
    });
    probe.setTimeout(1000, () => {
      // Accepted by the kernel but never answered: someone holds it; do not steal it.
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });
  if (alive) throw new InputError(`${label} ${path}: another process is listening on it`);
  await unlink(path).catch(() => undefined);
}

/** sun_path holds 108 bytes with its NUL: Node silently shortens a longer path, to another file. */
export const MAX_SOCKET_PATH_BYTES = 107;

export function checkSocketPath(path: string, label: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) throw new InputError(`${label} ${path.slice(0, 40)}…: ${bytes} bytes, a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`);
}
