/**
 * Watches a file that holds a whole snapshot (users, rules): change notifications on its
 * directory (fast, and they survive an editor replacing the file) plus stat polling (for file
 * systems without notifications). A changed, valid file replaces the snapshot as a whole; a
 * broken one keeps the last good snapshot and is reported once per distinct content.
 */
import { createHash } from 'node:crypto';
import { watch, watchFile, unwatchFile, type FSWatcher, type Stats } from 'node:fs';
import { basename, dirname } from 'node:path';
import { describeFsError } from './errors.js';
import { FileReadError, readBoundedFile } from './files.js';

/** What every snapshot watcher takes beside its snapshot: where to log, and its timing. */
export interface WatchSettings {
  /** One line per event: a reload, or why a changed file was not taken. */
  log: (line: string) => void;
  /** Stat polling interval, the fallback when change notifications miss a rename; default 1000. */
  pollMs?: number;
  /** Wait this long after a change before reading, so a file written in pieces is read whole; default 50. */
  debounceMs?: number;
  /** A reload larger than this is refused (the last good snapshot stays); default 1 GiB. */
  maxBytes?: number;
}

export interface SnapshotWatcherOptions<T> extends WatchSettings {
  /** What the file is, for messages: "users file", "rules file". */
  what: string;
  /** What it holds, plural: "users", "rules". */
  noun: string;
  current: T;
  /** sha256 (hex) of the content `current` was read from. */
  digest: string;
  count: (snapshot: T) => number;
  /** Reads new content; throws (with a message naming file and line) when it is broken. */
  parse: (bytes: Buffer, digest: string) => { snapshot: T; warnings: string[] };
  onReload: (snapshot: T, warnings: string[]) => void;
  /** How a warning is logged; default as it is. */
  warning?: (text: string) => string;
}

export interface SnapshotWatcher {
  /** Reads the file now, as a change would; resolves when done. */
  check(): Promise<void>;
  close(): void;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function watchSnapshotFile<T>(path: string, options: SnapshotWatcherOptions<T>): SnapshotWatcher {
  let current = options.current;
  let digest = options.digest;
  let badDigest: string | undefined;
  /** Why the file could not be read last time: logged once per reason. */
  let unreadable: string | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const keeping = (): string => `keeping the last good ${options.noun} (${options.count(current)})`;

  const reload = async (): Promise<void> => {
    let bytes: Buffer;
    try {
      // Regular files only, bounded: a FIFO or /dev/zero in its place is refused, never read.
      bytes = await readBoundedFile(path, { maxBytes: options.maxBytes });
    } catch (error) {
      const why = error instanceof FileReadError ? error.why : describeFsError(error);
      if (!closed && unreadable !== why) options.log(`${options.what} ${path}: cannot read it (${why}); ${keeping()}`);
      unreadable = why;
      return;
    }
    unreadable = undefined;
    const next = sha256(bytes);
    if (closed || next === badDigest) return;
    if (next === digest) {
      if (badDigest !== undefined) options.log(`${options.what} ${path}: back to the ${options.noun} already loaded (${options.count(current)})`);
      badDigest = undefined;
      return;
    }
    try {
      const { snapshot, warnings } = options.parse(bytes, next);
      digest = next;
      badDigest = undefined;
      current = snapshot;
      options.log(`${options.what} ${path}: reloaded, ${options.count(snapshot)} ${options.noun}`);
      warnings.forEach((w) => options.log(options.warning ? options.warning(w) : w));
      options.onReload(snapshot, warnings);
    } catch (error) {
      badDigest = next;
      options.log(`${options.what} ${path}: not reloaded, ${keeping()}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  const check = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await reload();
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), options.debounceMs ?? 50);
  };

  const name = basename(path);
  let dirWatcher: FSWatcher | undefined;
  try {
    dirWatcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name) schedule();
    });
    dirWatcher.on('error', () => dirWatcher?.close());
  } catch {
    dirWatcher = undefined; // polling still works
  }
  const onStat = (now: Stats, before: Stats): void => {
    // ctime too: a chmod that makes an unreadable file readable changes nothing else.
    if (now.mtimeMs !== before.mtimeMs || now.ctimeMs !== before.ctimeMs || now.size !== before.size || now.ino !== before.ino) schedule();
  };
  watchFile(path, { persistent: false, interval: options.pollMs ?? 1000 }, onStat);

  return {
    check,
    close() {
      closed = true;
      clearTimeout(timer);
      dirWatcher?.close();
      unwatchFile(path, onStat);
    },
  };
}
