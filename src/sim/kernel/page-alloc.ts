/**
 * The page allocator: a buddy allocator over the kernel's physical RAM, a per-CPU-style LIFO list of
 * hot single pages in front of it, and kmem_cache-like pools of small aligned objects carved from
 * pages. Every allocation carries an owner tag, and every free remembers who held the page, so
 * checkers can name leaked tables and walks of freed tables.
 *
 * Reuse is deliberate and deterministic: the last single page freed is the first one handed out
 * again, as with the kernel's per-CPU free lists, so a table freed while hardware still walks it
 * really is overwritten by its next owner.
 *
 * Zeroing: bookkeeping is plain (not a preemption point), and so is the memset of a fresh
 * allocation. It is a CPU store through the CPU cache (the `zero` function given by the owner of
 * the port): the lines end up dirty, so a non-coherent walker still sees the old RAM contents until
 * the driver cleans them, exactly as after kzalloc. It is not a preemption point because no other
 * agent can legitimately see memory before its allocator publishes it.
 */
import type { FindingSink } from '../core/findings';
import type { Checkpointable, Snapshotable } from '../core/snapshot';
import { UndoMap } from '../core/undo-map';
import type { Trace } from '../core/trace';
import { hex } from './errno';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
/** Largest buddy order (4 MiB blocks), as MAX_PAGE_ORDER = 10 on arm64 with 4 KiB pages. */
export const MAX_ORDER = 10;
/** Per-CPU list bounds: above HIGH pages, the BATCH oldest go back to the buddy lists. */
const PCP_HIGH = 64;
const PCP_BATCH = 16;

/** Who holds an allocation. Page-table owners carry their domain and level for leak reports. */
export type PageOwner =
  | { kind: 'pgtable'; domain: number; level: number; iommu?: string }
  | { kind: 'dma-buffer'; dev: string }
  | { kind: 'script' }
  | { kind: 'driver'; name: string }
  | { kind: 'slab'; cache: string };

export interface Allocation {
  pa: number;
  bytes: number;
  owner: PageOwner;
  time: number;
}

interface Block extends Allocation {
  /** Buddy order, or -1 for an exact (non power of two) allocation that frees page by page. */
  order: number;
  slab?: SlabCache;
}

export interface FreedInfo {
  owner: PageOwner;
  time: number;
}

export interface AllocOptions {
  /** __GFP_ZERO. */
  zero?: boolean;
}

export type PageEvent = { op: 'alloc' | 'free'; pa: number; bytes: number; owner: PageOwner };

export interface PageAllocatorOptions {
  now?: () => number;
  findings?: FindingSink;
  trace?: Trace;
  /** memset(0) through the CPU cache; see the module comment. */
  zero?: (pa: number, len: number) => void;
}

export interface PageAllocatorSnapshot {
  free: number[][];
  freeOrder: [number, number][];
  pcp: number[];
  blocks: [number, Omit<Block, 'slab'> & { slab?: string }][];
  freed: [number, FreedInfo][];
  freedObjects: [number, FreedInfo][];
  caches: [string, SlabSnapshot][];
}

/**
 * A checkpoint of the allocator (explorer runs): the maps record their changes (UndoMap), the free
 * lists are copied back only where they changed, so a rollback costs what the run did.
 */
export interface PageAllocatorCheckpoint {
  free: number[][];
  pcp: number[];
  caches: ReadonlySet<SlabCache>;
}

/** Bit of PageAllocator.changed for the per-CPU list (bits 0..MAX_ORDER: the buddy lists). */
const PCP_BIT = 1 << (MAX_ORDER + 1);

export function ownerLabel(o: PageOwner): string {
  switch (o.kind) {
    case 'pgtable':
      return `page table (domain ${o.domain}, level ${o.level}${o.iommu ? `, ${o.iommu}` : ''})`;
    case 'dma-buffer':
      return `DMA buffer of ${o.dev}`;
    case 'script':
      return 'script pages';
    case 'driver':
      return `driver ${o.name}`;
    case 'slab':
      return `kmem_cache ${o.cache}`;
  }
}

/** Entries by ascending key: a snapshot does not depend on the order changes (and rollbacks) left a map in. */
function byKey<V>(m: Iterable<[number, V]>): [number, V][] {
  return [...m].sort((a, b) => a[0] - b[0]);
}

/** The order of the smallest block holding bytes (multiplication: a shift overflows int32 at order 19). */
function orderFor(bytes: number): number {
  let o = 0;
  while (PAGE_SIZE * 2 ** o < bytes) o++;
  return o;
}

export class PageAllocator implements Snapshotable<PageAllocatorSnapshot>, Checkpointable<PageAllocatorCheckpoint> {
  /** Buddy free lists per order; the end of each array is the next block handed out. */
  private free: number[][] = [];
  /** Head pa -> order, for every block on a buddy list (buddy lookup on merge). */
  private readonly freeOrder = new UndoMap<number, number>();
  /** Hot single pages, LIFO. */
  private pcp: number[] = [];
  /** Lists changed since the checkpoint: bit o for free[o], PCP_BIT for pcp. */
  private changed = 0;
  private cp: PageAllocatorCheckpoint | null = null;
  /** pfn -> the block covering it, for every allocated page. */
  private readonly pages = new UndoMap<number, Block>();
  /** pfn -> who last held the page, for pages that are free now. */
  private readonly freed = new UndoMap<number, FreedInfo>();
  /** Object pa -> last holder, for objects of slab pages that went back to the allocator. */
  private readonly freedObjects = new UndoMap<number, FreedInfo>();
  private caches = new Map<string, SlabCache>();
  private listeners: ((e: PageEvent) => void)[] = [];
  private readonly now: () => number;
  readonly ranges: readonly { base: number; size: number }[];

  constructor(
    ranges: { base: number; size: number }[],
    private readonly opts: PageAllocatorOptions = {},
  ) {
    this.now = opts.now ?? (() => 0);
    this.ranges = ranges.map((r) => ({ ...r }));
    for (let o = 0; o <= MAX_ORDER; o++) this.free.push([]);
    // Highest addresses first, so the lowest address is handed out first: readable traces.
    const blocks: [number, number][] = [];
    for (const r of ranges) {
      let pa = Math.ceil(r.base / PAGE_SIZE) * PAGE_SIZE;
      const end = Math.floor((r.base + r.size) / PAGE_SIZE) * PAGE_SIZE;
      while (pa < end) {
        let o = MAX_ORDER;
        while (o > 0 && (pa % (PAGE_SIZE << o) !== 0 || pa + (PAGE_SIZE << o) > end)) o--;
        blocks.push([pa, o]);
        pa += PAGE_SIZE << o;
      }
    }
    blocks.sort((a, b) => b[0] - a[0]);
    for (const [pa, o] of blocks) this.pushFree(pa, o);
  }

  /** Watch every allocation and free (checkers: live-table frees, use-after-free). */
  subscribe(l: (e: PageEvent) => void): () => void {
    this.listeners.push(l);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }

  /** alloc_pages(order): a naturally aligned block of 2^order pages, or null when out of memory. */
  allocPages(order: number, owner: PageOwner, opts?: AllocOptions): number | null {
    const pa = order === 0 && this.pcp.length > 0 ? this.popPcp() : this.takeBuddy(order);
    if (pa === null) return null;
    this.record({ pa, bytes: PAGE_SIZE << order, owner, time: this.now(), order }, opts);
    return pa;
  }

  /** alloc_pages_exact: npages contiguous pages; the tail of the power-of-two block goes back. */
  allocExact(npages: number, owner: PageOwner, opts?: AllocOptions): number | null {
    if (!Number.isSafeInteger(npages) || npages < 1) throw new RangeError(`alloc_pages_exact: ${npages} is not a page count`);
    // More than one MAX_ORDER block fails, as alloc_pages_exact does.
    if (npages > 1 << MAX_ORDER) return null;
    const order = orderFor(npages * PAGE_SIZE);
    if (npages === 1 << order) return this.allocPages(order, owner, opts);
    const pa = this.takeBuddy(order);
    if (pa === null) return null;
    for (let i = npages; i < 1 << order; i++) this.releaseToBuddy(pa + i * PAGE_SIZE, 0);
    this.record({ pa, bytes: npages * PAGE_SIZE, owner, time: this.now(), order: -1 }, opts);
    return pa;
  }

  /** free_pages(pa, order). A free of something not allocated (or not at its start) is reported. */
  freePages(pa: number, order?: number): void {
    const b = this.pages.get(Math.floor(pa / PAGE_SIZE));
    if (!b || b.pa !== pa || b.slab) {
      this.warn(
        b ? `free_pages(${hex(pa)}): not the start of an allocation (${ownerLabel(b.owner)} at ${hex(b.pa)})` : `free_pages(${hex(pa)}): double free or never allocated${this.freedNote(pa)}`,
        pa,
      );
      return;
    }
    if (order !== undefined && b.order >= 0 && order !== b.order) {
      this.warn(`free_pages(${hex(pa)}, order ${order}): allocated with order ${b.order}`, pa);
    }
    this.release(b);
  }

  /** split_page: turn one order-n block into 2^n single pages, each freed on its own. */
  splitPage(pa: number): void {
    const b = this.pages.get(Math.floor(pa / PAGE_SIZE));
    if (!b || b.pa !== pa || b.slab) return;
    const n = b.bytes / PAGE_SIZE;
    for (let i = 0; i < n; i++) {
      const p = pa + i * PAGE_SIZE;
      this.pages.set(Math.floor(p / PAGE_SIZE), { pa: p, bytes: PAGE_SIZE, owner: b.owner, time: b.time, order: 0 });
    }
  }

  /** Whether pa lies in allocated memory (for slab pages: in an allocated object). */
  isAllocated(pa: number): boolean {
    return this.ownerOf(pa) !== undefined;
  }

  /** The owner of the allocation (or slab object) containing pa. */
  ownerOf(pa: number): PageOwner | undefined {
    const b = this.pages.get(Math.floor(pa / PAGE_SIZE));
    if (!b) return undefined;
    return b.slab ? b.slab.objectAt(pa)?.owner : b.owner;
  }

  /** The allocation (or slab object) containing pa. */
  allocationAt(pa: number): Allocation | undefined {
    const b = this.pages.get(Math.floor(pa / PAGE_SIZE));
    if (!b) return undefined;
    if (b.slab) return b.slab.objectAt(pa);
    return { pa: b.pa, bytes: b.bytes, owner: b.owner, time: b.time };
  }

  /** Who last held a page (or slab object) that is free now; undefined if allocated or never used. */
  lastFreed(pa: number): FreedInfo | undefined {
    const b = this.pages.get(Math.floor(pa / PAGE_SIZE));
    if (b?.slab) return b.slab.freedAt(pa);
    if (b) return undefined;
    const f = this.freed.get(Math.floor(pa / PAGE_SIZE));
    if (f?.owner.kind !== 'slab') return f;
    const c = this.caches.get(f.owner.cache);
    return (c && this.freedObjects.get(pa - (pa % c.objSize))) ?? f;
  }

  /** All live allocations (slab objects listed one by one) whose owner matches. */
  list(match: (o: PageOwner) => boolean = () => true): Allocation[] {
    const out: Allocation[] = [];
    const seen = new Set<Block>();
    for (const b of this.pages.values()) {
      if (seen.has(b)) continue;
      seen.add(b);
      if (b.slab) {
        for (const o of b.slab.objectsIn(b.pa)) if (match(o.owner)) out.push(o);
      } else if (match(b.owner)) out.push({ pa: b.pa, bytes: b.bytes, owner: b.owner, time: b.time });
    }
    return out.sort((a, b) => a.pa - b.pa);
  }

  /** Page-table allocations of one domain. */
  tablesOf(domain: number): Allocation[] {
    return this.list((o) => o.kind === 'pgtable' && o.domain === domain);
  }

  freeBytes(): number {
    let n = this.pcp.length * PAGE_SIZE;
    for (let o = 0; o <= MAX_ORDER; o++) n += this.free[o]!.length * (PAGE_SIZE << o);
    return n;
  }

  /** kmem_cache_create: objects of objSize bytes (a power of two ≤ PAGE_SIZE), aligned to it. */
  createCache(name: string, objSize: number): SlabCache {
    const existing = this.caches.get(name);
    if (existing) return existing;
    if (objSize > PAGE_SIZE || (objSize & (objSize - 1)) !== 0) throw new Error(`kmem_cache ${name}: object size ${objSize} is not a power of two ≤ ${PAGE_SIZE}`);
    const c = new SlabCache(name, objSize, this);
    this.caches.set(name, c);
    return c;
  }

  cache(name: string): SlabCache | undefined {
    return this.caches.get(name);
  }

  /** Slab internals: a page for a cache, its release, object-level events and reports. */
  slabPage(c: SlabCache): number | null {
    const pa = this.pcp.length > 0 ? this.popPcp() : this.takeBuddy(0);
    if (pa === null) return null;
    const b: Block = { pa, bytes: PAGE_SIZE, owner: { kind: 'slab', cache: c.name }, time: this.now(), order: 0, slab: c };
    this.pages.set(Math.floor(pa / PAGE_SIZE), b);
    this.forget(Math.floor(pa / PAGE_SIZE));
    return pa;
  }

  slabRelease(pa: number, objects: Map<number, FreedInfo>): void {
    const b = this.pages.get(Math.floor(pa / PAGE_SIZE));
    if (!b) return;
    this.release(b, true);
    for (const [opa, info] of objects) this.freedObjects.set(opa, info);
  }

  slabEvent(op: 'alloc' | 'free', pa: number, bytes: number, owner: PageOwner, zero: boolean): void {
    if (zero) this.opts.zero?.(pa, bytes);
    this.emit(op, pa, bytes, owner);
  }

  warn(message: string, pa: number): void {
    this.opts.findings?.report({ kind: 'driver-warn', severity: 'error', message, where: { pa: hex(pa) } });
  }

  nowTime(): number {
    return this.now();
  }

  /** A reused page no longer has a previous holder. */
  private forget(pfn: number): void {
    const f = this.freed.get(pfn);
    if (!f) return;
    this.freed.delete(pfn);
    if (f.owner.kind === 'slab') {
      const base = pfn * PAGE_SIZE;
      for (const k of [...this.freedObjects.keys()]) if (k >= base && k < base + PAGE_SIZE) this.freedObjects.delete(k);
    }
  }

  private freedNote(pa: number): string {
    const f = this.lastFreed(pa);
    return f ? ` (last held by ${ownerLabel(f.owner)}, freed at ${f.time})` : '';
  }

  private record(b: Block, opts?: AllocOptions): void {
    const first = Math.floor(b.pa / PAGE_SIZE);
    for (let i = 0; i < b.bytes / PAGE_SIZE; i++) {
      this.pages.set(first + i, b);
      this.forget(first + i);
    }
    if (opts?.zero) this.opts.zero?.(b.pa, b.bytes);
    this.emit('alloc', b.pa, b.bytes, b.owner);
  }

  private release(b: Block, quiet = false): void {
    const first = Math.floor(b.pa / PAGE_SIZE);
    const n = b.bytes / PAGE_SIZE;
    const info: FreedInfo = { owner: b.owner, time: this.now() };
    for (let i = 0; i < n; i++) {
      this.pages.delete(first + i);
      this.freed.set(first + i, info);
    }
    if (b.order > 0) this.releaseToBuddy(b.pa, b.order);
    else for (let i = 0; i < n; i++) this.pushPcp(b.pa + i * PAGE_SIZE);
    if (!quiet) this.emit('free', b.pa, b.bytes, b.owner);
  }

  private pushPcp(pa: number): void {
    this.changed |= PCP_BIT;
    this.pcp.push(pa);
    if (this.pcp.length > PCP_HIGH) for (const p of this.pcp.splice(0, PCP_BATCH)) this.releaseToBuddy(p, 0);
  }

  private popPcp(): number {
    this.changed |= PCP_BIT;
    return this.pcp.pop()!;
  }

  private emit(op: 'alloc' | 'free', pa: number, bytes: number, owner: PageOwner): void {
    this.opts.trace?.emit({ time: this.now(), cat: 'kernel', name: op === 'alloc' ? 'alloc_pages' : 'free_pages', track: 'mm', args: { pa: hex(pa), bytes, owner: ownerLabel(owner) } });
    for (const l of this.listeners) l({ op, pa, bytes, owner });
  }

  private pushFree(pa: number, order: number): void {
    this.changed |= 1 << order;
    this.free[order]!.push(pa);
    this.freeOrder.set(pa, order);
  }

  private takeBuddy(order: number): number | null {
    let o = order;
    while (o <= MAX_ORDER && this.free[o]!.length === 0) o++;
    if (o > MAX_ORDER && this.pcp.length > 0) {
      // drain_all_pages before giving up: the hot pages may merge into a big enough block.
      this.changed |= PCP_BIT;
      for (const p of this.pcp.splice(0)) this.releaseToBuddy(p, 0);
      return this.takeBuddy(order);
    }
    if (o > MAX_ORDER) return null;
    this.changed |= 1 << o;
    const pa = this.free[o]!.pop()!;
    this.freeOrder.delete(pa);
    // Keep the low half, put the high halves back: consecutive allocations are adjacent.
    while (o > order) {
      o--;
      this.pushFree(pa + (PAGE_SIZE << o), o);
    }
    return pa;
  }

  private releaseToBuddy(pa: number, order: number): void {
    let p = pa;
    let o = order;
    while (o < MAX_ORDER) {
      const size = PAGE_SIZE << o;
      const buddy = p % (size * 2) === 0 ? p + size : p - size;
      if (this.freeOrder.get(buddy) !== o) break;
      const list = this.free[o]!;
      this.changed |= 1 << o;
      list.splice(list.lastIndexOf(buddy), 1);
      this.freeOrder.delete(buddy);
      p = Math.min(p, buddy);
      o++;
    }
    this.pushFree(p, o);
  }

  snapshot(): PageAllocatorSnapshot {
    const blocks: PageAllocatorSnapshot['blocks'] = [];
    for (const [pfn, b] of byKey(this.pages)) blocks.push([pfn, { pa: b.pa, bytes: b.bytes, owner: b.owner, time: b.time, order: b.order, slab: b.slab?.name }]);
    return {
      free: this.free.map((l) => l.slice()),
      freeOrder: byKey(this.freeOrder),
      pcp: this.pcp.slice(),
      blocks,
      freed: byKey(this.freed),
      freedObjects: byKey(this.freedObjects),
      caches: [...this.caches].map(([n, c]) => [n, c.snapshot()]),
    };
  }

  restore(s: PageAllocatorSnapshot): void {
    this.cp = null;
    this.free = s.free.map((l) => l.slice());
    this.freeOrder.reset(s.freeOrder);
    this.pcp = s.pcp.slice();
    this.freed.reset(s.freed);
    this.freedObjects.reset(s.freedObjects);
    // A cache created after the snapshot keeps its object (callers hold it) but none of its state:
    // the pages it carved objects from were free at the snapshot.
    const saved = new Map(s.caches);
    for (const [name, c] of this.caches) c.restore(saved.get(name) ?? { objects: [], freelist: [] });
    // Pages of one allocation share one Block object again.
    const byHead = new Map<string, Block>();
    this.pages.reset([]);
    for (const [pfn, b] of s.blocks) {
      const key = `${b.pa}:${b.bytes}`;
      let blk = byHead.get(key);
      if (!blk) {
        blk = { pa: b.pa, bytes: b.bytes, owner: b.owner, time: b.time, order: b.order, slab: b.slab ? this.caches.get(b.slab) : undefined };
        byHead.set(key, blk);
      }
      this.pages.set(pfn, blk);
    }
  }

  checkpoint(): PageAllocatorCheckpoint {
    for (const m of [this.freeOrder, this.pages, this.freed, this.freedObjects]) m.checkpoint();
    for (const c of this.caches.values()) c.checkpoint();
    this.changed = 0;
    this.cp = { free: this.free.map((l) => l.slice()), pcp: this.pcp.slice(), caches: new Set(this.caches.values()) };
    return this.cp;
  }

  /** Back to cp (the latest checkpoint), which stays valid for more rollbacks. */
  rollback(cp: PageAllocatorCheckpoint): void {
    if (cp !== this.cp) throw new Error('page allocator rollback to a checkpoint that is not the latest');
    for (const m of [this.freeOrder, this.pages, this.freed, this.freedObjects]) m.rollback();
    for (let o = 0; o <= MAX_ORDER; o++) if (this.changed & (1 << o)) this.free[o] = cp.free[o]!.slice();
    if (this.changed & PCP_BIT) this.pcp = cp.pcp.slice();
    this.changed = 0;
    // A cache created after the checkpoint keeps its object (callers hold it) but none of its state.
    for (const c of this.caches.values()) {
      if (cp.caches.has(c)) c.rollback();
      else c.restore({ objects: [], freelist: [] });
    }
  }
}

interface SlabObject extends Allocation {
  live: boolean;
  freedTime: number;
}

export interface SlabSnapshot {
  objects: [number, SlabObject][];
  freelist: number[];
}

/**
 * kmem_cache: small aligned objects (H6 1 KiB level-2 tables, v7s 1 KiB L2 tables) carved from
 * pages. The most recently freed object is reused first; a page whose objects are all free goes
 * back to the page allocator at once, so a freed table can come back as anything.
 */
export class SlabCache {
  /** Object pa -> state, for every object of every page the cache holds. */
  private readonly objects = new UndoMap<number, SlabObject>();
  private freelist: number[] = [];
  /** The freelist at the checkpoint, and whether it changed since. */
  private savedFreelist: number[] | null = null;
  private freelistChanged = false;

  constructor(
    readonly name: string,
    readonly objSize: number,
    private readonly pages: PageAllocator,
  ) {}

  /** kmem_cache_alloc (kmem_cache_zalloc with zero). null when out of memory. */
  alloc(owner: PageOwner, opts?: AllocOptions): number | null {
    this.freelistChanged = true;
    if (this.freelist.length === 0) {
      const page = this.pages.slabPage(this);
      if (page === null) return null;
      for (let off = PAGE_SIZE - this.objSize; off >= 0; off -= this.objSize) {
        this.objects.set(page + off, { pa: page + off, bytes: this.objSize, owner, time: 0, live: false, freedTime: -1 });
        this.freelist.push(page + off);
      }
    }
    const pa = this.freelist.pop()!;
    this.objects.set(pa, { ...this.objects.get(pa)!, owner, time: this.pages.nowTime(), live: true });
    this.pages.slabEvent('alloc', pa, this.objSize, owner, opts?.zero ?? false);
    return pa;
  }

  /** kmem_cache_free. A free of a free object (or an address that is not an object) is reported. */
  free(pa: number): void {
    const o = this.objects.get(pa);
    if (!o || !o.live) {
      // A free object, or one whose whole page already went back to the page allocator.
      const f = o ? (o.freedTime >= 0 ? { owner: o.owner, time: o.freedTime } : undefined) : this.pages.lastFreed(pa);
      const held = f ? ` (last held by ${ownerLabel(f.owner)}, freed at ${f.time})` : '';
      this.pages.warn(`kmem_cache_free(${this.name}, ${hex(pa)}): ${f ? 'double free' : 'not an object of this cache'}${held}`, pa);
      return;
    }
    this.objects.set(pa, { ...o, live: false, freedTime: this.pages.nowTime() });
    this.freelistChanged = true;
    this.freelist.push(pa);
    this.pages.slabEvent('free', pa, this.objSize, o.owner, false);
    const page = pa - (pa % PAGE_SIZE);
    for (let off = 0; off < PAGE_SIZE; off += this.objSize) if (this.objects.get(page + off)!.live) return;
    const last = new Map<number, FreedInfo>();
    for (let off = 0; off < PAGE_SIZE; off += this.objSize) {
      const x = this.objects.get(page + off)!;
      if (x.freedTime >= 0) last.set(page + off, { owner: x.owner, time: x.freedTime });
      this.objects.delete(page + off);
    }
    this.freelist = this.freelist.filter((p) => p < page || p >= page + PAGE_SIZE);
    this.pages.slabRelease(page, last);
  }

  objectAt(pa: number): Allocation | undefined {
    const o = this.objects.get(pa - (pa % this.objSize));
    return o?.live ? { pa: o.pa, bytes: o.bytes, owner: o.owner, time: o.time } : undefined;
  }

  freedAt(pa: number): FreedInfo | undefined {
    const o = this.objects.get(pa - (pa % this.objSize));
    return o && !o.live && o.freedTime >= 0 ? { owner: o.owner, time: o.freedTime } : undefined;
  }

  objectsIn(page: number): Allocation[] {
    const out: Allocation[] = [];
    for (let off = 0; off < PAGE_SIZE; off += this.objSize) {
      const a = this.objectAt(page + off);
      if (a) out.push(a);
    }
    return out;
  }

  snapshot(): SlabSnapshot {
    return { objects: byKey(this.objects).map(([k, o]) => [k, { ...o }]), freelist: this.freelist.slice() };
  }

  restore(s: SlabSnapshot): void {
    this.objects.reset(s.objects.map(([k, o]) => [k, { ...o }]));
    this.freelist = s.freelist.slice();
    this.savedFreelist = null;
  }

  checkpoint(): void {
    this.objects.checkpoint();
    this.savedFreelist = this.freelist.slice();
    this.freelistChanged = false;
  }

  rollback(): void {
    this.objects.rollback();
    if (this.freelistChanged) this.freelist = this.savedFreelist!.slice();
    this.freelistChanged = false;
  }
}
