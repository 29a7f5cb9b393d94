/**
 * Helpers for exercising io-pgtable formats without the rest of the kernel: a table allocator that
 * tracks every table (leaks, double frees, walks of freed tables), a port straight onto RAM for
 * benchmarks, and a seeded interleaver that steps several CPUs' operations at their preemption points.
 */
import { runOp, type Op } from '../core/coop';
import { Rng } from '../core/rng';
import { Bus } from '../mem/bus';
import { CpuCache } from '../mem/cpu-cache';
import { SparseRam } from '../mem/ram';
import { EEXIST } from './errno';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, SZ_4K, type IommuFlushOps, type IoPgtableOps, type IommuIotlbGather, type PgtableAllocator, type PgtableOwner, type PartialUnmap } from './io-pgtable';
import { targetPort, type KernelPort } from './port';

interface LiveTable {
  size: number;
  owner: PgtableOwner;
}

/**
 * Bump allocator with per-size LIFO reuse (the last table freed is the next handed out, as the
 * kernel's per-CPU lists do), so a table freed too early really gets overwritten.
 */
export class TestTableAllocator implements PgtableAllocator {
  readonly live = new Map<number, LiveTable>();
  /** Tables freed and not handed out again. */
  readonly freed = new Set<number>();
  allocs = 0;
  frees = 0;
  /** Fail every allocation (GFP_ATOMIC under pressure). */
  failing = false;
  private readonly reuse = new Map<number, number[]>();
  private next: number;

  constructor(
    base: number,
    private readonly limit: number,
    /** Prepare fresh table memory: zero it in the CPU's view. */
    private readonly prepare: (pa: number, size: number) => void,
  ) {
    this.next = base;
  }

  allocTable(size: number, align: number, owner: PgtableOwner): number | null {
    if (this.failing) return null;
    let pa = this.reuse.get(size)?.pop();
    if (pa === undefined) {
      pa = Math.ceil(this.next / align) * align;
      if (pa + size > this.limit) return null;
      this.next = pa + size;
    }
    this.freed.delete(pa);
    this.prepare(pa, size);
    this.live.set(pa, { size, owner });
    this.allocs++;
    return pa;
  }

  freeTable(pa: number): void {
    const t = this.live.get(pa);
    if (!t) throw new Error(`free of a table that is not allocated: 0x${pa.toString(16)}`);
    this.live.delete(pa);
    this.freed.add(pa);
    let list = this.reuse.get(t.size);
    if (!list) this.reuse.set(t.size, (list = []));
    list.push(pa);
    this.frees++;
  }
}

/** A port straight onto RAM, no CPU cache: the fastest way to drive a format (benchmarks). */
export function ramPort(ram: SparseRam, who = 'cpu0'): KernelPort {
  return targetPort(
    {
      read32: (pa) => ram.read32(pa),
      write32: (pa, value) => ram.write32(pa, value),
      clean() {},
      invalidate() {},
      tick() {},
    },
    who,
  );
}

/**
 * Run several operations to completion, choosing at every preemption point which one steps next
 * from a seeded generator. `stickiness` is the chance the last CPU keeps running, so both long
 * uninterrupted stretches and fine-grained interleavings come up. Returns the results in order.
 */
export function interleave<T>(ops: Op<T>[], seed: number, stickiness = 0.5, maxSteps = 1_000_000): T[] {
  const rng = new Rng(seed);
  const results = new Array<T>(ops.length);
  const live = ops.map((_, i) => i);
  let cur = 0;
  for (let steps = 0; live.length; steps++) {
    if (steps > maxSteps) throw new Error('interleave: no progress (livelock?)');
    if (live.length > 1 && rng.below(1000) >= stickiness * 1000) cur = rng.below(live.length);
    if (cur >= live.length) cur = 0;
    const i = live[cur]!;
    const r = ops[i]!.next();
    if (r.done) {
      results[i] = r.value;
      live.splice(cur, 1);
    }
  }
  return results;
}

/** One translation: a run of IOVA space mapped linearly to PA with one canonical prot. */
export interface Extent {
  iova: number;
  size: number;
  pa: number;
  prot: number;
}

/** Sort and merge adjacent extents that continue each other (same prot, contiguous PA). */
export function normalizeExtents(list: Extent[]): Extent[] {
  const sorted = [...list].sort((a, b) => a.iova - b.iova);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && last.iova + last.size === e.iova && last.pa + last.size === e.pa && last.prot === e.prot) last.size += e.size;
    else out.push({ ...e });
  }
  return out;
}

/** How a format breaks a leaf when part of it is unmapped, and which level a page size lives at. */
export interface SplitRules {
  /** Table level of a leaf of this size (smaller number = nearer the root). */
  levelOf(size: number): number;
  /** Level whose entries can never be tables. */
  lastLevel: number;
  /** Leaf size of the pieces a leaf of size `leaf` becomes when `unmap` bytes inside it go. */
  splitTo(leaf: number, unmap: number): number;
}

interface RefExtent extends Extent {
  /** Hardware leaf size of every piece of this extent. */
  leaf: number;
}

/**
 * The reference: what is mapped, as extents of uniform leaf size. It knows how leaves split, so it
 * can tell which operations have a defined outcome (a map over smaller mappings, for instance, is
 * the caller's bug and its outcome is timing- and history-dependent).
 */
export class RefModel {
  ext: RefExtent[] = [];

  constructor(private readonly rules: SplitRules) {}

  intersecting(iova: number, size: number): RefExtent[] {
    return this.ext.filter((e) => e.iova < iova + size && iova < e.iova + e.size);
  }

  lookup(iova: number): { pa: number; prot: number } | null {
    for (const e of this.ext) if (iova >= e.iova && iova < e.iova + e.size) return { pa: e.pa + (iova - e.iova), prot: e.prot };
    return null;
  }

  covered(iova: number, size: number): boolean {
    let n = 0;
    for (const e of this.intersecting(iova, size)) n += Math.min(e.iova + e.size, iova + size) - Math.max(e.iova, iova);
    return n === size;
  }

  add(iova: number, size: number, pa: number, prot: number, leaf: number): void {
    this.ext.push({ iova, size, pa, prot, leaf });
  }

  /** Remove [iova, iova+size), splitting leaves bigger than the hole the way the format does. */
  remove(iova: number, size: number): void {
    for (const e of this.intersecting(iova, size)) {
      this.ext.splice(this.ext.indexOf(e), 1);
      const lo = Math.max(e.iova, iova);
      const hi = Math.min(e.iova + e.size, iova + size);
      if (size >= e.leaf) {
        this.piece(e, e.iova, lo, e.leaf);
        this.piece(e, hi, e.iova + e.size, e.leaf);
        continue;
      }
      // The leaf holding the hole breaks into smaller leaves; the rest of the extent stays.
      const leafStart = e.iova + Math.floor((iova - e.iova) / e.leaf) * e.leaf;
      this.piece(e, e.iova, leafStart, e.leaf);
      this.piece(e, leafStart + e.leaf, e.iova + e.size, e.leaf);
      this.piece(e, leafStart, leafStart + e.leaf, this.rules.splitTo(e.leaf, size));
      this.remove(iova, size);
    }
  }

  private piece(e: RefExtent, from: number, to: number, leaf: number): void {
    if (to > from) this.ext.push({ iova: from, size: to - from, pa: e.pa + (from - e.iova), prot: e.prot, leaf });
  }

  extents(): Extent[] {
    return normalizeExtents(this.ext.map(({ iova, size, pa, prot }) => ({ iova, size, pa, prot })));
  }
}

/** A format instance under test, with a hardware-style view of its tables supplied by the test. */
export interface PgtableUnderTest {
  ops: IoPgtableOps;
  alloc: TestTableAllocator;
  rules: SplitRules;
  /** Supported page sizes, ascending. */
  sizes: number[];
  partialUnmap: PartialUnmap;
  /** The prot a mapping made with `prot` reads back as (what the descriptor can express). */
  canon(prot: number): number;
  /** Translate one IOVA the way the IOMMU would, from what it can see of memory. */
  walk(iova: number): { pa: number; prot: number } | null;
  /** Every leaf and every table reachable from the pgd. */
  enumerate(): { leaves: Extent[]; tables: number[] };
}

/** A generated operation; the checker turns the raw numbers into aligned, in-window arguments. */
export interface GenOp {
  kind: 'map' | 'unmap';
  size: number;
  slot: number;
  count: number;
  prot: number;
  pa: number;
}

/** __iommu_map's loop: map_pages may map less than asked (end of a table); go on from there. */
export function mapRange(ops: IoPgtableOps, iova: number, pa: number, pgsize: number, count: number, prot: number): { ret: number; mapped: number } {
  const total = pgsize * count;
  let mapped = 0;
  while (mapped < total) {
    const r = runOp(ops.mapPages(iova + mapped, pa + mapped, pgsize, (total - mapped) / pgsize, prot, 'GFP_ATOMIC'));
    mapped += r.mapped;
    if (r.ret) return { ret: r.ret, mapped };
    if (!r.mapped) throw new Error('map_pages made no progress');
  }
  return { ret: 0, mapped };
}

/** __iommu_unmap's loop: stops at the first hole. */
export function unmapRange(ops: IoPgtableOps, iova: number, pgsize: number, count: number, gather: IommuIotlbGather | null = null): number {
  const total = pgsize * count;
  let unmapped = 0;
  while (unmapped < total) {
    const n = runOp(ops.unmapPages(iova + unmapped, pgsize, (total - unmapped) / pgsize, gather));
    if (!n) break;
    unmapped += n;
  }
  return unmapped;
}

const hx = (v: number): string => `0x${v.toString(16)}`;

/**
 * Drives a format with generated operations and checks each against the reference: return values,
 * translations (format's iova_to_phys and the test's hardware walk) near the operation, and every
 * few operations the whole table (all leaves, all tables accounted for, none freed but reachable).
 */
export class PgtableChecker {
  readonly ref: RefModel;
  ops = 0;
  skipped = 0;
  /** Outcomes seen, by kind: shows the generator reaches the interesting cases. */
  readonly seen = new Map<string, number>();

  private note(k: string): void {
    this.seen.set(k, (this.seen.get(k) ?? 0) + 1);
  }

  constructor(
    private readonly put: PgtableUnderTest,
    private readonly window: { base: number; size: number },
    private readonly paWindow: { base: number; size: number },
  ) {
    // The reference keeps output addresses across splits, as 'split' and 'refuse' do.
    if (put.partialUnmap === 'split-upstream') throw new Error("PgtableChecker: 'split-upstream' loses output addresses on a split; its reference does not model that");
    this.ref = new RefModel(put.rules);
  }

  apply(op: GenOp): void {
    const { ops, rules, sizes } = this.put;
    const s = sizes[op.size % sizes.length]!;
    const iova = this.window.base + Math.floor(((op.slot * 0x1000) % this.window.size) / s) * s;
    let count = Math.max(1, op.count);
    while (count > 1 && iova + count * s > this.window.base + this.window.size) count--;
    const len = count * s;
    const pa = this.paWindow.base + Math.floor((op.pa % (this.paWindow.size - len + 1)) / s) * s;
    const E = this.ref.intersecting(iova, len);
    const what = `${op.kind} ${hx(iova)} ${count} x ${hx(s)}`;

    if (op.kind === 'map') {
      if (!E.length) {
        const r = mapRange(ops, iova, pa, s, count, op.prot);
        if (r.ret || r.mapped !== len) throw new Error(`${what}: expected success, got ${r.ret} (${hx(r.mapped)} mapped)`);
        this.ref.add(iova, len, pa, this.put.canon(op.prot), s);
        this.note(`map ${hx(s)}`);
      } else if (count === 1 && E.every((e) => rules.levelOf(e.leaf) <= rules.levelOf(s))) {
        const r = mapRange(ops, iova, pa, s, 1, op.prot);
        if (r.ret !== -EEXIST || r.mapped) throw new Error(`${what}: expected -EEXIST, got ${r.ret}`);
        this.note('map -EEXIST');
      } else {
        this.skipped++;
        return;
      }
    } else {
      if (count > 1 && !(this.ref.covered(iova, len) && E.every((e) => e.leaf === s))) count = 1;
      const big = this.ref.intersecting(iova, count * s).find((e) => e.leaf > s);
      const n = unmapRange(ops, iova, s, count);
      if (big) {
        const want = this.put.partialUnmap === 'split' ? s : 0;
        if (n !== want) throw new Error(`${what}: partial unmap of a ${hx(big.leaf)} leaf returned ${hx(n)}, expected ${hx(want)}`);
        if (n) this.ref.remove(iova, s);
        this.note(`partial unmap ${hx(s)} of ${hx(big.leaf)}`);
      } else if (this.ref.covered(iova, count * s)) {
        if (n !== count * s) throw new Error(`${what}: unmap of a mapped range returned ${hx(n)}`);
        this.ref.remove(iova, count * s);
        this.note(E.some((e) => e.leaf < s) ? `unmap ${hx(s)} over smaller leaves` : `unmap ${hx(s)}`);
      } else if (rules.levelOf(s) === rules.lastLevel) {
        if (n !== 0) throw new Error(`${what}: unmap with holes at the last level returned ${hx(n)}`);
        this.note('unmap hole');
      } else if (n === s) {
        // A table-level unmap over a table that is not full: the whole table goes (seed 002, case A).
        this.ref.remove(iova, s);
        this.note(`unmap ${hx(s)} over a table with holes`);
      } else if (n !== 0) {
        throw new Error(`${what}: returned ${hx(n)}`);
      }
    }
    this.ops++;
    const probe = (op.pa % Math.max(1, len / 0x1000)) * 0x1000;
    this.spot([iova - 0x1000, iova, iova + probe, iova + len - 0x1000, iova + len], what);
    if (this.ops % 8 === 0) this.checkAll(what);
  }

  /** The format's iova_to_phys and the hardware walk agree with the reference at these IOVAs. */
  spot(iovas: number[], what: string): void {
    for (const iova of iovas) {
      if (iova < this.window.base || iova >= this.window.base + this.window.size) continue;
      const want = this.ref.lookup(iova);
      const got = runOp(this.put.ops.iovaToPhys(iova));
      if (got !== (want ? want.pa : 0)) throw new Error(`after ${what}: iova_to_phys(${hx(iova)}) = ${hx(got)}, expected ${want ? hx(want.pa) : 0}`);
      const hw = this.put.walk(iova);
      if ((hw?.pa ?? null) !== (want?.pa ?? null) || (hw && hw.prot !== want?.prot)) {
        throw new Error(`after ${what}: walker sees ${hx(iova)} -> ${hw ? `${hx(hw.pa)} prot ${hw.prot}` : 'fault'}, expected ${want ? `${hx(want.pa)} prot ${want.prot}` : 'fault'}`);
      }
    }
  }

  /** Whole-table check: leaves equal the reference; live tables are exactly the reachable ones. */
  checkAll(what: string): void {
    const { leaves, tables } = this.put.enumerate();
    const got = normalizeExtents(leaves);
    const want = this.ref.extents();
    const fmt = (l: Extent[]): string => l.map((e) => `${hx(e.iova)}+${hx(e.size)}->${hx(e.pa)}/${e.prot}`).join(' ');
    if (fmt(got) !== fmt(want)) throw new Error(`after ${what}: tables map\n  ${fmt(got)}\nexpected\n  ${fmt(want)}`);
    const reachable = new Set([this.put.ops.pgd, ...tables]);
    for (const t of reachable) if (!this.put.alloc.live.has(t)) throw new Error(`after ${what}: reachable table ${hx(t)} is not allocated (freed: ${this.put.alloc.freed.has(t)})`);
    for (const t of this.put.alloc.live.keys()) if (!reachable.has(t)) throw new Error(`after ${what}: table ${hx(t)} leaked`);
  }

  /** Unmap everything the reference holds, leaf by leaf; nothing may translate; free leaves no table. */
  teardown(): void {
    for (const e of [...this.ref.ext]) {
      const n = unmapRange(this.put.ops, e.iova, e.leaf, e.size / e.leaf);
      if (n !== e.size) throw new Error(`teardown: unmap ${hx(e.iova)}+${hx(e.size)} returned ${hx(n)}`);
    }
    this.ref.ext = [];
    this.checkAll('teardown');
    runOp(this.put.ops.free());
    if (this.put.alloc.live.size) throw new Error(`free left ${this.put.alloc.live.size} tables allocated`);
  }
}

/** What the format tests drive a page table over: a bus and RAM, a table allocator, TLB callbacks. */
export interface RecordingEnv {
  ram: SparseRam;
  cache: CpuCache;
  bus: Bus;
  alloc: TestTableAllocator;
  tlb: IommuFlushOps;
  /** Table frees and TLB callbacks, in the order the format made them. */
  events: string[];
}

/**
 * A fresh environment whose table memory is garbage in RAM (0x55.. decodes as valid descriptors in
 * both formats) and zeroes in the CPU's cache, so a format that forgets a clean is caught, and
 * whose frees and TLB callbacks are recorded.
 */
export function recordingEnv(base: number, size: number): RecordingEnv {
  const ram = new SparseRam(base, size);
  const cache = new CpuCache(ram);
  const bus = new Bus(ram, cache);
  const events: string[] = [];
  const alloc = new TestTableAllocator(base, base + size, (pa, len) => {
    ram.writeFrom(pa, new Uint8Array(len).fill(0x55));
    cache.write(pa, new Uint8Array(len));
  });
  const free = alloc.freeTable.bind(alloc);
  alloc.freeTable = (pa) => {
    events.push(`free ${pa.toString(16)}`);
    free(pa);
  };
  const tlb: IommuFlushOps = {
    *tlbFlushAll() {
      events.push('flush-all');
    },
    *tlbFlushWalk(iova, len, granule) {
      events.push(`flush-walk ${iova.toString(16)} ${len.toString(16)} ${granule.toString(16)}`);
    },
    *tlbAddPage(gather, iova, granule) {
      events.push(`add-page ${iova.toString(16)} ${granule.toString(16)}`);
      if (gather) yield* gather.addPage(iova, granule, function* () {});
    },
  };
  return { ram, cache, bus, alloc, tlb, events };
}

/**
 * The upstream selftest's walk through every page size of put, the i-th mapped at base(i) -> pa(i):
 * map and translate (the format's view and the hardware's); -EEXIST for every size up to it over
 * the mapping; a 4 KiB hole in each larger leaf leaves the rest and can be mapped again; full
 * unmaps translate nothing; the freed table tree leaks nothing. Throws at the first difference.
 */
export function selftestPageSizes(put: PgtableUnderTest, base: (i: number) => number, pa: (i: number) => number): void {
  const rw = IOMMU_READ | IOMMU_WRITE;
  const ops = put.ops;
  const tr = (iova: number): number => runOp(ops.iovaToPhys(iova));
  const expectEq = (what: string, got: unknown, want: unknown): void => {
    if (got !== want) throw new Error(`${what}: got ${String(got)}, expected ${String(want)}`);
  };
  put.sizes.forEach((s, i) => {
    const r = runOp(ops.mapPages(base(i), pa(i), s, 1, rw | IOMMU_CACHE, 'GFP_KERNEL'));
    expectEq(`map ${hx(s)} ret`, r.ret, 0);
    expectEq(`map ${hx(s)} mapped`, r.mapped, s);
    for (const off of [0, 42, s / 2, s - 1]) {
      expectEq(`iova_to_phys ${hx(base(i) + off)}`, tr(base(i) + off), pa(i) + off);
      expectEq(`walk ${hx(base(i) + off)}`, put.walk(base(i) + off)?.pa, pa(i) + off);
    }
    for (const t of put.sizes.filter((t) => t <= s)) expectEq(`map ${hx(t)} over ${hx(s)}`, runOp(ops.mapPages(base(i), pa(i), t, 1, rw, 'GFP_KERNEL')).ret, -EEXIST);
  });
  put.sizes.forEach((s, i) => {
    if (s === SZ_4K) return;
    const hole = base(i) + s / 2;
    expectEq(`unmap hole in ${hx(s)}`, runOp(ops.unmapPages(hole, SZ_4K, 1, null)), SZ_4K);
    expectEq(`iova_to_phys hole ${hx(hole)}`, tr(hole), 0);
    expectEq(`walk hole ${hx(hole)}`, put.walk(hole), null);
    for (const off of [0, s / 2 - 1, s / 2 + SZ_4K, s - 1]) expectEq(`iova_to_phys ${hx(base(i) + off)} beside the hole`, tr(base(i) + off), pa(i) + off);
    expectEq(`remap hole ${hx(hole)}`, runOp(ops.mapPages(hole, pa(i) + s / 2, SZ_4K, 1, rw, 'GFP_KERNEL')).ret, 0);
    expectEq(`iova_to_phys ${hx(hole + 7)}`, tr(hole + 7), pa(i) + s / 2 + 7);
  });
  put.sizes.forEach((s, i) => {
    expectEq(`unmap ${hx(s)}`, runOp(ops.unmapPages(base(i), s, 1, null)), s);
    for (const off of [0, s / 2, s - 1]) expectEq(`iova_to_phys ${hx(base(i) + off)} after unmap`, tr(base(i) + off), 0);
  });
  expectEq('leaves left', put.enumerate().leaves.length, 0);
  runOp(ops.free());
  expectEq('tables left after free', put.alloc.live.size, 0);
}
