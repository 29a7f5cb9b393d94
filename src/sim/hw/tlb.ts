import type { Clock } from '../core/clock';
import type { Rng } from '../core/rng';
import type { Trace } from '../core/trace';
import { MAX_CACHE_ENTRIES, pickBelow } from './keyed-cache';
import { PERM_READ, PERM_WRITE, type AccessKind, type TlbEntry } from './types';

/**
 * Where a TLB reports capacity evictions (the EvictionLog below, usually). An object, not a callback:
 * the models' TLBs then share one receiver class and the call on the walk path stays monomorphic.
 */
export interface EvictionSink {
  note(iova: number): void;
}

/** One cached translation, as lookup() reports it and insert() takes it. */
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
  /** Told the IOVA of every capacity eviction so the owner can trace it. */
  evictions?: EvictionSink;
}

/** Master slots in a key: master IDs 0..62, plus the untagged slot. */
const MASTER_SLOTS = 64;
/** Page-size slots in a key: page shifts are indexed 0..7 in order of first insertion. */
const SIZE_SLOTS = 8;

const log2 = (n: number): number => 31 - Math.clz32(n);
const blank = (): TlbLine => ({ iova: 0, size: 0, pa: 0, perms: 0, master: 0, aux: 0 });

/**
 * A TLB: a bounded set of translations with seeded random replacement. An entry stays until an
 * invalidation that covers it arrives or capacity evicts it, so a driver that forgets an
 * invalidation keeps seeing the stale translation, as on silicon.
 *
 * Storage is flat, as every DMA beat looks here and most walks insert (and evict): entry e's fields
 * live at index e of parallel typed arrays; a chained hash table (4 buckets per entry, so chains are
 * nearly always one long, and a removal just unlinks) maps keys to entries; order[0..n-1] lists the entries in replacement order
 * (the victim is order[rng.below(n)], the last one takes its place: KeyedCache's order, so seeded
 * runs replay the same) and order[n..] the free ones. Lookup is one chain walk per page size present
 * (one for 4 KiB-only IOMMUs); find, put and the entry accessors allocate nothing, lookup() fills
 * one reused object.
 * Address masks operate on 32-bit IOVAs, the space of the IOMMUs that use mask invalidation;
 * invalidateRange works on any address.
 */
export class Tlb {
  readonly level: string;
  readonly capacity: number;
  private readonly tagMaster: boolean;
  private readonly rng: Rng;
  private readonly evictions: EvictionSink | undefined;
  private readonly hashShift: number;
  /** Bucket -> first entry of its chain, as index + 1 (0: empty). */
  private readonly heads: Int32Array;
  /** Per entry: the next entry in its bucket's chain, as index + 1 (0: end). */
  private readonly nexts: Int32Array;
  /** Entries in replacement order, then the free ones; pos is each entry's index in it. */
  private readonly order: Int32Array;
  private readonly pos: Int32Array;
  /** Per entry: its key and bucket. */
  private readonly keys: Float64Array;
  private readonly homes: Int32Array;
  private readonly iovas: Float64Array;
  private readonly sizes: Float64Array;
  private readonly pas: Float64Array;
  private readonly perms: Uint8Array;
  private readonly masters: Int32Array;
  private readonly auxes: Float64Array;
  private n = 0;
  /**
   * The key the last lookup missed and its bucket, until anything changes (-1): the fill that
   * follows a missed lookup (a walk's) then needs neither the hash nor the chain walk again.
   */
  private missKey = -1;
  private missHome = 0;
  /** Page shifts present, indexed by size slot. */
  private shifts: number[] = [];
  /** What lookup() returns. */
  private readonly view = blank();

  constructor(opts: TlbOptions) {
    const cap = opts.capacity;
    if (!Number.isInteger(cap) || cap < 1 || cap > MAX_CACHE_ENTRIES) throw new Error(`cache capacity must be an integer from 1 to ${MAX_CACHE_ENTRIES}, not ${cap}`);
    this.level = opts.level;
    this.capacity = cap;
    this.tagMaster = opts.tagMaster ?? false;
    this.rng = opts.rng;
    this.evictions = opts.evictions;
    let bits = 2;
    while (1 << bits < cap * 4) bits++;
    this.hashShift = 32 - bits;
    this.heads = new Int32Array(1 << bits);
    this.nexts = new Int32Array(cap);
    this.order = Int32Array.from({ length: cap }, (_, i) => i);
    this.pos = Int32Array.from({ length: cap }, (_, i) => i);
    this.keys = new Float64Array(cap);
    this.homes = new Int32Array(cap);
    this.iovas = new Float64Array(cap);
    this.sizes = new Float64Array(cap);
    this.pas = new Float64Array(cap);
    this.perms = new Uint8Array(cap);
    this.masters = new Int32Array(cap);
    this.auxes = new Float64Array(cap);
  }

  get size(): number {
    return this.n;
  }

  private key(slot: number, iova: number, shift: number, master: number): number {
    const page = shift < 32 && iova < 0x1_0000_0000 ? iova >>> shift : Math.floor(iova / 2 ** shift);
    return (page * MASTER_SLOTS + (this.tagMaster ? master + 1 : 0)) * SIZE_SLOTS + slot;
  }

  /** As KeyedCache: Fibonacci hashing of the key, keys past 2^32 fold their high word in. */
  private home(key: number): number {
    const lo = key <= 0xffffffff ? key >>> 0 : (key >>> 0) ^ Math.imul((key / 4294967296) >>> 0, 0x85ebca6b);
    return Math.imul(lo, 0x9e3779b1) >>> this.hashShift;
  }

  private findKey(key: number): number {
    const h = this.home(key);
    for (let x = this.heads[h]!; x !== 0; x = this.nexts[x - 1]!) if (this.keys[x - 1] === key) return x - 1;
    this.missKey = key;
    this.missHome = h;
    return -1;
  }

  /** The entry translating iova for master (ignored by untagged TLBs): its index, or -1. */
  find(iova: number, master = -1): number {
    const shifts = this.shifts;
    for (let slot = 0; slot < shifts.length; slot++) {
      const e = this.findKey(this.key(slot, iova, shifts[slot]!, master));
      if (e >= 0) return e;
    }
    return -1;
  }

  /** Entry e's fields (e from find(), valid until the next put or invalidation). */
  iovaOf(e: number): number {
    return this.iovas[e]!;
  }

  paOf(e: number): number {
    return this.pas[e]!;
  }

  auxOf(e: number): number {
    return this.auxes[e]!;
  }

  private fill(l: TlbLine, e: number): TlbLine {
    l.iova = this.iovas[e]!;
    l.size = this.sizes[e]!;
    l.pa = this.pas[e]!;
    l.perms = this.perms[e]!;
    l.master = this.masters[e]!;
    l.aux = this.auxes[e]!;
    return l;
  }

  /** The entry translating iova for master, in an object reused by the next lookup: read it at once. */
  lookup(iova: number, master = -1): TlbLine | undefined {
    const e = this.find(iova, master);
    return e < 0 ? undefined : this.fill(this.view, e);
  }

  /** Insert (or replace) a copy of line; capacity may evict a random other entry. */
  insert(line: TlbLine): void {
    this.put(line.iova, line.size, line.pa, line.perms, line.master, line.aux);
  }

  /** insert() without an object. */
  put(iova: number, size: number, pa: number, perms: number, master: number, aux: number): void {
    const shift = log2(size);
    const slot = this.shifts[0] === shift && size === 1 << shift ? 0 : this.slotFor(size);
    const key = this.key(slot, iova, shift, master);
    let h: number;
    let x = 0;
    if (key === this.missKey) h = this.missHome;
    else {
      h = this.home(key);
      x = this.heads[h]!;
      while (x !== 0 && this.keys[x - 1] !== key) x = this.nexts[x - 1]!;
    }
    this.missKey = -1;
    let e = x - 1;
    if (e < 0) {
      if (this.n >= this.capacity) {
        // remove(victim) and taking the slot it frees, in one: the victim's index becomes the newest
        // entry and the last one takes the victim's place in replacement order.
        const d = pickBelow(this.rng, this.n);
        e = this.order[d]!;
        if (this.evictions) this.evictions.note(this.iovas[e]!);
        this.unlink(e);
        const last = this.n - 1;
        const moved = this.order[last]!;
        this.order[d] = moved;
        this.pos[moved] = d;
        this.order[last] = e;
        this.pos[e] = last;
      } else e = this.order[this.n++]!;
      this.nexts[e] = this.heads[h]!;
      this.heads[h] = e + 1;
      this.keys[e] = key;
      this.homes[e] = h;
    }
    this.iovas[e] = iova;
    this.sizes[e] = size;
    this.pas[e] = pa;
    this.perms[e] = perms;
    this.masters[e] = master;
    this.auxes[e] = aux;
  }

  /** Size slot for a page size, adding it on first use (kept out of put's fast path). */
  private slotFor(size: number): number {
    if (size <= 0 || (size & (size - 1)) !== 0) throw new Error(`${this.level}: TLB entry size ${size} is not a power of two`);
    const shift = log2(size);
    const slot = this.shifts.indexOf(shift);
    if (slot >= 0) return slot;
    if (this.shifts.length >= SIZE_SLOTS) throw new Error(`${this.level}: too many page sizes`);
    return this.shifts.push(shift) - 1;
  }

  /** Take entry e out of its bucket's chain. */
  private unlink(e: number): void {
    const b = this.homes[e]!;
    let x = this.heads[b]!;
    if (x === e + 1) this.heads[b] = this.nexts[e]!;
    else {
      while (this.nexts[x - 1] !== e + 1) x = this.nexts[x - 1]!;
      this.nexts[x - 1] = this.nexts[e]!;
    }
  }

  /** Drop entry e: unlink it from its chain, swap it with the last entry in replacement order. */
  private remove(e: number): void {
    this.missKey = -1;
    this.unlink(e);
    const d = this.pos[e]!;
    const last = this.order[--this.n]!;
    this.order[d] = last;
    this.pos[last] = d;
    this.order[this.n] = e;
    this.pos[e] = this.n;
  }

  /** Remove every entry for which pred holds (downwards: a removal moves in the last entry, already seen). */
  private removeWhere(pred: (e: number) => boolean): number {
    let removed = 0;
    for (let d = this.n - 1; d >= 0; d--) {
      const e = this.order[d]!;
      if (!pred(e)) continue;
      this.remove(e);
      removed++;
    }
    return removed;
  }

  /** Drop everything (or, in a master-tagged TLB, everything one master loaded). Returns how many went. */
  invalidateAll(master?: number): number {
    if (master === undefined || !this.tagMaster) {
      const n = this.n;
      if (n > 0) this.heads.fill(0);
      this.missKey = -1;
      this.n = 0;
      return n;
    }
    return this.removeWhere((e) => this.masters[e] === master);
  }

  /**
   * Address+mask invalidation: drops entries with (va & mask) == (addr & mask), where va is any address
   * the entry covers (bits below the entry's size are not compared). Optionally only one master's entries.
   */
  invalidateMasked(addr: number, mask: number, master?: number): number {
    return this.removeWhere((e) => {
      if (master !== undefined && this.tagMaster && this.masters[e] !== master) return false;
      const m = (mask & ~(this.sizes[e]! - 1)) >>> 0;
      return (((this.iovas[e]! ^ addr) & m) >>> 0) === 0;
    });
  }

  /** Drop entries overlapping [start, start + len). */
  invalidateRange(start: number, len: number, master?: number): number {
    return this.removeWhere((e) => {
      if (master !== undefined && this.tagMaster && this.masters[e] !== master) return false;
      const iova = this.iovas[e]!;
      return iova < start + len && start < iova + this.sizes[e]!;
    });
  }

  /** Copies of the entries, in replacement order. */
  lines(): TlbLine[] {
    return Array.from({ length: this.n }, (_, d) => this.fill(blank(), this.order[d]!));
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

  snapshot(): { shifts: number[]; entries: TlbLine[] } {
    return { shifts: this.shifts.slice(), entries: this.lines() };
  }

  restore(s: { shifts: number[]; entries: TlbLine[] }): void {
    this.invalidateAll();
    this.shifts = s.shifts.slice();
    // Below capacity nothing is evicted: the replacement order comes back as it was.
    for (const l of s.entries) this.insert(l);
  }
}

/**
 * Capacity evictions of one cache level, traced in batches: under streaming DMA every walk evicts, and
 * one event per eviction would push everything else out of the trace ring (and cost more than the walk).
 * A batch is emitted when it spans windowCycles, or when the owner flushes it before its own events.
 */
export class EvictionLog implements EvictionSink {
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
