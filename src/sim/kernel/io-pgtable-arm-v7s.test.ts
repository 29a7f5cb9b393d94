import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runOp, type Op } from '../core/coop';
import { Bus } from '../mem/bus';
import { CpuCache } from '../mem/cpu-cache';
import { SparseRam } from '../mem/ram';
import { EEXIST, EINVAL, ENOMEM, ERANGE } from './errno';
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_MTK_EXT,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_NO_PERMS,
  IommuIotlbGather,
  IoPgtableHang,
  SZ_16M,
  SZ_1M,
  SZ_4K,
  SZ_64K,
  type IoPgtableCfg,
  type IoPgtableVariant,
} from './io-pgtable';
import { armV7sAllocPgtable } from './io-pgtable-arm-v7s';
import { PgtableChecker, TestTableAllocator, interleave, recordingEnv, mapRange, selftestPageSizes, unmapRange, type Extent, type GenOp, type PgtableUnderTest } from './io-pgtable-testkit';
import { busPort } from './port';

const RAM_BASE = 0x40000000;
const RAM_SIZE = 0x10000000;
const RW = IOMMU_READ | IOMMU_WRITE;
const MTK_QUIRKS = IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT;

/* ---------- An independent hardware walker: decodes raw short descriptors the way the MMU does. ---------- */

interface HwLeaf {
  pa: number;
  prot: number;
  /** Bytes the descriptor covers (64K / 16M for replicated entries). */
  span: number;
}

function mtkHigh(pte: number): number {
  return (pte & (1 << 9) ? 2 ** 32 : 0) + (pte & (1 << 4) ? 2 ** 33 : 0) + (pte & (1 << 5) ? 2 ** 34 : 0);
}

const bit = (v: number, n: number): number => (v >>> n) & 1;

/** Decode one leaf (L1 section/supersection or L2 small/large page); throws on encodings Linux never writes. */
function decodeLeaf(pte: number, lvl: 1 | 2, quirks: number): HwLeaf {
  const noPerms = (quirks & IO_PGTABLE_QUIRK_NO_PERMS) !== 0;
  const mtk = (quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) !== 0;
  let af: number, ap1: number, ap2: number, tex: number, xn: number, s: number, ng: number, span: number, base: number;
  if (lvl === 1) {
    const superS = bit(pte, 18) === 1;
    span = superS ? SZ_16M : SZ_1M;
    base = superS ? (pte & 0xff000000) >>> 0 : (pte & 0xfff00000) >>> 0;
    [af, ap1, tex, ap2, s, ng, xn] = [bit(pte, 10), bit(pte, 11), (pte >>> 12) & 7, bit(pte, 15), bit(pte, 16), bit(pte, 17), bit(pte, 4)];
    if (bit(pte, 19) !== (quirks & IO_PGTABLE_QUIRK_ARM_NS ? 1 : 0)) throw new Error(`section NS bit wrong: ${pte.toString(16)}`);
  } else if ((pte & 3) === 1) {
    span = SZ_64K;
    base = (pte & 0xffff0000) >>> 0;
    [af, ap1, ap2, s, ng, tex, xn] = [bit(pte, 4), bit(pte, 5), bit(pte, 9), bit(pte, 10), bit(pte, 11), (pte >>> 12) & 7, bit(pte, 15)];
  } else {
    span = SZ_4K;
    base = (pte & 0xfffff000) >>> 0;
    [xn, af, ap1, tex, ap2, s, ng] = [pte & 1, bit(pte, 4), bit(pte, 5), (pte >>> 6) & 7, bit(pte, 9), bit(pte, 10), bit(pte, 11)];
  }
  if (!s || !ng) throw new Error(`leaf without S/nG: ${pte.toString(16)}`);
  const b = bit(pte, 2);
  const c = bit(pte, 3);
  let mem: number;
  if (tex === 0) {
    if (!b || c) throw new Error(`device leaf with B=${b} C=${c}`);
    mem = IOMMU_MMIO;
  } else {
    if (tex !== 1 || b !== c) throw new Error(`normal leaf with TEX=${tex} B=${b} C=${c}`);
    mem = c ? IOMMU_CACHE : 0;
  }
  let prot = IOMMU_READ | mem;
  if (!noPerms) {
    if (!af) throw new Error(`leaf without AF: ${pte.toString(16)}`);
    if (!ap2) prot |= IOMMU_WRITE;
    if (!ap1) prot |= IOMMU_PRIV;
    if (xn) prot |= IOMMU_NOEXEC;
  }
  return { pa: base + (mtk ? mtkHigh(pte) : 0), prot, span };
}

function canonProt(prot: number, quirks: number): number {
  const mem = prot & IOMMU_MMIO ? IOMMU_MMIO : prot & IOMMU_CACHE ? IOMMU_CACHE : 0;
  if (quirks & IO_PGTABLE_QUIRK_NO_PERMS) return IOMMU_READ | mem;
  return IOMMU_READ | (prot & (IOMMU_WRITE | IOMMU_PRIV | IOMMU_NOEXEC)) | mem;
}

class V7sWalker {
  constructor(
    private readonly rd: (pa: number) => number,
    private readonly pgd: number,
    private readonly l1Ptes: number,
    private readonly quirks: number,
  ) {}

  private l2Base(l1: number): number {
    if (bit(l1, 3) !== (this.quirks & IO_PGTABLE_QUIRK_ARM_NS ? 1 : 0)) throw new Error(`table NS bit wrong: ${l1.toString(16)}`);
    return (l1 & 0xfffffc00) >>> 0;
  }

  walk(iova: number): { pa: number; prot: number } | null {
    const l1 = this.rd(this.pgd + (Math.floor(iova / SZ_1M) % this.l1Ptes) * 4);
    if ((l1 & 3) === 0) return null;
    if ((l1 & 3) === 3) throw new Error(`reserved L1 descriptor ${l1.toString(16)}`);
    let leaf: HwLeaf;
    if ((l1 & 3) === 1) {
      const l2 = this.rd(this.l2Base(l1) + ((iova >>> 12) & 0xff) * 4);
      if ((l2 & 3) === 0) return null;
      leaf = decodeLeaf(l2, 2, this.quirks);
    } else {
      leaf = decodeLeaf(l1, 1, this.quirks);
    }
    return { pa: leaf.pa + (iova % leaf.span), prot: leaf.prot };
  }

  /** All leaves and tables; replicated groups must hold 16 identical entries. */
  enumerate(): { leaves: Extent[]; tables: number[] } {
    const leaves: Extent[] = [];
    const tables: number[] = [];
    const group = (base: number, idx: number, pte: number, what: string): void => {
      const first = idx - (idx % 16);
      for (let k = 0; k < 16; k++) {
        const other = this.rd(base + (first + k) * 4);
        if (other !== pte) throw new Error(`${what} group at entry ${first} not replicated: ${other.toString(16)} vs ${pte.toString(16)}`);
      }
    };
    for (let i = 0; i < this.l1Ptes; i++) {
      const l1 = this.rd(this.pgd + i * 4);
      if ((l1 & 3) === 0) continue;
      if ((l1 & 3) === 1) {
        const t = this.l2Base(l1);
        tables.push(t);
        for (let j = 0; j < 256; j++) {
          const l2 = this.rd(t + j * 4);
          if ((l2 & 3) === 0) continue;
          const leaf = decodeLeaf(l2, 2, this.quirks);
          if (leaf.span === SZ_64K) group(t, j, l2, 'large page');
          leaves.push({ iova: i * SZ_1M + j * SZ_4K, size: SZ_4K, pa: leaf.pa + ((j * SZ_4K) % leaf.span), prot: leaf.prot });
        }
      } else {
        const leaf = decodeLeaf(l1, 1, this.quirks);
        if (leaf.span === SZ_16M) group(this.pgd, i, l1, 'supersection');
        leaves.push({ iova: i * SZ_1M, size: SZ_1M, pa: leaf.pa + ((i * SZ_1M) % leaf.span), prot: leaf.prot });
      }
    }
    return { leaves, tables };
  }
}

/* ---------- Harness ---------- */

interface Harness {
  ram: SparseRam;
  cache: CpuCache;
  bus: Bus;
  cfg: IoPgtableCfg;
  alloc: TestTableAllocator;
  ops: ReturnType<typeof mustAlloc>;
  cpu1: ReturnType<typeof mustAlloc>;
  walker: V7sWalker;
  warnings: string[];
  events: string[];
  put: PgtableUnderTest;
}

function mustAlloc(cfg: IoPgtableCfg, env: Parameters<typeof armV7sAllocPgtable>[1]) {
  const ops = armV7sAllocPgtable(cfg, env);
  if (!ops) throw new Error('v7s refused the config');
  return ops;
}

function harness(o: { coherent?: boolean; variant?: Partial<IoPgtableVariant>; quirks?: number; ias?: number; oas?: number } = {}): Harness {
  const coherent = o.coherent ?? false;
  const { ram, cache, bus, alloc, tlb, events } = recordingEnv(RAM_BASE, RAM_SIZE);
  const quirks = o.quirks ?? 0;
  const cfg: IoPgtableCfg = {
    quirks,
    pgsizeBitmap: SZ_4K | SZ_64K | SZ_1M | SZ_16M,
    ias: o.ias ?? 32,
    oas: o.oas ?? 32,
    coherentWalk: coherent,
    tlb,
  };
  const warnings: string[] = [];
  const env = { port: busPort(bus, () => {}, 'cpu0'), alloc, variant: o.variant, warn: (m: string) => warnings.push(m) };
  const ops = mustAlloc(cfg, env);
  const cpu1 = ops.bind(busPort(bus, () => {}, 'cpu1'));
  const l1Ptes = 1 << (cfg.ias - 20);
  const walker = new V7sWalker((pa) => bus.devRead32(pa, coherent, 'iommu'), ops.pgd, l1Ptes, quirks);
  const put: PgtableUnderTest = {
    ops,
    alloc,
    rules: {
      levelOf: (size) => (size >= SZ_1M ? 1 : 2),
      lastLevel: 2,
      splitTo: (leaf, unmap) => (leaf === SZ_16M ? SZ_1M : leaf === SZ_1M && unmap === SZ_64K ? SZ_64K : SZ_4K),
    },
    sizes: [SZ_4K, SZ_64K, SZ_1M, SZ_16M],
    partialUnmap: o.variant?.partialUnmap ?? 'split',
    canon: (p) => canonProt(p, quirks),
    walk: (iova) => walker.walk(iova),
    enumerate: () => walker.enumerate(),
  };
  return { ram, cache, bus, cfg, alloc, ops, cpu1, walker, warnings, events, put };
}

const protArb = fc
  .record({ r: fc.boolean(), w: fc.boolean(), cache: fc.boolean(), noexec: fc.boolean(), mmio: fc.boolean(), priv: fc.boolean() })
  .filter((p) => p.r || p.w)
  .map(
    (p) =>
      (p.r ? IOMMU_READ : 0) |
      (p.w ? IOMMU_WRITE : 0) |
      (p.cache ? IOMMU_CACHE : 0) |
      (p.noexec ? IOMMU_NOEXEC : 0) |
      (p.mmio && !p.cache ? IOMMU_MMIO : 0) |
      (p.priv ? IOMMU_PRIV : 0),
  );

const opArb: fc.Arbitrary<GenOp> = fc.record({
  kind: fc.constantFrom<'map' | 'unmap'>('map', 'map', 'unmap'),
  size: fc.nat(3),
  slot: fc.oneof(fc.nat(47), fc.nat(0x3fff)),
  count: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4 })),
  prot: protArb,
  pa: fc.nat(),
});

let totalOps = 0;
const seen = new Map<string, number>();

function propertyRun(name: string, o: Parameters<typeof harness>[0], pa: { base: number; size: number }, numRuns: number): void {
  it(`${name}: random map/unmap sequences match the reference (${numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 150, size: 'max' }), (seq) => {
        const h = harness(o);
        const chk = new PgtableChecker(h.put, { base: 0x10000000, size: 4 * SZ_16M }, pa);
        for (const op of seq) chk.apply(op);
        chk.checkAll('end');
        chk.teardown();
        totalOps += chk.ops;
        for (const [k, v] of chk.seen) seen.set(k, (seen.get(k) ?? 0) + v);
      }),
      { numRuns },
    );
  });
}

describe('io-pgtable-arm-v7s: properties against a reference model', () => {
  propertyRun('non-coherent walker, split', { coherent: false }, { base: 0x80000000, size: 0x40000000 }, 800);
  propertyRun('coherent walker, split', { coherent: true }, { base: 0x80000000, size: 0x40000000 }, 400);
  propertyRun('refuse partial unmaps', { variant: { partialUnmap: 'refuse' } }, { base: 0x80000000, size: 0x40000000 }, 400);
  propertyRun('MediaTek 35-bit PA, NS, no perms', { quirks: MTK_QUIRKS, oas: 35 }, { base: 0x100000000, size: 0x700000000 }, 400);
  it('counted the operations', () => {
    console.log(`v7s property operations: ${totalOps}`, Object.fromEntries(seen));
    expect(totalOps).toBeGreaterThan(50_000);
  });
});

const SIZES = [SZ_4K, SZ_64K, SZ_1M, SZ_16M];
const tr = (h: Harness, iova: number): number => runOp(h.ops.iovaToPhys(iova));

describe('io-pgtable-arm-v7s: upstream selftest behaviour', () => {
  it('maps and translates every page size; -EEXIST over a mapping; partial unmaps keep the rest; remap; full unmap; no leaks', () => {
    const h = harness();
    expect(h.put.sizes).toEqual(SIZES);
    selftestPageSizes(
      h.put,
      (i) => 0x20000000 + i * 2 * SZ_16M,
      (i) => 0x80000000 + i * SZ_16M,
    );
  });

  it('rejects bad arguments: -ERANGE, -EINVAL, -ENOMEM, unmap of nothing', () => {
    const h = harness();
    expect(runOp(h.ops.mapPages(2 ** 32, 0x80000000, SZ_4K, 1, RW, 'GFP_KERNEL')).ret).toBe(-ERANGE);
    expect(runOp(h.ops.mapPages(0x1000, 2 ** 32, SZ_4K, 1, RW, 'GFP_KERNEL')).ret).toBe(-ERANGE);
    expect(runOp(h.ops.mapPages(0x1000, 0x80000000, SZ_4K, 1, IOMMU_CACHE, 'GFP_KERNEL')).ret).toBe(-EINVAL);
    h.alloc.failing = true;
    expect(runOp(h.ops.mapPages(0x1000, 0x80000000, SZ_4K, 1, RW, 'GFP_ATOMIC')).ret).toBe(-ENOMEM);
    h.alloc.failing = false;
    h.warnings.length = 0;
    expect(runOp(h.ops.unmapPages(0x1000, SZ_4K, 1, null))).toBe(0);
    expect(h.warnings.some((w) => w.includes('unmap of unmapped'))).toBe(true);
    expect(mapRange(h.ops, 0x100000, 0x80000000, SZ_4K, 3, RW)).toEqual({ ret: 0, mapped: 3 * SZ_4K });
    expect(unmapRange(h.ops, 0x100000, SZ_4K, 4)).toBe(3 * SZ_4K);
  });

  it('refuses configs v7s cannot serve and narrows the page sizes', () => {
    const alloc = new TestTableAllocator(RAM_BASE, RAM_BASE + RAM_SIZE, () => {});
    const ram = new SparseRam(RAM_BASE, RAM_SIZE);
    const env = { port: busPort(new Bus(ram, new CpuCache(ram)), () => {}), alloc };
    const cfg = (over: Partial<IoPgtableCfg>): IoPgtableCfg => ({ quirks: 0, pgsizeBitmap: 0x7ffff000, ias: 32, oas: 32, coherentWalk: true, tlb: null, ...over });
    expect(armV7sAllocPgtable(cfg({ ias: 33 }), env)).toBeNull();
    expect(armV7sAllocPgtable(cfg({ oas: 33 }), env)).toBeNull();
    expect(armV7sAllocPgtable(cfg({ quirks: IO_PGTABLE_QUIRK_ARM_MTK_EXT }), env)).toBeNull();
    expect(armV7sAllocPgtable(cfg({ quirks: 1 << 7 }), env)).toBeNull();
    const ok = cfg({});
    expect(armV7sAllocPgtable(ok, env)).not.toBeNull();
    expect(ok.pgsizeBitmap).toBe(SZ_4K | SZ_64K | SZ_1M | SZ_16M);
    const mtk = cfg({ quirks: MTK_QUIRKS, ias: 34, oas: 35 });
    const ops = armV7sAllocPgtable(mtk, env);
    expect(ops).not.toBeNull();
    expect(alloc.live.get(ops!.pgd)?.size).toBe(64 * 1024);
  });

  it('produces the TTBR, TCR, PRRR and NMRR values of §3.10', () => {
    const nc = harness({ coherent: false });
    expect(nc.cfg.armV7sCfg).toEqual({ ttbr: nc.ops.pgd | 0x2, tcr: 0, prrr: 0x800b8204, nmrr: 0x40004000 });
    const co = harness({ coherent: true });
    expect(co.cfg.armV7sCfg?.ttbr).toBe(co.ops.pgd | 0x6a);
    const mtk = harness({ quirks: MTK_QUIRKS, oas: 35 });
    expect(mtk.cfg.armV7sCfg?.ttbr).toBe(mtk.ops.pgd);
  });

  it('encodes MediaTek PA bits 32..34 in bits 9, 4, 5', () => {
    const h = harness({ quirks: MTK_QUIRKS, oas: 35 });
    const pa = 0x5_8765_0000;
    expect(runOp(h.ops.mapPages(0x10000000, pa, SZ_64K, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(tr(h, 0x10000000 + 0x1234)).toBe(pa + 0x1234);
    const l1 = h.ram.read32(h.ops.pgd + 0x100 * 4);
    const l2 = h.ram.read32(((l1 & 0xfffffc00) >>> 0) + 0);
    expect(l2 & ((1 << 9) | (1 << 4) | (1 << 5))).toBe((1 << 9) | (1 << 5));
    expect(h.walker.walk(0x10000000 + 0x1234)?.pa).toBe(pa + 0x1234);
  });
});

describe('io-pgtable-arm-v7s: upstream differential regressions', () => {
  const l1 = (h: Harness, iova: number): number => h.ram.read32(h.ops.pgd + Math.floor(iova / SZ_1M) * 4);
  const l2 = (h: Harness, iova: number): number => h.bus.devRead32(((l1(h, iova) & 0xfffffc00) >>> 0) + ((iova >>> 12) & 0xff) * 4, false, 'iommu');

  it('free_io_pgtable_ops issues tlb_flush_all before freeing the tables', () => {
    const h = harness();
    mapRange(h.ops, 0x100000, 0x80000000, SZ_4K, 2, RW);
    h.events.length = 0;
    runOp(h.ops.free());
    expect(h.events).toEqual(['flush-all', expect.stringMatching(/^free /), `free ${h.ops.pgd.toString(16)}`]);
  });

  it('map_pages: pgcount 0 is -EINVAL; pgcount > 1 of 4 KiB maps them all', () => {
    const h = harness();
    expect(runOp(h.ops.mapPages(0x100000, 0x80000000, SZ_4K, 0, RW, 'GFP_KERNEL'))).toEqual({ ret: -EINVAL, mapped: 0 });
    expect(h.alloc.live.size).toBe(1);
    expect(runOp(h.ops.mapPages(0x1ff000, 0x80000000, SZ_4K, 3, RW, 'GFP_KERNEL'))).toEqual({ ret: 0, mapped: 3 * SZ_4K });
    for (let k = 0; k < 3; k++) expect(tr(h, 0x1ff000 + k * SZ_4K + 9)).toBe(0x80000000 + k * SZ_4K + 9);
  });

  it('map_pages of a sub-4 KiB size walks as upstream: an empty L1 slot gets an L2 table, then -EINVAL at level 2', () => {
    const h = harness();
    h.warnings.length = 0;
    expect(runOp(h.ops.mapPages(0x300000, 0x80000000, 0x800, 1, RW, 'GFP_KERNEL'))).toEqual({ ret: -EINVAL, mapped: 0 });
    expect(l1(h, 0x300000) & 3).toBe(1);
    expect(h.alloc.live.size).toBe(2);
    expect(h.warnings).toEqual([expect.stringMatching(/below the smallest page/)]);
    expect(runOp(h.ops.mapPages(0x400000, 0x80400000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(h.ops.mapPages(0x400000, 0x80000000, 0x800, 1, RW, 'GFP_KERNEL')).ret).toBe(-EEXIST);
  });

  it('a map with neither READ nor WRITE: -EINVAL (v6.12+); the split-era variant returns 0 and maps nothing', () => {
    expect(runOp(harness().ops.mapPages(0x1000, 0x80000000, SZ_4K, 1, IOMMU_CACHE, 'GFP_KERNEL'))).toEqual({ ret: -EINVAL, mapped: 0 });
    const old = harness({ variant: { partialUnmap: 'split-upstream' } });
    expect(runOp(old.ops.mapPages(0x1000, 0x80000000, SZ_4K, 1, IOMMU_CACHE, 'GFP_KERNEL'))).toEqual({ ret: 0, mapped: 0 });
    expect(tr(old, 0x1000)).toBe(0);
    expect(old.alloc.live.size).toBe(1);
  });

  it('split-upstream: a 4 KiB unmap inside a section rebuilds the rest of it with the output address lost', () => {
    const h = harness({ variant: { partialUnmap: 'split-upstream' } });
    expect(runOp(h.ops.mapPages(0x500000, 0x80500000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(h.ops.unmapPages(0x503000, SZ_4K, 1, null))).toBe(SZ_4K);
    // Small-page attributes of the section, plus only the offset into it.
    const attrs = 0xc00 | (1 << 6) | (1 << 5) | (1 << 4) | 2;
    for (const k of [0, 2, 4, 255]) expect(l2(h, 0x500000 + k * SZ_4K) >>> 0).toBe((attrs + k * SZ_4K) >>> 0);
    expect(l2(h, 0x503000)).toBe(0);
    expect(tr(h, 0x505007)).toBe(0x5007);
    // 'split' keeps the section's PA.
    const fixed = harness();
    expect(runOp(fixed.ops.mapPages(0x500000, 0x80500000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(fixed.ops.unmapPages(0x503000, SZ_4K, 1, null))).toBe(SZ_4K);
    expect(tr(fixed, 0x505007)).toBe(0x80505007);
  });

  it('split-upstream with the MediaTek quirks: the split drops PA bits 32..34', () => {
    const h = harness({ quirks: MTK_QUIRKS, oas: 35, variant: { partialUnmap: 'split-upstream' } });
    expect(runOp(h.ops.mapPages(0x600000, 0x5_8060_0000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(l1(h, 0x600000) & ((1 << 9) | (1 << 4) | (1 << 5))).toBe((1 << 9) | (1 << 5));
    expect(runOp(h.ops.unmapPages(0x601000, SZ_4K, 1, null))).toBe(SZ_4K);
    const e = l2(h, 0x602000);
    expect(e & ((1 << 9) | (1 << 4) | (1 << 5))).toBe(0);
    expect(tr(h, 0x602010)).toBe(0x2010);
    const fixed = harness({ quirks: MTK_QUIRKS, oas: 35 });
    expect(runOp(fixed.ops.mapPages(0x600000, 0x5_8060_0000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(fixed.ops.unmapPages(0x601000, SZ_4K, 1, null))).toBe(SZ_4K);
    expect(tr(fixed, 0x602010)).toBe(0x5_8060_2010);
  });

  it('split-upstream: a 4 KiB unmap in the 2nd..16th MiB of a supersection splits it into 16 sections, then returns 0', () => {
    const h = harness({ variant: { partialUnmap: 'split-upstream' } });
    expect(runOp(h.ops.mapPages(0x1000000, 0x81000000, SZ_16M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(h.ops.unmapPages(0x1203000, SZ_4K, 1, null))).toBe(0);
    for (let k = 0; k < 16; k++) {
      expect(l1(h, 0x1000000 + k * SZ_1M) & ((1 << 18) | 3)).toBe(2);
      expect(tr(h, 0x1000000 + k * SZ_1M + 0x3000)).toBe(0x81000000 + k * SZ_1M + 0x3000);
    }
    expect(h.alloc.live.size).toBe(1);
    // In the first MiB the group's first entry is the entry itself: the split goes on (and loses the PA).
    expect(runOp(h.ops.unmapPages(0x1003000, SZ_4K, 1, null))).toBe(SZ_4K);
    const fixed = harness();
    expect(runOp(fixed.ops.mapPages(0x1000000, 0x81000000, SZ_16M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(fixed.ops.unmapPages(0x1203000, SZ_4K, 1, null))).toBe(SZ_4K);
    expect(tr(fixed, 0x1204000)).toBe(0x81204000);
  });

  it('split-upstream: a sub-4 KiB unmap inside a section never terminates: reported as a hang, not run forever', () => {
    const h = harness({ variant: { partialUnmap: 'split-upstream' } });
    expect(runOp(h.ops.mapPages(0x700000, 0x80700000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    h.warnings.length = 0;
    expect(() => runOp(h.ops.unmapPages(0x700800, 0x800, 1, null))).toThrow(IoPgtableHang);
    expect(h.warnings).toEqual([expect.stringMatching(/arm_v7s_split_blk_unmap never terminates/)]);
    for (const v of ['split', 'refuse'] as const) {
      const o = harness({ variant: { partialUnmap: v } });
      expect(runOp(o.ops.mapPages(0x700000, 0x80700000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
      expect(runOp(o.ops.unmapPages(0x700800, 0x800, 1, null))).toBe(0);
      expect(tr(o, 0x700800)).toBe(0x80700800);
    }
  });
});

describe('io-pgtable-arm-v7s: TLB maintenance and table freeing', () => {
  it('a block mapped over an empty table: walk flush, then the table is freed (seed 002, case B)', () => {
    const h = harness();
    expect(runOp(h.ops.mapPages(0x300000, 0x80000000, SZ_4K, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    const table = h.walker.enumerate().tables[0]!;
    expect(runOp(h.ops.unmapPages(0x300000, SZ_4K, 1, null))).toBe(SZ_4K);
    h.events.length = 0;
    expect(runOp(h.ops.mapPages(0x300000, 0x80100000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(h.events).toEqual([`flush-walk 300000 100000 1000`, `free ${table.toString(16)}`]);
    expect(tr(h, 0x300000 + 5)).toBe(0x80100005);
  });

  it('a section-sized unmap over a table: walk flush, then the table is freed (case A)', () => {
    const h = harness();
    mapRange(h.ops, 0x400000, 0x80000000, SZ_4K, 256, RW);
    const table = h.walker.enumerate().tables[0]!;
    h.events.length = 0;
    expect(runOp(h.ops.unmapPages(0x400000, SZ_1M, 1, null))).toBe(SZ_1M);
    expect(h.events).toEqual([`flush-walk 400000 100000 1000`, `free ${table.toString(16)}`]);
    expect(h.alloc.live.size).toBe(1);
  });

  it('leaf unmaps queue one page each in the gather; a queued gather skips them', () => {
    const h = harness();
    mapRange(h.ops, 0x500000, 0x80000000, SZ_4K, 4, RW);
    const g = new IommuIotlbGather();
    h.events.length = 0;
    expect(runOp(h.ops.unmapPages(0x500000, SZ_4K, 2, g))).toBe(2 * SZ_4K);
    expect(h.events).toEqual(['add-page 500000 1000', 'add-page 501000 1000']);
    expect([g.start, g.end, g.pgsize]).toEqual([0x500000, 0x501fff, SZ_4K]);
    g.queued = true;
    h.events.length = 0;
    expect(runOp(h.ops.unmapPages(0x502000, SZ_4K, 2, g))).toBe(2 * SZ_4K);
    expect(h.events).toEqual([]);
  });

  it('splitting a large page flushes the group range under the lock', () => {
    const h = harness();
    expect(runOp(h.ops.mapPages(0x600000, 0x80000000, SZ_64K, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    h.events.length = 0;
    expect(runOp(h.ops.unmapPages(0x603000, SZ_4K, 1, null))).toBe(SZ_4K);
    expect(h.events).toEqual(['flush-walk 603000 10000 10000', 'add-page 603000 1000']);
  });

  it('refuses a partial unmap with a warning in the newer variant', () => {
    const h = harness({ variant: { partialUnmap: 'refuse' } });
    expect(runOp(h.ops.mapPages(0x700000, 0x80000000, SZ_1M, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
    expect(runOp(h.ops.unmapPages(0x710000, SZ_64K, 1, null))).toBe(0);
    expect(h.warnings.some((w) => w.includes('partial unmap'))).toBe(true);
    expect(tr(h, 0x710000)).toBe(0x80010000);
  });
});

/* ---------- Races: two CPUs stepped by a seeded scheduler at every page-table access. ---------- */

function leakedTables(h: Harness): number {
  return h.alloc.live.size - 1 - h.walker.enumerate().tables.length;
}

function raceTableInstall(tableInstall: 'cmpxchg' | 'store', seed: number) {
  const h = harness({ variant: { tableInstall } });
  const rets = interleave(
    [h.ops.mapPages(0x100000, 0x80000000, SZ_4K, 1, RW, 'GFP_ATOMIC'), h.cpu1.mapPages(0x1ff000, 0x80001000, SZ_4K, 1, RW, 'GFP_ATOMIC')],
    seed,
  ).map((r) => r.ret);
  const lost = Number(tr(h, 0x100000) !== 0x80000000) + Number(tr(h, 0x1ff000) !== 0x80001000);
  return { rets, lost, leaked: leakedTables(h), allocs: h.alloc.allocs };
}

function raceSplit(splitLock: boolean, seed: number, group: number, unit: number, holes: [number, number]) {
  const h = harness({ variant: { splitLock } });
  const base = 0x3000000;
  const pa = 0x81000000;
  expect(runOp(h.ops.mapPages(base, pa, group, 1, RW, 'GFP_KERNEL')).ret).toBe(0);
  const ops: Op<number>[] = [h.ops.unmapPages(base + holes[0] * unit, unit, 1, null), h.cpu1.unmapPages(base + holes[1] * unit, unit, 1, null)];
  const rets = interleave(ops, seed, 0.3);
  let corrupt = rets.some((r) => r !== unit);
  for (let k = 0; k < group / unit; k++) {
    const want = holes.includes(k) ? 0 : pa + k * unit;
    if (tr(h, base + k * unit) !== want) corrupt = true;
  }
  try {
    h.walker.enumerate();
  } catch {
    corrupt = true;
  }
  return corrupt;
}

describe('io-pgtable-arm-v7s: races (P2, P3)', () => {
  const SEEDS = 300;
  it('P2: with a plain store two CPUs filling the same L1 slot lose a table and its mapping on some schedule', () => {
    const outcomes = Array.from({ length: SEEDS }, (_, s) => raceTableInstall('store', s));
    const bad = outcomes.filter((o) => o.lost > 0);
    expect(bad.length).toBeGreaterThan(0);
    expect(bad.every((o) => o.leaked === 1 && o.rets.every((r) => r === 0))).toBe(true);
    expect(outcomes.some((o) => o.lost === 0)).toBe(true);
  });

  it('P2 fixed: with cmpxchg every schedule keeps both mappings and the loser frees its table', () => {
    const outcomes = Array.from({ length: SEEDS }, (_, s) => raceTableInstall('cmpxchg', s));
    expect(outcomes.every((o) => o.lost === 0 && o.leaked === 0 && o.rets.every((r) => r === 0))).toBe(true);
    // Both CPUs allocated a table on some schedules: the race was really run.
    expect(outcomes.some((o) => o.allocs === 3)).toBe(true);
  });

  for (const [what, group, unit, holes] of [
    ['large page', SZ_64K, SZ_4K, [2, 13]],
    ['supersection', SZ_16M, SZ_1M, [1, 14]],
  ] as const) {
    it(`P3: racing partial unmaps of one ${what} corrupt it on some schedule without split_lock`, () => {
      const corrupt = Array.from({ length: SEEDS }, (_, s) => raceSplit(false, s, group, unit, [holes[0], holes[1]])).filter(Boolean).length;
      expect(corrupt).toBeGreaterThan(0);
    });

    it(`P3 fixed: with split_lock every schedule splits the ${what} cleanly`, () => {
      for (let s = 0; s < SEEDS; s++) expect(raceSplit(true, s, group, unit, [holes[0], holes[1]])).toBe(false);
    });
  }
});
