import type { Rng } from '../core/rng';

/**
 * The largest cache (TLB, walk cache) the models build. The hash tables take 4x capacity slots and
 * index them with 32-bit shifts, so capacity must stay far below 2^29; 2^16 entries is already more
 * than any IOMMU has, and a config asking for more is refused rather than allocated.
 */
export const MAX_CACHE_ENTRIES = 65536;

/**
 * rng.below(n), computed without a float modulo: u % n == ((hi % n) * 2^16 + lo) % n for u = hi * 2^16
 * + lo, and for n <= 2^15 every step stays a small integer; a full cache of power-of-two capacity
 * (the usual TLB size) needs no division at all. The seeded sequence is unchanged.
 */
export function pickBelow(rng: Rng, n: number): number {
  if (n > 0x8000) return rng.below(n);
  const u = rng.nextU32();
  if ((n & (n - 1)) === 0) return u & (n - 1);
  return (((u >>> 16) % n) * 0x10000 + (u & 0xffff)) % n;
}

/**
 * A bounded cache with seeded random replacement: the building block of TLBs and walk caches.
 * An entry stays until an invalidation that covers it arrives, or until capacity evicts it; every
 * eviction is reported to the owner so it can be traced (nothing disappears silently).
 *
 * Keys are non-negative numbers. Storage is an open-addressing table in typed arrays (linear
 * probing, backward-shift deletion) plus a dense slot list for the random victim, so lookups,
 * inserts and evictions allocate nothing: TLB hits and walks sit on the DMA hot path.
 */
export class KeyedCache<V> {
  private readonly mask: number;
  private readonly shift: number;
  private readonly slotKey: Float64Array;
  private readonly slotUsed: Uint8Array;
  private readonly slotVal: (V | undefined)[];
  /** Position of each used slot in `dense`. */
  private readonly slotDense: Int32Array;
  /** Used slots in replacement order: a victim is dense[rng.below(n)], removal swaps in the last. */
  private readonly dense: Int32Array;
  private n = 0;

  constructor(
    readonly capacity: number,
    private readonly rng: Rng,
    private readonly onEvict?: (key: number, value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CACHE_ENTRIES) throw new Error(`cache capacity must be an integer from 1 to ${MAX_CACHE_ENTRIES}, not ${capacity}`);
    // Load factor at most 1/4 keeps probe runs, and so backward-shift deletions, short.
    let bits = 2;
    while (1 << bits < capacity * 4) bits++;
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
    this.slotKey = new Float64Array(1 << bits);
    this.slotUsed = new Uint8Array(1 << bits);
    this.slotVal = new Array<V | undefined>(1 << bits).fill(undefined);
    this.slotDense = new Int32Array(1 << bits);
    this.dense = new Int32Array(capacity);
  }

  private home(key: number): number {
    // Fibonacci hashing, taking the product's top bits: the low bits of TLB keys (master and size
    // slots) barely vary, the page number above them does. Keys below 2^32 skip the float division.
    const lo = key <= 0xffffffff ? key >>> 0 : (key >>> 0) ^ Math.imul((key / 4294967296) >>> 0, 0x85ebca6b);
    return Math.imul(lo, 0x9e3779b1) >>> this.shift;
  }

  private find(key: number): number {
    const used = this.slotUsed;
    const keys = this.slotKey;
    for (let i = this.home(key); used[i] === 1; i = (i + 1) & this.mask) if (keys[i] === key) return i;
    return -1;
  }

  get(key: number): V | undefined {
    const i = this.find(key);
    return i < 0 ? undefined : this.slotVal[i];
  }

  set(key: number, value: V): void {
    const used = this.slotUsed;
    let i = this.home(key);
    for (; used[i] === 1; i = (i + 1) & this.mask) {
      if (this.slotKey[i] === key) {
        this.slotVal[i] = value;
        return;
      }
    }
    if (this.n >= this.capacity) {
      const victim = this.dense[this.pick()]!;
      const k = this.slotKey[victim]!;
      const v = this.slotVal[victim] as V;
      this.removeSlot(victim);
      this.onEvict?.(k, v);
      // The removal may have shifted entries along this key's probe run.
      i = this.home(key);
      while (used[i] === 1) i = (i + 1) & this.mask;
    }
    used[i] = 1;
    this.slotKey[i] = key;
    this.slotVal[i] = value;
    this.slotDense[i] = this.n;
    this.dense[this.n++] = i;
  }

  private pick(): number {
    return pickBelow(this.rng, this.n);
  }

  private removeSlot(slot: number): void {
    const d = this.slotDense[slot]!;
    const lastSlot = this.dense[--this.n]!;
    this.dense[d] = lastSlot;
    this.slotDense[lastSlot] = d;
    // Backward-shift: pull later members of the probe run into the hole so lookups never stop early.
    let hole = slot;
    this.slotUsed[hole] = 0;
    this.slotVal[hole] = undefined;
    for (let j = (hole + 1) & this.mask; this.slotUsed[j] === 1; j = (j + 1) & this.mask) {
      const h = this.home(this.slotKey[j]!);
      const stays = hole <= j ? h > hole && h <= j : h > hole || h <= j;
      if (stays) continue;
      this.slotUsed[hole] = 1;
      this.slotKey[hole] = this.slotKey[j]!;
      this.slotVal[hole] = this.slotVal[j];
      this.slotDense[hole] = this.slotDense[j]!;
      this.dense[this.slotDense[hole]!] = hole;
      this.slotUsed[j] = 0;
      this.slotVal[j] = undefined;
      hole = j;
    }
  }

  delete(key: number): boolean {
    const i = this.find(key);
    if (i < 0) return false;
    this.removeSlot(i);
    return true;
  }

  /** Remove every entry for which pred holds; returns how many went. */
  deleteWhere(pred: (key: number, value: V) => boolean): number {
    let removed = 0;
    // Downwards: a removal swaps in the last entry, which has already been looked at.
    for (let d = this.n - 1; d >= 0; d--) {
      const slot = this.dense[d]!;
      if (pred(this.slotKey[slot]!, this.slotVal[slot] as V)) {
        this.removeSlot(slot);
        removed++;
      }
    }
    return removed;
  }

  clear(): void {
    if (this.n === 0) return;
    this.slotUsed.fill(0);
    this.slotVal.fill(undefined);
    this.n = 0;
  }

  get size(): number {
    return this.n;
  }

  /** Entries in replacement order. */
  entries(): [number, V][] {
    const out: [number, V][] = [];
    for (let d = 0; d < this.n; d++) {
      const s = this.dense[d]!;
      out.push([this.slotKey[s]!, this.slotVal[s] as V]);
    }
    return out;
  }

  snapshot(): [number, V][] {
    return this.entries().map(([k, v]) => [k, structuredClone(v)]);
  }

  restore(s: [number, V][]): void {
    this.clear();
    for (const [k, v] of s) this.set(k, structuredClone(v));
  }
}
