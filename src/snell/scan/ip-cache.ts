/**
 * OpenSnell's client-IP -> user-index cache: 4096 entries, and when full an arbitrary entry is
 * evicted (its lru.go says "not strictly an LRU"). Keys are canonical addresses, as OpenSnell's
 * extractIP(...).String() gives: one spelling per address, IPv4-mapped IPv6 as IPv4. Here the arbitrary entry is the oldest
 * inserted, which is one of the choices Go's map could make and keeps runs reproducible.
 */
import { canonicalIp } from '../../shared/ip.js';

export const IP_CACHE_CAPACITY = 4096;


export class IpCache {
  private readonly entries = new Map<string, number>();
  constructor(readonly capacity = IP_CACHE_CAPACITY) {}

  get size(): number {
    return this.entries.size;
  }

  get(ip: string): number | undefined {
    return this.entries.get(canonicalIp(ip));
  }

  set(ip: string, index: number): void {
    // Capacity 0: no cache at all (snell-serve --no-ip-cache, to measure the cold path).
    if (this.capacity === 0) return;
    const key = canonicalIp(ip);
    if (!this.entries.has(key) && this.entries.size >= this.capacity) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, index);
  }

  clear(): void {
    this.entries.clear();
  }
}
