import type { SparseRam } from './ram';

export const LINE_SIZE = 64;
const LINE_MASK = LINE_SIZE - 1;

interface Line {
  data: Uint8Array;
  dirty: boolean;
}

export interface CpuCacheSnapshot {
  lines: [number, Uint8Array, boolean][];
}

/**
 * The CPU's write-back data cache in front of RAM. CPU loads and stores go through it; devices that
 * are not coherent (a non-coherent IOMMU walker, most DMA masters) read and write RAM directly, so
 * a CPU store is invisible to them until the line is cleaned. Lines are never evicted on their own:
 * the worst case for a driver that forgets to clean, and deterministic.
 */
export class CpuCache {
  private lines = new Map<number, Line>();
  /** Dirty lines held: zero lets device paths skip per-line checks. */
  private dirtyCount = 0;
  /**
   * Bumped by every CPU store, clean, invalidate and restore: what a walker can see may have changed
   * (checkers re-verify cached translations only then).
   */
  generation = 0;

  constructor(private readonly ram: SparseRam) {}

  private line(pa: number): Line {
    const base = pa - (pa & LINE_MASK);
    let l = this.lines.get(base);
    if (!l) {
      l = { data: this.ram.read(base, LINE_SIZE), dirty: false };
      this.lines.set(base, l);
    }
    return l;
  }

  read32(pa: number): number {
    const l = this.line(pa);
    const o = pa & LINE_MASK;
    if (o + 4 <= LINE_SIZE) return (l.data[o]! | (l.data[o + 1]! << 8) | (l.data[o + 2]! << 16) | (l.data[o + 3]! << 24)) >>> 0;
    return (this.read8(pa) | (this.read8(pa + 1) << 8) | (this.read8(pa + 2) << 16) | (this.read8(pa + 3) << 24)) >>> 0;
  }

  write32(pa: number, v: number): void {
    for (let i = 0; i < 4; i++) this.write8(pa + i, (v >>> (8 * i)) & 0xff);
  }

  read8(pa: number): number {
    return this.line(pa).data[pa & LINE_MASK]!;
  }

  write8(pa: number, v: number): void {
    const l = this.line(pa);
    l.data[pa & LINE_MASK] = v & 0xff;
    this.markDirty(l);
  }

  read(pa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; ) {
      const l = this.line(pa + i);
      const o = (pa + i) & LINE_MASK;
      const n = Math.min(len - i, LINE_SIZE - o);
      out.set(l.data.subarray(o, o + n), i);
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
    this.forLines(pa, len, (b, l) => {
      const lo = Math.max(pa, b);
      const hi = Math.min(pa + len, b + LINE_SIZE);
      out.set(l.data.subarray(lo - b, hi - b), lo - pa);
    });
    return out;
  }

  write(pa: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; ) {
      const l = this.line(pa + i);
      const o = (pa + i) & LINE_MASK;
      const n = Math.min(bytes.length - i, LINE_SIZE - o);
      l.data.set(bytes.subarray(i, i + n), o);
      this.markDirty(l);
      i += n;
    }
  }

  /** fn for each cached line overlapping [pa, pa+len), in no particular order (lines are disjoint). */
  private forLines(pa: number, len: number, fn: (base: number, l: Line) => void): void {
    if (len <= 0 || this.lines.size === 0) return;
    const first = pa - (pa & LINE_MASK);
    const end = pa + len;
    // Whichever is shorter: the lines the range spans, or the lines the cache holds.
    if (this.lines.size < (end - first) / LINE_SIZE) {
      for (const [b, l] of this.lines) if (b >= first && b < end) fn(b, l);
      return;
    }
    for (let b = first; b < end; b += LINE_SIZE) {
      const l = this.lines.get(b);
      if (l) fn(b, l);
    }
  }

  /** Write dirty lines back to RAM (dma_sync_*_for_device, DMA_TO_DEVICE). */
  clean(pa: number, len: number): void {
    if (this.dirtyCount === 0) return;
    this.forLines(pa, len, (b, l) => {
      if (l.dirty) {
        this.generation++;
        this.ram.writeFrom(b, l.data);
        l.dirty = false;
        this.dirtyCount--;
      }
    });
  }

  /** Drop lines, discarding dirty data (dma_sync_*_for_cpu after DMA_FROM_DEVICE). */
  invalidate(pa: number, len: number): void {
    this.forLines(pa, len, (b, l) => {
      if (l.dirty) {
        this.dirtyCount--;
        this.generation++;
      }
      this.lines.delete(b);
    });
  }

  /** Clean then invalidate. */
  flush(pa: number, len: number): void {
    this.clean(pa, len);
    this.invalidate(pa, len);
  }

  private markDirty(l: Line): void {
    this.generation++;
    if (!l.dirty) {
      l.dirty = true;
      this.dirtyCount++;
    }
  }

  /** Whether the line holding pa is cached and dirty: the cheap test before hasUncleanedWrite. */
  isDirty(pa: number): boolean {
    return this.dirtyCount > 0 && this.lines.get(pa - (pa & LINE_MASK))?.dirty === true;
  }

  /** Whether any byte of [pa, pa+len) sits in a dirty line whose contents differ from RAM. */
  hasUncleanedWrite(pa: number, len: number): boolean {
    let found = false;
    this.forLines(pa, len, (b, l) => {
      if (found || !l.dirty) return;
      const lo = Math.max(pa, b) - b;
      const hi = Math.min(pa + len, b + LINE_SIZE) - b;
      const ram = this.ram.read(b + lo, hi - lo);
      for (let i = 0; i < ram.length; i++) if (ram[i] !== l.data[lo + i]) found = true;
    });
    return found;
  }

  /** Number of cached lines; zero lets coherent device paths skip snooping. */
  size(): number {
    return this.lines.size;
  }

  /** A coherent agent's read: dirty lines are snooped. */
  snoopRead32(pa: number): number {
    const l = this.lines.get(pa - (pa & LINE_MASK));
    return l && l.dirty ? this.read32(pa) : this.ram.read32(pa);
  }

  /** A coherent agent's bulk read: RAM, with dirty cached lines taking precedence. */
  snoopReadInto(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
    this.ram.readInto(pa, dst, dstOff, len);
    if (this.lines.size === 0) return;
    this.forLines(pa, len, (b, l) => {
      if (!l.dirty) return;
      const lo = Math.max(pa, b);
      const hi = Math.min(pa + len, b + LINE_SIZE);
      dst.set(l.data.subarray(lo - b, hi - b), dstOff + lo - pa);
    });
  }

  /** A coherent agent's write: RAM is updated and cached copies follow it. */
  snoopWrite(pa: number, bytes: Uint8Array): void {
    this.ram.writeFrom(pa, bytes);
    if (this.lines.size === 0) return;
    this.forLines(pa, bytes.length, (b, l) => {
      const lo = Math.max(pa, b);
      const hi = Math.min(pa + bytes.length, b + LINE_SIZE);
      l.data.set(bytes.subarray(lo - pa, hi - pa), lo - b);
    });
  }

  /** Dirty line addresses, ascending (memory view highlighting). */
  dirtyLines(): number[] {
    return [...this.lines].filter(([, l]) => l.dirty).map(([b]) => b).sort((a, b) => a - b);
  }

  snapshot(): CpuCacheSnapshot {
    return { lines: [...this.lines].map(([b, l]) => [b, l.data.slice(), l.dirty]) };
  }

  restore(s: CpuCacheSnapshot): void {
    this.generation++;
    this.lines = new Map(s.lines.map(([b, d, dirty]) => [b, { data: d.slice(), dirty }]));
    this.dirtyCount = s.lines.filter(([, , dirty]) => dirty).length;
  }
}
