import type { Clock } from '../core/clock';
import type { Rng } from '../core/rng';
import type { Trace } from '../core/trace';
import { KeyedCache } from './keyed-cache';
import { PERM_READ, PERM_WRITE, type AccessKind, type TlbEntry } from './types';

/**
 * One cached translation. Stored objects are returned by lookup(): callers must not mutate them, nor
 * keep them past the next insert (insert copies into an object recycled from a capacity eviction).
 */
export interface TlbLine {
  /** IOVA of the first byte covered (aligned to size). */
  iova: number;
  /** Bytes covered: a power of two. */
  size: number;
  /** Physical address of the first byte. */
  pa: number;
  /** PERM_READ | PERM_WRITE bits the entry grants (models whose permission lives elsewhere grant both). */
  perms: number;
  /** Master ID the entry is tagged with, or -1 for an entry shared by every master. */
  master: number;
  /** Model data carried with the translation, e.g. the H6 PTE's ACI. */
  aux: number;
}

export interface TlbOptions {
  /** Which TLB this is, shown in listings ('micro0', 'macro', 'iotlb'). */
  level: string;
  capacity: number;
  rng: Rng;
  /** Whether entries are tagged with the master that loaded them (one TLB shared by several masters). */
  tagMaster?: boolean;
  /** Told of every capacity eviction so the owner can trace it. */
  onEvict?: (line: TlbLine) => void;
}

/** Master slots in a key: master IDs 0..62, plus the untagged slot. */
const MASTER_SLOTS = 64;
/** Page-size slots in a key: page shifts are indexed 0..7 in order of first insertion. */
const SIZE_SLOTS = 8;

const log2 = (n: number): number => 31 - Math.clz32(n);

/**
 * A TLB: a bounded set of translations with seeded random replacement (KeyedCache). An entry stays
 * until an invalidation that covers it arrives or capacity evicts it, so a driver that forgets an
 * invalidation keeps seeing the stale translation, as on silicon.
 *
 * Lookup is one hash probe per page size present (one for 4 KiB-only IOMMUs) and allocates nothing.
 * Address masks operate on 32-bit IOVAs, the space of the IOMMUs that use mask invalidation;
 * invalidateRange works on any address.
 */
export class Tlb {
  readonly level: string;
  private readonly cache: KeyedCache<TlbLine>;
  private readonly tagMaster: boolean;
  /** Page shifts present, indexed by size slot. */
  private shifts: number[] = [];
  /** The last evicted line, reused by the next insert: a walk that evicts allocates nothing. */
  private spare: TlbLine | undefined;

  constructor(opts: TlbOptions) {
    this.level = opts.level;
    this.tagMaster = opts.tagMaster ?? false;
    const onEvict = opts.onEvict;
    this.cache = new KeyedCache<TlbLine>(opts.capacity, opts.rng, (_k, v) => {
      onEvict?.(v);
      this.spare = v;
    });
  }

  get size(): number {
    return this.cache.size;
  }

  private key(slot: number, iova: number, shift: number, master: number): number {
    const page = iova < 0x1_0000_0000 ? iova >>> shift : Math.floor(iova / 2 ** shift);
    return (page * MASTER_SLOTS + (this.tagMaster ? master + 1 : 0)) * SIZE_SLOTS + slot;
  }

  /** The entry translating iova for master (ignored by untagged TLBs), or undefined. */
  lookup(iova: number, master = -1): TlbLine | undefined {
    const shifts = this.shifts;
    const m = this.tagMaster ? master + 1 : 0;
    for (let slot = 0; slot < shifts.length; slot++) {
      const shift = shifts[slot]!;
      const page = shift < 32 && iova < 0x1_0000_0000 ? iova >>> shift : Math.floor(iova / 2 ** shift);
      const line = this.cache.get((page * MASTER_SLOTS + m) * SIZE_SLOTS + slot);
      if (line !== undefined) return line;
    }
    return undefined;
  }

  /** Insert (or replace) a copy of line; capacity may evict a random other entry. */
  insert(line: TlbLine): void {
    const shift = log2(line.size);
    const slot = this.shifts[0] === shift && line.size === 1 << shift ? 0 : this.slotFor(line.size);
    const l = this.spare ?? { iova: 0, size: 0, pa: 0, perms: 0, master: 0, aux: 0 };
    this.spare = undefined;
    l.iova = line.iova;
    l.size = line.size;
    l.pa = line.pa;
    l.perms = line.perms;
    l.master = line.master;
    l.aux = line.aux;
    this.cache.set(this.key(slot, line.iova, shift, line.master), l);
  }

  /** Size slot for a page size, adding it on first use (kept out of insert's fast path). */
  private slotFor(size: number): number {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new Error(`${this.level}: TLB entry size ${size} is not a power of two`);
    const shift = log2(size);
    const slot = this.shifts.indexOf(shift);
    if (slot >= 0) return slot;
    if (this.shifts.length >= SIZE_SLOTS) throw new Error(`${this.level}: too many page sizes`);
    return this.shifts.push(shift) - 1;
  }

  /** Drop everything (or, in a master-tagged TLB, everything one master loaded). Returns how many went. */
  invalidateAll(master?: number): number {
    if (master === undefined || !this.tagMaster) {
      const n = this.cache.size;
      this.cache.clear();
      return n;
    }
    return this.cache.deleteWhere((_k, l) => l.master === master);
  }

  /**
   * Address+mask invalidation: drops entries with (va & mask) == (addr & mask), where va is any address
   * the entry covers (bits below the entry's size are not compared). Optionally only one master's entries.
   */
  invalidateMasked(addr: number, mask: number, master?: number): number {
    return this.cache.deleteWhere((_k, l) => {
      if (master !== undefined && this.tagMaster && l.master !== master) return false;
      const m = (mask & ~(l.size - 1)) >>> 0;
      return (((l.iova ^ addr) & m) >>> 0) === 0;
    });
  }

  /** Drop entries overlapping [start, start + len). */
  invalidateRange(start: number, len: number, master?: number): number {
    return this.cache.deleteWhere((_k, l) => {
      if (master !== undefined && this.tagMaster && l.master !== master) return false;
      return l.iova < start + len && start < l.iova + l.size;
    });
  }

  lines(): TlbLine[] {
    return this.cache.entries().map(([, l]) => l);
  }

  /**
   * The script-API view. permsOf lets a model that keeps permissions outside the entry (H6 ACI) say
   * what the entry grants now; masterName turns master IDs into device names.
   */
  list(opts: { masterName?: (id: number) => string | undefined; permsOf?: (l: TlbLine) => number; attrs?: (l: TlbLine) => Record<string, number> } = {}): TlbEntry[] {
    return this.lines()
      .sort((a, b) => a.iova - b.iova || a.master - b.master)
      .map((l) => {
        const p = opts.permsOf ? opts.permsOf(l) : l.perms;
        const perms: AccessKind[] = [];
        if (p & PERM_READ) perms.push('read');
        if (p & PERM_WRITE) perms.push('write');
        const e: TlbEntry = { iova: l.iova, pa: l.pa, size: l.size, perms, valid: true, level: this.level };
        const name = l.master >= 0 ? opts.masterName?.(l.master) : undefined;
        if (name !== undefined) e.master = name;
        if (opts.attrs) e.attrs = opts.attrs(l);
        return e;
      });
  }

  snapshot(): { shifts: number[]; entries: [number, TlbLine][] } {
    return { shifts: this.shifts.slice(), entries: this.cache.snapshot() };
  }

  restore(s: { shifts: number[]; entries: [number, TlbLine][] }): void {
    this.shifts = s.shifts.slice();
    this.cache.restore(s.entries);
  }
}

/**
 * Capacity evictions of one cache level, traced in batches: under streaming DMA every walk evicts, and
 * one event per eviction would push everything else out of the trace ring (and cost more than the walk).
 * A batch is emitted when it spans windowCycles, or when the owner flushes it before its own events.
 */
export class EvictionLog {
  private count = 0;
  private since = 0;
  private lastIova = 0;

  constructor(
    private readonly clock: Clock,
    private readonly trace: Trace,
    private readonly track: string,
    private readonly level: string,
    private readonly windowCycles = 4096,
  ) {}

  note(iova: number): void {
    const now = this.clock.now();
    if (this.count > 0 && now - this.since >= this.windowCycles) this.flush();
    if (this.count === 0) this.since = now;
    this.count++;
    this.lastIova = iova;
  }

  flush(): void {
    if (this.count === 0) return;
    const now = this.clock.now();
    this.trace.emit({ time: this.since, cat: 'inval', name: 'evict', track: this.track, args: { level: this.level, count: this.count, lastIova: this.lastIova }, dur: now - this.since });
    this.count = 0;
  }
}
