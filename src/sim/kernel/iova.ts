/**
 * The IOVA allocator (drivers/iommu/iova.c): allocated ranges of granule-sized pages (pfns), handed
 * out top-down below a limit, size-aligned, with the two cached starting points, the 32-bit
 * fast-fail, reservations, and the rcache of per-CPU magazines in front of it.
 *
 * A sorted array stands in for the rbtree: the walk visits the same neighbours in the same order.
 * Like the kernel, a range sitting in an rcache magazine is still allocated in the tree, and
 * freeFast accepts any pfn without checking it: the consistency checks of problem P5 live in
 * dma-iommu, which knows what it handed out.
 */
import type { Snapshotable } from '../core/snapshot';

/** Orders 0..5 (1..32 granules) are cached. */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;
/** pfns per magazine (~v6.16; older kernels held 128). */
export const IOVA_MAG_SIZE = 127;
/** The anchor node's pfn (~0UL): the top of the space, above every limit. */
const ANCHOR = Number.MAX_SAFE_INTEGER;

export interface IovaRange {
  /** First and last pfn, inclusive. */
  lo: number;
  hi: number;
  /** Made by reserve rather than alloc. */
  reserved: boolean;
}

interface CpuRcache {
  loaded: number[];
  prev: number[];
}

interface Rcache {
  cpus: CpuRcache[];
  depot: number[][];
}

export interface IovaSnapshot {
  nodes: IovaRange[];
  cached: number;
  cached32: number;
  max32AllocSize: number;
  rcaches: Rcache[];
}

/** fls_long: index of the highest set bit plus one (0 for 0). */
function fls(x: number): number {
  let n = 0;
  let v = x;
  while (v >= 1) {
    v = Math.floor(v / 2);
    n++;
  }
  return n;
}

/** order_base_2: smallest o with 2^o ≥ n. */
export function orderBase2(n: number): number {
  return n <= 1 ? 0 : fls(n - 1);
}

export class IovaDomain implements Snapshotable<IovaSnapshot> {
  readonly shift: number;
  /** First pfn handed out: never 0, so IOVA 0 is never a valid DMA address. */
  readonly startPfn: number;
  readonly dma32Pfn: number;
  /** Sorted by lo; the anchor is always last. */
  private nodes: IovaRange[] = [];
  private cached: IovaRange;
  private cached32: IovaRange;
  private max32AllocSize: number;
  private rcaches: Rcache[] = [];

  /**
   * init_iova_domain(granule, start_pfn). cpus: how many per-CPU magazine pairs the rcache has.
   */
  constructor(
    readonly granule: number,
    startPfn: number,
    readonly cpus = 1,
  ) {
    if (granule <= 0 || (granule & (granule - 1)) !== 0) throw new Error(`IOVA granule ${granule} is not a power of two`);
    this.shift = fls(granule) - 1;
    this.startPfn = Math.max(1, startPfn);
    this.dma32Pfn = 2 ** (32 - this.shift);
    this.max32AllocSize = this.dma32Pfn;
    const anchor: IovaRange = { lo: ANCHOR, hi: ANCHOR, reserved: true };
    this.nodes.push(anchor);
    this.cached = anchor;
    this.cached32 = anchor;
    for (let o = 0; o < IOVA_RANGE_CACHE_MAX_SIZE; o++) this.rcaches.push(this.emptyRcache());
  }

  private emptyRcache(): Rcache {
    const cpus: CpuRcache[] = [];
    for (let c = 0; c < this.cpus; c++) cpus.push({ loaded: [], prev: [] });
    return { cpus, depot: [] };
  }

  iovaAlign(bytes: number): number {
    return Math.ceil(bytes / this.granule) * this.granule;
  }

  iovaOffset(addr: number): number {
    return addr % this.granule;
  }

  /** Index of the node containing pfn, or -1. */
  private indexOf(pfn: number): number {
    let lo = 0;
    let hi = this.nodes.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const n = this.nodes[mid]!;
      if (pfn < n.lo) hi = mid - 1;
      else if (pfn > n.hi) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Index of the first node whose hi ≥ pfn (iova_find_limit). */
  private firstAtOrAbove(pfn: number): number {
    let lo = 0;
    let hi = this.nodes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.nodes[mid]!.hi >= pfn) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private insert(n: IovaRange): void {
    this.nodes.splice(this.firstAtOrAbove(n.lo), 0, n);
  }

  /**
   * alloc_iova(size, limit_pfn, size_aligned): a range of size pfns ending at or below limitPfn,
   * or null. Walks down from the cached node; if that fails and the walk did not start at the
   * limit, retries once from the limit over the part above the cached node.
   */
  alloc(size: number, limitPfn: number, sizeAligned: boolean): IovaRange | null {
    const limit = limitPfn + 1;
    const align = sizeAligned ? 2 ** fls(size - 1) : 1;
    if (limit <= this.dma32Pfn && size >= this.max32AllocSize) return null;
    let idx = this.nodes.indexOf(limit <= this.dma32Pfn ? this.cached32 : this.cached);
    let high = limit;
    let low = this.startPfn;
    const retryPfn = this.nodes[idx]!.hi;
    let newPfn: number;
    let prevIdx: number;
    for (;;) {
      for (;;) {
        high = Math.min(high, this.nodes[idx]!.lo);
        newPfn = high >= size ? Math.floor((high - size) / align) * align : -1;
        prevIdx = idx;
        idx--;
        if (!(idx >= 0 && newPfn <= this.nodes[idx]!.hi && newPfn >= low)) break;
      }
      if (high >= size && newPfn >= low) break;
      if (low === this.startPfn && retryPfn < limit) {
        high = limit;
        low = retryPfn + 1;
        idx = limit > this.dma32Pfn ? this.nodes.length - 1 : this.firstAtOrAbove(limit);
        continue;
      }
      this.max32AllocSize = size;
      return null;
    }
    const n: IovaRange = { lo: newPfn, hi: newPfn + size - 1, reserved: false };
    this.nodes.splice(prevIdx, 0, n);
    if (n.hi < this.dma32Pfn) this.cached32 = n;
    else this.cached = n;
    return n;
  }

  /** find_iova: the allocated range containing pfn. */
  find(pfn: number): IovaRange | undefined {
    const i = this.indexOf(pfn);
    return i >= 0 && i < this.nodes.length - 1 ? this.nodes[i] : undefined;
  }

  /** free_iova: remove the range containing pfn; silently nothing if there is none. */
  free(pfn: number): void {
    const i = this.indexOf(pfn);
    if (i < 0 || i === this.nodes.length - 1) return;
    this.remove(i);
  }

  private remove(i: number): void {
    const f = this.nodes[i]!;
    const next = this.nodes[i + 1]!;
    if (f === this.cached32 || (f.hi < this.dma32Pfn && f.lo >= this.cached32.lo)) this.cached32 = next;
    if (f.lo < this.dma32Pfn) this.max32AllocSize = this.dma32Pfn;
    if (f.lo >= this.cached.lo) this.cached = next;
    this.nodes.splice(i, 1);
  }

  /** reserve_iova(lo, hi): keep [lo, hi] from ever being handed out; merges with overlaps. */
  reserve(loPfn: number, hiPfn: number): void {
    let lo = loPfn;
    const hi = hiPfn;
    let overlap = false;
    for (let i = 0; i < this.nodes.length - 1; i++) {
      const n = this.nodes[i]!;
      if (n.lo <= hi && lo <= n.hi) {
        if (lo < n.lo) n.lo = lo;
        if (hi > n.hi) lo = n.hi + 1;
        if (lo >= n.lo && hi <= n.hi) return;
        overlap = true;
      } else if (overlap) break;
    }
    this.insert({ lo, hi, reserved: true });
  }

  /**
   * alloc_iova_fast: sizes below 32 granules are rounded up to a power of two; the rcache is tried
   * first; then the tree (size-aligned); on failure, with flushRcache, every magazine is emptied
   * back into the tree and the tree tried once more. Returns the pfn, 0 on failure.
   */
  allocFast(size: number, limitPfn: number, flushRcache: boolean, cpu = 0): number {
    let sz = size;
    if (sz < 1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1)) sz = 2 ** orderBase2(sz);
    const cachedPfn = this.rcacheGet(sz, limitPfn + 1, cpu);
    if (cachedPfn) return cachedPfn;
    let flush = flushRcache;
    for (;;) {
      const n = this.alloc(sz, limitPfn, true);
      if (n) return n.lo;
      if (!flush) return 0;
      flush = false;
      this.flushRcaches();
    }
  }

  /** free_iova_fast: into this CPU's magazine for cached orders (no check at all), else free. */
  freeFast(pfn: number, size: number, cpu = 0): void {
    if (!this.rcacheInsert(pfn, size, cpu)) this.free(pfn);
  }

  private rcacheGet(size: number, limitPfn: number, cpu: number): number {
    const order = orderBase2(size);
    if (order >= IOVA_RANGE_CACHE_MAX_SIZE) return 0;
    const rc = this.rcaches[order]!;
    const c = rc.cpus[cpu]!;
    if (c.loaded.length === 0) {
      if (c.prev.length > 0) [c.loaded, c.prev] = [c.prev, c.loaded];
      else if (rc.depot.length > 0) c.loaded = rc.depot.pop()!;
      else return 0;
    }
    // iova_magazine_pop: the newest pfn that fits below the limit, swapped out with the last.
    const mag = c.loaded;
    const lim = limitPfn - size;
    let i = mag.length - 1;
    while (mag[i]! > lim) {
      if (i === 0) return 0;
      i--;
    }
    const pfn = mag[i]!;
    mag[i] = mag[mag.length - 1]!;
    mag.pop();
    return pfn;
  }

  private rcacheInsert(pfn: number, size: number, cpu: number): boolean {
    const order = orderBase2(size);
    if (order >= IOVA_RANGE_CACHE_MAX_SIZE) return false;
    const rc = this.rcaches[order]!;
    const c = rc.cpus[cpu]!;
    if (c.loaded.length >= IOVA_MAG_SIZE) {
      if (c.prev.length < IOVA_MAG_SIZE) [c.loaded, c.prev] = [c.prev, c.loaded];
      else {
        rc.depot.push(c.loaded);
        c.loaded = [];
      }
    }
    c.loaded.push(pfn);
    return true;
  }

  /** free_cpu_cached_iovas for every CPU and free_global_cached_iovas. */
  flushRcaches(): void {
    for (const rc of this.rcaches) {
      for (const c of rc.cpus) {
        for (const p of c.loaded) this.free(p);
        for (const p of c.prev) this.free(p);
        c.loaded = [];
        c.prev = [];
      }
      for (const mag of rc.depot) for (const p of mag) this.free(p);
      rc.depot = [];
    }
  }

  /** Allocated and reserved ranges, ascending (the anchor left out). */
  ranges(): IovaRange[] {
    return this.nodes.slice(0, -1).map((n) => ({ ...n }));
  }

  /** pfns sitting in magazines, per order (still allocated in the tree). */
  cachedPfns(): { order: number; pfn: number }[] {
    const out: { order: number; pfn: number }[] = [];
    this.rcaches.forEach((rc, order) => {
      for (const c of rc.cpus) for (const pfn of [...c.loaded, ...c.prev]) out.push({ order, pfn });
      for (const mag of rc.depot) for (const pfn of mag) out.push({ order, pfn });
    });
    return out;
  }

  snapshot(): IovaSnapshot {
    return {
      nodes: this.nodes.map((n) => ({ ...n })),
      cached: this.nodes.indexOf(this.cached),
      cached32: this.nodes.indexOf(this.cached32),
      max32AllocSize: this.max32AllocSize,
      rcaches: this.rcaches.map((rc) => ({ cpus: rc.cpus.map((c) => ({ loaded: c.loaded.slice(), prev: c.prev.slice() })), depot: rc.depot.map((m) => m.slice()) })),
    };
  }

  restore(s: IovaSnapshot): void {
    this.nodes = s.nodes.map((n) => ({ ...n }));
    this.cached = this.nodes[s.cached]!;
    this.cached32 = this.nodes[s.cached32]!;
    this.max32AllocSize = s.max32AllocSize;
    this.rcaches = s.rcaches.map((rc) => ({ cpus: rc.cpus.map((c) => ({ loaded: c.loaded.slice(), prev: c.prev.slice() })), depot: rc.depot.map((m) => m.slice()) }));
  }
}
