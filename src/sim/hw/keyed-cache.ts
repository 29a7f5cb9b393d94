import type { Rng } from '../core/rng';

/**
 * A bounded cache with seeded random replacement: the building block of TLBs and walk caches.
 * An entry stays until an invalidation that covers it arrives, or until capacity evicts it; every
 * eviction is reported to the owner so it can be traced (nothing disappears silently).
 */
export class KeyedCache<V> {
  private map = new Map<number, V>();
  private keys: number[] = [];

  constructor(
    readonly capacity: number,
    private readonly rng: Rng,
    private readonly onEvict?: (key: number, value: V) => void,
  ) {}

  get(key: number): V | undefined {
    return this.map.get(key);
  }

  set(key: number, value: V): void {
    if (!this.map.has(key)) {
      if (this.map.size >= this.capacity) {
        const i = this.rng.below(this.keys.length);
        const victim = this.keys[i]!;
        this.keys[i] = this.keys[this.keys.length - 1]!;
        this.keys.pop();
        const v = this.map.get(victim)!;
        this.map.delete(victim);
        this.onEvict?.(victim, v);
      }
      this.keys.push(key);
    }
    this.map.set(key, value);
  }

  delete(key: number): boolean {
    if (!this.map.delete(key)) return false;
    const i = this.keys.indexOf(key);
    this.keys[i] = this.keys[this.keys.length - 1]!;
    this.keys.pop();
    return true;
  }

  /** Remove every entry for which pred holds; returns how many went. */
  deleteWhere(pred: (key: number, value: V) => boolean): number {
    let n = 0;
    for (const [k, v] of this.map) {
      if (pred(k, v)) {
        this.delete(k);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.map.clear();
    this.keys = [];
  }

  get size(): number {
    return this.map.size;
  }

  entries(): [number, V][] {
    return [...this.map];
  }

  snapshot(): [number, V][] {
    return this.keys.map((k) => [k, structuredClone(this.map.get(k)!)]);
  }

  restore(s: [number, V][]): void {
    this.clear();
    for (const [k, v] of s) {
      this.keys.push(k);
      this.map.set(k, structuredClone(v));
    }
  }
}
