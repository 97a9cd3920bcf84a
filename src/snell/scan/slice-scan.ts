/**
 * One slice of a scan (users start..end-1 in file order), run in steps so that a scan worker
 * can take turns between the slices it holds, as Go's scheduler runs OpenSnell's goroutines of
 * concurrent connections side by side. Run one after the other instead, the two halves of a
 * scan drift apart under a queue of scans: one worker finishes its half of a connection while
 * the other is still on an older one, and the half where the user is not gets scanned whole
 * (up to half as many trials again per connection, measured at 10,000 users).
 */
import { KDF_OUTPUT_BYTES, type KdfBackend } from '../wire/kdf.js';
import type { UserStore } from '../user-store.js';
import { gcmFirstKeystreamWord, matchesLegacy, matchesV4, type FirstBytes, type ScanTest, type SliceResult } from './trial-match.js';
import { monotonicMs } from '../../shared/clock.js';

export class SliceScan {
  private next: number;
  private trials = 0;
  /**
   * The derivations of the misses and their first AES keystream words, for the legacy test:
   * 36 bytes a user in two flat arrays, no second Argon2id.
   */
  private readonly kept: { keys: Uint8Array; keystreams: Int32Array; count: number } | undefined;

  constructor(
    private readonly kdf: KdfBackend,
    private readonly store: UserStore,
    private readonly first: FirstBytes,
    test: ScanTest,
    private readonly start: number,
    private readonly end: number,
    /** Set by whichever worker of the scan matches; the others stop at their next user. */
    private readonly stop?: Int32Array,
  ) {
    this.next = start;
    // Small at first and grown as users are tried: a scan that matches early, or a slice of a
    // million users, should not zero 36 bytes for every user of the slice up front.
    const capacity = Math.min(end - start, 1024);
    this.kept = test === 'v4-then-legacy' ? { keys: new Uint8Array(KDF_OUTPUT_BYTES * capacity), keystreams: new Int32Array(capacity), count: 0 } : undefined;
  }

  /** Tries up to `users` more users; the result once the slice is over, undefined while it is not. */
  async step(users: number): Promise<SliceResult | undefined> {
    const { kdf, store, first, stop, kept } = this;
    for (const last = Math.min(this.end, this.next + users); this.next < last; ) {
      if (stop && Atomics.load(stop, 0) !== 0) break;
      const i = this.next++;
      const psk = store.psk(i);
      // The synchronous call where there is one: an await per user costs more than the open.
      const out = kdf.deriveSync?.(psk, first.salt) ?? (await kdf.derive(psk, first.salt));
      this.trials++;
      const keystream = gcmFirstKeystreamWord(out);
      if (matchesV4(out, first, keystream)) {
        if (stop) Atomics.store(stop, 0, 1);
        return { index: i, kind: 'v4', trials: this.trials, derived: out, v4EndedAt: monotonicMs() };
      }
      if (kept) {
        if (kept.count === kept.keystreams.length) this.growKept(kept);
        kept.keys.set(out, KDF_OUTPUT_BYTES * kept.count);
        kept.keystreams[kept.count++] = keystream;
      }
    }
    const stopped = stop !== undefined && Atomics.load(stop, 0) !== 0;
    if (this.next < this.end && !stopped) return undefined;
    return this.finish(stopped);
  }

  private growKept(kept: NonNullable<SliceScan['kept']>): void {
    const capacity = Math.min(this.end - this.start, 2 * kept.keystreams.length);
    const keys = new Uint8Array(KDF_OUTPUT_BYTES * capacity);
    keys.set(kept.keys);
    const keystreams = new Int32Array(capacity);
    keystreams.set(kept.keystreams);
    kept.keys = keys;
    kept.keystreams = keystreams;
  }

  /** The slice's result; after a miss, the legacy test on the kept derivations. */
  private finish(stopped: boolean): SliceResult {
    const v4EndedAt = monotonicMs();
    const { kept, first } = this;
    // Another worker matched: the slice was not scanned to its end, and no diagnosis is wanted.
    if (!kept || stopped) return { index: -1, trials: this.trials, v4EndedAt };
    for (let j = 0; j < kept.count; j++) {
      const at = KDF_OUTPUT_BYTES * j;
      const kind = matchesLegacy(kept.keys, first, kept.keystreams[j], at);
      if (kind) return { index: -1, trials: this.trials, v4EndedAt, legacy: { index: this.start + j, kind, derived: kept.keys.slice(at, at + KDF_OUTPUT_BYTES) } };
    }
    return { index: -1, trials: this.trials, v4EndedAt };
  }
}

/** A slice run to its end at once: the serial path on the main thread. */
export async function scanSlice(
  kdf: KdfBackend, store: UserStore, first: FirstBytes, test: ScanTest, start: number, end: number, stop?: Int32Array,
): Promise<SliceResult> {
  const scan = new SliceScan(kdf, store, first, test, start, end, stop);
  for (;;) {
    const result = await scan.step(end - start);
    if (result) return result;
  }
}
