import type { SparseRam } from './ram';

export const LINE_SIZE = 64;
const LINE_MASK = LINE_SIZE - 1;
const PAGE_SHIFT = 12;
const PAGE_SIZE = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_SIZE - 1;
const LINES_PER_PAGE = PAGE_SIZE / LINE_SIZE;

/** Line states in CachePage.state. */
const ABSENT = 0;
const CLEAN = 1;
const DIRTY = 2;

/**
 * The cached lines of one 4 KiB page: one buffer and one state byte per line, so a checkpoint saves
 * a page in one go. A page whose bytes are all zero (a fresh allocation's memset) shares ZERO_PAGE
 * until something else is stored, so zeroing megabytes allocates no buffers.
 */
interface CachePage {
  /** ZERO_PAGE, or a buffer of this page's own; write only after own(). */
  data: Uint8Array;
  state: Uint8Array;
  lines: number;
  dirty: number;
  /** The checkpoint epoch this page's original was saved in (changes in it save nothing more). */
  epoch: number;
}

export interface CpuCacheSnapshot {
  lines: [number, Uint8Array, boolean][];
}

/**
 * A copy-on-write checkpoint: a page's lines are saved on their first change after it (null: the
 * page held no line), so taking one and rolling back cost what changed since.
 */
export interface CpuCacheCheckpoint {
  readonly saved: Map<number, { data: Uint8Array; state: Uint8Array } | null>;
  lines: number;
  dirty: number;
}

const pageOf = (pa: number): number => (pa < 0x1_0000_0000 ? pa >>> PAGE_SHIFT : Math.floor(pa / PAGE_SIZE));

/**
 * The CPU's write-back data cache in front of RAM. CPU loads and stores go through it; devices that
 * are not coherent (a non-coherent IOMMU walker, most DMA masters) read and write RAM directly, so
 * a CPU store is invisible to them until the line is cleaned. Lines are never evicted on their own:
 * the worst case for a driver that forgets to clean, and deterministic.
 */
/** Page buffers are carved from slabs of this many bytes: one host allocation per 256 pages. */
const SLAB_BYTES = 1 << 20;
/** The shared contents of every all-zero page; never written. */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export class CpuCache {
  private pages = new Map<number, CachePage>();
  /** Pages and buffers dropped (by a rollback, a zeroing store), reused first: memory stays flat across runs. */
  private spare: CachePage[] = [];
  private spareData: Uint8Array[] = [];
  private slab: ArrayBuffer = new ArrayBuffer(0);
  private slabNext = 0;
  /** Lines held, and dirty lines held: zero lets device paths skip per-line checks. */
  private lineCount = 0;
  private dirtyCount = 0;
  private epoch = 0;
  private cp: CpuCacheCheckpoint | null = null;
  /**
   * Bumped by every CPU store, clean, invalidate and restore: what a walker can see may have changed
   * (checkers re-verify cached translations only then).
   */
  generation = 0;

  constructor(private readonly ram: SparseRam) {}

  /** The page holding pa, about to change: saved first if a checkpoint needs its original. */
  private writable(pfn: number): CachePage {
    let p = this.pages.get(pfn);
    if (!p) {
      p = this.newPage();
      this.pages.set(pfn, p);
      this.cp?.saved.set(pfn, null);
    } else if (p.epoch !== this.epoch) {
      p.epoch = this.epoch;
      this.cp?.saved.set(pfn, { data: p.data === ZERO_PAGE ? ZERO_PAGE : p.data.slice(), state: p.state.slice() });
    }
    return p;
  }

  /** An empty page (no line held). */
  private newPage(): CachePage {
    const p = this.spare.pop();
    if (!p) return { data: ZERO_PAGE, state: new Uint8Array(LINES_PER_PAGE), lines: 0, dirty: 0, epoch: this.epoch };
    this.setData(p, ZERO_PAGE);
    p.state.fill(ABSENT);
    p.lines = p.dirty = 0;
    p.epoch = this.epoch;
    return p;
  }

  /** Give p's buffer back (if it has its own) and let it use d. */
  private setData(p: CachePage, d: Uint8Array): void {
    if (p.data !== ZERO_PAGE) this.spareData.push(p.data);
    p.data = d;
  }

  /** p's buffer, made its own (zeros, as ZERO_PAGE) before a store into it. */
  private own(p: CachePage): Uint8Array {
    if (p.data !== ZERO_PAGE) return p.data;
    let d = this.spareData.pop();
    if (d) d.fill(0);
    else {
      if (this.slabNext === this.slab.byteLength) {
        this.slab = new ArrayBuffer(SLAB_BYTES);
        this.slabNext = 0;
      }
      d = new Uint8Array(this.slab, this.slabNext, PAGE_SIZE);
      this.slabNext += PAGE_SIZE;
    }
    p.data = d;
    return d;
  }

  /** The page holding the line at pa with that line filled from RAM. */
  private line(pa: number): CachePage {
    const pfn = pageOf(pa);
    const li = (pa & PAGE_MASK) >>> 6;
    const p = this.pages.get(pfn);
    if (p && p.state[li] !== ABSENT) return p;
    const w = this.writable(pfn);
    this.ram.readInto(pa - (pa & LINE_MASK), this.own(w), li * LINE_SIZE, LINE_SIZE);
    w.state[li] = CLEAN;
    w.lines++;
    this.lineCount++;
    return w;
  }

  read32(pa: number): number {
    const o = pa & PAGE_MASK;
    if ((o & LINE_MASK) + 4 <= LINE_SIZE) {
      const d = this.line(pa).data;
      return (d[o]! | (d[o + 1]! << 8) | (d[o + 2]! << 16) | (d[o + 3]! << 24)) >>> 0;
    }
    return (this.read8(pa) | (this.read8(pa + 1) << 8) | (this.read8(pa + 2) << 16) | (this.read8(pa + 3) << 24)) >>> 0;
  }

  write32(pa: number, v: number): void {
    for (let i = 0; i < 4; i++) this.write8(pa + i, (v >>> (8 * i)) & 0xff);
  }

  read8(pa: number): number {
    return this.line(pa).data[pa & PAGE_MASK]!;
  }

  write8(pa: number, v: number): void {
    const p = this.writableLine(pa);
    this.own(p)[pa & PAGE_MASK] = v & 0xff;
    this.markDirty(p, (pa & PAGE_MASK) >>> 6);
  }

  /** The line at pa filled, on a page saved for the checkpoint: about to be stored to. */
  private writableLine(pa: number): CachePage {
    const p = this.line(pa);
    return p.epoch === this.epoch ? p : this.writable(pageOf(pa));
  }

  read(pa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; ) {
      const at = pa + i;
      const o = at & PAGE_MASK;
      const n = Math.min(len - i, LINE_SIZE - (o & LINE_MASK));
      out.set(this.line(at).data.subarray(o, o + n), i);
      i += n;
    }
    return out;
  }

  /**
   * What a CPU load of [pa, pa+len) would return, without allocating lines: cached lines where the
   * cache holds them, RAM elsewhere. For inspectors, whose looking must not change later behaviour.
   */
  peek(pa: number, len: number): Uint8Array {
    const out = this.ram.read(pa, len);
    this.forLines(pa, len, (b, p, li) => {
      const lo = Math.max(pa, b);
      const hi = Math.min(pa + len, b + LINE_SIZE);
      const at = li * LINE_SIZE;
      out.set(p.data.subarray(at + lo - b, at + hi - b), lo - pa);
    });
    return out;
  }

  write(pa: number, bytes: Uint8Array): void {
    this.store(pa, bytes.length, bytes);
  }

  /** memset(0) of [pa, pa+len): a CPU store, as write() of zeros. */
  zero(pa: number, len: number): void {
    this.store(pa, len, null);
  }

  /** Store bytes (null: zeros) to [pa, pa+len). */
  private store(pa: number, len: number, bytes: Uint8Array | null): void {
    for (let i = 0; i < len; ) {
      const at = pa + i;
      const o = at & PAGE_MASK;
      // A whole page: every line is overwritten, none needs filling from RAM first.
      if (o === 0 && len - i >= PAGE_SIZE) {
        const p = this.writable(pageOf(at));
        if (bytes) this.own(p).set(bytes.subarray(i, i + PAGE_SIZE));
        else this.setData(p, ZERO_PAGE);
        this.lineCount += LINES_PER_PAGE - p.lines;
        this.dirtyCount += LINES_PER_PAGE - p.dirty;
        p.lines = p.dirty = LINES_PER_PAGE;
        p.state.fill(DIRTY);
        this.generation++;
        i += PAGE_SIZE;
        continue;
      }
      const n = Math.min(len - i, LINE_SIZE - (o & LINE_MASK));
      const p = this.writableLine(at);
      if (bytes) this.own(p).set(bytes.subarray(i, i + n), o);
      else if (p.data !== ZERO_PAGE) p.data.fill(0, o, o + n);
      this.markDirty(p, o >>> 6);
      i += n;
    }
  }

  /**
   * fn for each cached line overlapping [pa, pa+len) (its base, page and index there), in no
   * particular order (lines are disjoint).
   */
  private forLines(pa: number, len: number, fn: (base: number, p: CachePage, li: number) => void): void {
    if (len <= 0 || this.lineCount === 0) return;
    const end = pa + len;
    const first = pageOf(pa);
    const last = pageOf(end - 1);
    const visit = (pfn: number, p: CachePage): void => {
      const base = pfn * PAGE_SIZE;
      const lo = Math.max(pa, base) - base;
      const hi = Math.min(end, base + PAGE_SIZE) - base;
      for (let li = lo >>> 6; li * LINE_SIZE < hi; li++) if (p.state[li] !== ABSENT) fn(base + li * LINE_SIZE, p, li);
    };
    // Whichever is shorter: the pages the range spans, or the pages the cache holds.
    if (this.pages.size < last - first + 1) {
      for (const [pfn, p] of this.pages) if (pfn >= first && pfn <= last && p.lines > 0) visit(pfn, p);
      return;
    }
    for (let pfn = first; pfn <= last; pfn++) {
      const p = this.pages.get(pfn);
      if (p && p.lines > 0) visit(pfn, p);
    }
  }

  /** Write dirty lines back to RAM (dma_sync_*_for_device, DMA_TO_DEVICE). */
  clean(pa: number, len: number): void {
    if (this.dirtyCount === 0) return;
    this.forLines(pa, len, (b, p, li) => {
      if (p.state[li] !== DIRTY) return;
      const w = p.epoch === this.epoch ? p : this.writable(pageOf(b));
      this.generation++;
      this.ram.writeFrom(b, w.data.subarray(li * LINE_SIZE, (li + 1) * LINE_SIZE));
      w.state[li] = CLEAN;
      w.dirty--;
      this.dirtyCount--;
    });
  }

  /** Drop lines, discarding dirty data (dma_sync_*_for_cpu after DMA_FROM_DEVICE). */
  invalidate(pa: number, len: number): void {
    this.forLines(pa, len, (b, p, li) => {
      const w = p.epoch === this.epoch ? p : this.writable(pageOf(b));
      if (w.state[li] === DIRTY) {
        w.dirty--;
        this.dirtyCount--;
        this.generation++;
      }
      w.state[li] = ABSENT;
      w.lines--;
      this.lineCount--;
    });
  }

  /** Clean then invalidate. */
  flush(pa: number, len: number): void {
    this.clean(pa, len);
    this.invalidate(pa, len);
  }

  private markDirty(p: CachePage, li: number): void {
    this.generation++;
    if (p.state[li] !== DIRTY) {
      p.state[li] = DIRTY;
      p.dirty++;
      this.dirtyCount++;
    }
  }

  /** Whether the line holding pa is cached and dirty: the cheap test before hasUncleanedWrite. */
  isDirty(pa: number): boolean {
    return this.dirtyCount > 0 && this.pages.get(pageOf(pa))?.state[(pa & PAGE_MASK) >>> 6] === DIRTY;
  }

  /** Whether any byte of [pa, pa+len) sits in a dirty line whose contents differ from RAM. */
  hasUncleanedWrite(pa: number, len: number): boolean {
    let found = false;
    this.forLines(pa, len, (b, p, li) => {
      if (found || p.state[li] !== DIRTY) return;
      const lo = Math.max(pa, b) - b;
      const hi = Math.min(pa + len, b + LINE_SIZE) - b;
      const ram = this.ram.read(b + lo, hi - lo);
      const at = li * LINE_SIZE + lo;
      for (let i = 0; i < ram.length; i++) if (ram[i] !== p.data[at + i]) found = true;
    });
    return found;
  }

  /** Number of cached lines; zero lets coherent device paths skip snooping. */
  size(): number {
    return this.lineCount;
  }

  /** A coherent agent's read: dirty lines are snooped. */
  snoopRead32(pa: number): number {
    return this.isDirty(pa) ? this.read32(pa) : this.ram.read32(pa);
  }

  /** A coherent agent's bulk read: RAM, with dirty cached lines taking precedence. */
  snoopReadInto(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
    this.ram.readInto(pa, dst, dstOff, len);
    if (this.dirtyCount === 0) return;
    this.forLines(pa, len, (b, p, li) => {
      if (p.state[li] !== DIRTY) return;
      const lo = Math.max(pa, b);
      const hi = Math.min(pa + len, b + LINE_SIZE);
      const at = li * LINE_SIZE;
      dst.set(p.data.subarray(at + lo - b, at + hi - b), dstOff + lo - pa);
    });
  }

  /** A coherent agent's write: RAM is updated and cached copies follow it. */
  snoopWrite(pa: number, bytes: Uint8Array): void {
    this.ram.writeFrom(pa, bytes);
    this.forLines(pa, bytes.length, (b, p, li) => {
      const w = p.epoch === this.epoch ? p : this.writable(pageOf(b));
      const lo = Math.max(pa, b);
      const hi = Math.min(pa + bytes.length, b + LINE_SIZE);
      this.own(w).set(bytes.subarray(lo - pa, hi - pa), li * LINE_SIZE + lo - b);
    });
  }

  /** Dirty line addresses, ascending (memory view highlighting). */
  dirtyLines(): number[] {
    const out: number[] = [];
    for (const [pfn, p] of this.pages) {
      if (p.dirty === 0) continue;
      for (let li = 0; li < LINES_PER_PAGE; li++) if (p.state[li] === DIRTY) out.push(pfn * PAGE_SIZE + li * LINE_SIZE);
    }
    return out.sort((a, b) => a - b);
  }

  snapshot(): CpuCacheSnapshot {
    const lines: CpuCacheSnapshot['lines'] = [];
    for (const [pfn, p] of this.pages) {
      for (let li = 0; li < LINES_PER_PAGE; li++) {
        const s = p.state[li]!;
        if (s !== ABSENT) lines.push([pfn * PAGE_SIZE + li * LINE_SIZE, p.data.slice(li * LINE_SIZE, (li + 1) * LINE_SIZE), s === DIRTY]);
      }
    }
    return { lines };
  }

  restore(s: CpuCacheSnapshot): void {
    this.generation++;
    this.cp = null;
    this.epoch++;
    this.spare = [];
    this.spareData = [];
    this.pages = new Map();
    this.lineCount = this.dirtyCount = 0;
    for (const [b, d, dirty] of s.lines) {
      const p = this.writable(pageOf(b));
      const li = (b & PAGE_MASK) >>> 6;
      this.own(p).set(d, li * LINE_SIZE);
      p.state[li] = dirty ? DIRTY : CLEAN;
      p.lines++;
      this.lineCount++;
      if (dirty) {
        p.dirty++;
        this.dirtyCount++;
      }
    }
  }

  /** Start a copy-on-write checkpoint; it replaces any earlier one. */
  checkpoint(): CpuCacheCheckpoint {
    this.epoch++;
    this.cp = { saved: new Map(), lines: this.lineCount, dirty: this.dirtyCount };
    return this.cp;
  }

  /** Put the cache back as it was at cp (the latest checkpoint), which stays valid for more rollbacks. */
  rollback(cp: CpuCacheCheckpoint): void {
    if (cp !== this.cp) throw new Error('CPU cache rollback to a checkpoint that is not the latest');
    for (const [pfn, orig] of cp.saved) {
      if (!orig) {
        this.spare.push(this.pages.get(pfn)!);
        this.pages.delete(pfn);
        continue;
      }
      const p = this.pages.get(pfn)!;
      if (orig.data === ZERO_PAGE) this.setData(p, ZERO_PAGE);
      else this.own(p).set(orig.data);
      p.state.set(orig.state);
      p.lines = p.dirty = 0;
      for (let li = 0; li < LINES_PER_PAGE; li++) {
        if (p.state[li] !== ABSENT) p.lines++;
        if (p.state[li] === DIRTY) p.dirty++;
      }
    }
    cp.saved.clear();
    this.lineCount = cp.lines;
    this.dirtyCount = cp.dirty;
    this.epoch++;
    this.generation++;
  }
}
