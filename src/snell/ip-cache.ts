/**
 * OpenSnell's client-IP -> user-index cache: 4096 entries, and when full an arbitrary entry is
 * evicted (its lru.go says "not strictly an LRU"). Here the arbitrary entry is the oldest
 * inserted, which is one of the choices Go's map could make and keeps runs reproducible.
 */
export const IP_CACHE_CAPACITY = 4096;

/** OpenSnell's extractIP: the host part, with IPv4-mapped IPv6 folded to IPv4. */
export function normalizeSourceIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip.toLowerCase();
}

export class IpCache {
  private readonly entries = new Map<string, number>();
  constructor(readonly capacity = IP_CACHE_CAPACITY) {}

  get size(): number {
    return this.entries.size;
  }

  get(ip: string): number | undefined {
    return this.entries.get(normalizeSourceIp(ip));
  }

  set(ip: string, index: number): void {
    const key = normalizeSourceIp(ip);
    if (!this.entries.has(key) && this.entries.size >= this.capacity) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, index);
  }

  clear(): void {
    this.entries.clear();
  }
}
