import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Clock } from '../core/clock';
import { FindingLog } from '../core/findings';
import { Rng } from '../core/rng';
import { Trace } from '../core/trace';
import type { IommuConfig } from '../config/types';
import { parseConfig } from '../config/validate';
import { Bus } from '../mem/bus';
import { CpuCache } from '../mem/cpu-cache';
import { SparseRam } from '../mem/ram';
import { createRockchipIommu } from './rockchip';
import { RK_PTE_READABLE, RK_PTE_WRITABLE, RK_VALID, rkDecodeAddr, rkEncodeAddr } from './rockchip-format';
import { RK_CMD, RK_STATUS } from './rockchip-regs';
import type { AccessKind, HwContext, MasterPort } from './types';

const REG = { DTE_ADDR: 0x00, STATUS: 0x04, COMMAND: 0x08, PAGE_FAULT_ADDR: 0x0c, ZAP_ONE_LINE: 0x10, INT_RAWSTAT: 0x14, INT_CLEAR: 0x18, INT_MASK: 0x1c, INT_STATUS: 0x20, AUTO_GATING: 0x24 };
const RW = RK_VALID | RK_PTE_READABLE | RK_PTE_WRITABLE;
const RO = RK_VALID | RK_PTE_READABLE;
const MASTER: MasterPort = { name: 'vopb', id: 0 };
const DT = 0x0010_0000;
const PT = 0x0010_1000;
const PT2 = 0x0010_2000;
const BUF = 0x0080_0000;
/** DTE index 0x40: the first page of PT. */
const IOVA = 0x1000_0000;
const page = (n: number): number => IOVA + n * 0x1000;

function rig(over: Partial<IommuConfig> = {}, ramBase = 0, ramSize = 0x1000_0000) {
  const ram = new SparseRam(ramBase, ramSize);
  const cache = new CpuCache(ram);
  const bus = new Bus(ram, cache);
  const clock = new Clock();
  const trace = new Trace();
  const findings = new FindingLog(() => clock.now(), () => ({ seed: 1 }));
  const irq: boolean[] = [];
  const ctx: HwContext = { bus, clock, trace, findings, rng: new Rng(7), setIrq: (line, level) => line === 118 && irq.push(level) };
  const cfg: IommuConfig = { name: 'vopb_mmu', model: 'rockchip', reg: [{ base: '0xff903f00', size: '0x100' }], irq: 118, ...over };
  const mmu = createRockchipIommu(cfg, ctx);
  for (const r of mmu.mmio()) bus.mapMmio(r);
  const base = (i: number): number => mmu.mmio()[i]!.base;
  const version = cfg.options?.version === 'v2' ? 'v2' : 'v1';
  const r = {
    ram,
    cache,
    bus,
    trace,
    findings,
    irq,
    mmu,
    writel: (off: number, v: number, inst = 0): void => bus.cpuWrite32(base(inst) + off, v),
    readl: (off: number, inst = 0): number => bus.cpuRead32(base(inst) + off),
    cmd: (c: number, inst = 0): void => bus.cpuWrite32(base(inst) + REG.COMMAND, c),
    /** CPU store of a table entry (lands in the CPU cache, not RAM). */
    setEntry: (tablePa: number, idx: number, value: number): void => bus.cpuWrite32(tablePa + idx * 4, value),
    clean: (pa: number, len = 0x1000): void => cache.clean(pa, len),
    /** Map n pages at IOVA page first → BUF page first, in PT; PTEs written by the CPU, not cleaned. */
    mapPages: (first: number, n: number, flags = RW): void => {
      for (let i = first; i < first + n; i++) bus.cpuWrite32(PT + i * 4, rkEncodeAddr(version, BUF + i * 0x1000) | flags);
    },
    dma: (iova: number, access: AccessKind = 'read') => mmu.translate(MASTER, iova, access),
    /** The driver's rk_iommu_enable for one instance, with DT at dt. */
    enable: (dt = DT, inst = 0): void => {
      // mk_dtentries: the DTE encoding with the valid bit, as upstream writes it (v1 and v2).
      bus.cpuWrite32(base(inst) + REG.DTE_ADDR, rkEncodeAddr(version, dt) | 1);
      bus.cpuWrite32(base(inst) + REG.COMMAND, RK_CMD.ZAP_CACHE);
      bus.cpuWrite32(base(inst) + REG.INT_MASK, 3);
      bus.cpuWrite32(base(inst) + REG.AUTO_GATING, bus.cpuRead32(base(inst) + REG.AUTO_GATING) | 0x8000_0000);
      bus.cpuWrite32(base(inst) + REG.COMMAND, RK_CMD.ENABLE_PAGING);
    },
  };
  return r;
}

/** A rig with DT[0x40] → PT written and cleaned, and paging enabled. */
function withTables(over: Partial<IommuConfig> = {}) {
  const r = rig(over);
  r.setEntry(DT, 0x40, PT | RK_VALID);
  r.clean(DT);
  r.enable();
  return r;
}

describe('rockchip IOMMU registers', () => {
  it('declares the §2.2 map and reads reset values', () => {
    const r = rig();
    expect(r.mmu.decl.meta.registers.map((g) => [g.name, g.offset])).toEqual(Object.entries(REG));
    expect(r.readl(REG.STATUS) >>> 0).toBe((RK_STATUS.IDLE | RK_STATUS.REPLAY_BUFFER_EMPTY | RK_STATUS.STALL_NOT_ACTIVE) >>> 0);
    expect(r.readl(REG.DTE_ADDR)).toBe(0);
    expect(r.mmu.registerFiles().map((f) => f.window)).toEqual(['vopb_mmu']);
  });

  it('enables paging via COMMAND and reports it in STATUS; passthrough while paging is off', () => {
    const r = rig();
    expect(r.dma(0x1234_5678)).toEqual({ ok: true, pa: 0x1234_5678, coherent: false });
    r.enable();
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGING_ENABLED).toBe(1);
    expect(r.readl(REG.DTE_ADDR)).toBe(DT | 1);
    expect(r.findings.list()).toEqual([]);
    expect(r.readl(REG.AUTO_GATING) >>> 0).toBe(0x8000_0000);
    expect(r.readl(REG.COMMAND)).toBe(0);
    r.cmd(RK_CMD.DISABLE_PAGING);
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGING_ENABLED).toBe(0);
    expect(r.findings.list()).toEqual([]);
  });

  it('FORCE_RESET passes the dummy read-back and clears DTE_ADDR, paging and caches', () => {
    const r = withTables();
    r.mapPages(0, 1);
    r.clean(PT);
    expect(r.dma(page(0)).ok).toBe(true);
    r.writel(REG.DTE_ADDR, 0xcafe_b000);
    expect(r.readl(REG.DTE_ADDR) >>> 0).toBe(0xcafe_b000);
    r.cmd(RK_CMD.FORCE_RESET);
    expect(r.readl(REG.DTE_ADDR)).toBe(0);
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGING_ENABLED).toBe(0);
    expect(r.mmu.tlb()).toEqual([]);
    expect(r.mmu.walkCache()).toEqual([]);
  });

  it('reports a misaligned DTE_ADDR and keeps only the aligned address', () => {
    const r = rig();
    r.writel(REG.DTE_ADDR, DT | 0x10);
    expect(r.readl(REG.DTE_ADDR)).toBe(DT);
    expect(r.findings.list()).toMatchObject([{ kind: 'misaligned-table', severity: 'warning' }]);
  });

  it('reports reserved bits and unknown commands', () => {
    const r = rig();
    r.writel(REG.INT_MASK, 0x7);
    r.cmd(7);
    expect(r.readl(REG.INT_MASK)).toBe(3);
    expect(r.findings.list().map((f) => f.kind)).toEqual(['reserved-bits', 'reserved-bits']);
  });
});

describe('rockchip IOMMU walk', () => {
  it('translates through DTE and PTE and checks permissions', () => {
    const r = withTables();
    r.mapPages(0, 1, RW);
    r.mapPages(1, 1, RO);
    r.clean(PT);
    expect(r.dma(page(0) + 0x123, 'write')).toEqual({ ok: true, pa: BUF + 0x123, coherent: false });
    expect(r.dma(page(1) + 4, 'read')).toMatchObject({ ok: true, pa: BUF + 0x1004 });
    const w = r.dma(page(1) + 8, 'write');
    expect(w).toMatchObject({ ok: false, fault: { reason: 'permission', access: 'write', iova: page(1) + 8, master: 'vopb', iommu: 'vopb_mmu' } });
    expect(r.readl(REG.PAGE_FAULT_ADDR)).toBe(page(1) + 8);
    const st = r.readl(REG.STATUS);
    expect(st & (RK_STATUS.PAGE_FAULT_ACTIVE | RK_STATUS.PAGE_FAULT_IS_WRITE)).toBe(RK_STATUS.PAGE_FAULT_ACTIVE | RK_STATUS.PAGE_FAULT_IS_WRITE);
    expect(r.readl(REG.INT_RAWSTAT)).toBe(1);
    expect(r.readl(REG.INT_STATUS)).toBe(1);
    expect(r.irq).toEqual([true]);
    expect(r.mmu.tlb().map((e) => [e.iova, e.perms])).toEqual([
      [page(0), ['read', 'write']],
      [page(1), ['read']],
    ]);
    expect(r.mmu.stats()).toEqual({ hits: 1, misses: 2, walks: 2, faults: 1 });
    expect(r.trace.events().filter((e) => e.cat === 'fault')).toHaveLength(1);
  });

  it('faults on an invalid DTE and an invalid PTE', () => {
    const r = withTables();
    expect(r.dma(0x2000_0000)).toMatchObject({ ok: false, fault: { reason: 'dte-invalid' } });
    expect(r.dma(page(5))).toMatchObject({ ok: false, fault: { reason: 'pte-invalid' } });
    expect(r.mmu.faults().map((f) => f.reason)).toEqual(['dte-invalid', 'pte-invalid']);
  });

  it('reports descriptors with reserved bits', () => {
    const r = withTables();
    r.mapPages(0, 1, RW | 0x200);
    r.clean(PT);
    expect(r.dma(page(0)).ok).toBe(true);
    expect(r.findings.list()).toMatchObject([{ kind: 'reserved-bits', severity: 'warning' }]);
  });

  it('raises BUS_ERROR when the tables are not in RAM', () => {
    const r = rig();
    r.enable(0x2000_0000);
    expect(r.dma(page(0))).toMatchObject({ ok: false, fault: { reason: 'bus-error' } });
    expect(r.readl(REG.INT_RAWSTAT)).toBe(2);
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGE_FAULT_ACTIVE).toBe(0);
    expect(r.findings.list().map((f) => f.kind)).toEqual(['bus-error']);
  });

  it('a non-coherent walker does not see table writes left in the CPU cache; a coherent one does', () => {
    const r = withTables();
    r.mapPages(0, 1);
    expect(r.dma(page(0)).ok).toBe(false);
    expect(r.findings.list()).toMatchObject([
      { kind: 'unflushed-walk', severity: 'error' },
      { kind: 'fault', severity: 'error' },
    ]);
    const c = withTables({ coherentWalk: true });
    c.mapPages(0, 1);
    expect(c.dma(page(0)).ok).toBe(true);
    expect(c.findings.list()).toEqual([]);
  });
});

describe('rockchip page-table cache (P1)', () => {
  it('keeps an invalid PTE line cached until ZAP_ONE_LINE of that IOVA', () => {
    const r = withTables();
    r.mapPages(0, 1);
    r.clean(PT);
    expect(r.dma(page(0)).ok).toBe(true);
    // DMA to the unmapped neighbour: the walker caches the whole line, its invalid entry included.
    expect(r.dma(page(1))).toMatchObject({ ok: false, fault: { reason: 'pte-invalid' } });
    const line = r.mmu.walkCache().find((l) => l.tablePa === PT)!;
    expect(line).toMatchObject({ iova: IOVA, span: 0x10000, valid: true });
    expect(line.entries).toHaveLength(16);
    expect(line.entries[1]).toBe(0);
    r.mapPages(1, 1);
    r.clean(PT);
    expect(r.dma(page(1))).toMatchObject({ ok: false, fault: { reason: 'pte-invalid' } });
    r.writel(REG.ZAP_ONE_LINE, page(1));
    expect(r.dma(page(1))).toMatchObject({ ok: true, pa: BUF + 0x1000 });
    // The zap dropped the line, not the unrelated IOTLB entry of page 0.
    expect(r.mmu.tlb().map((e) => e.iova)).toContain(page(0));
  });

  /** Every place a concurrent DMA to the neighbouring mapped page can fall in the driver's map steps. */
  function raceMap(order: 'zap-before-update' | 'zap-after-update', dmaAt: number): boolean {
    const r = withTables();
    r.mapPages(0, 1);
    r.clean(PT);
    const zap = (): void => r.writel(REG.ZAP_ONE_LINE, page(1));
    const update = (): void => r.mapPages(1, 1);
    const flush = (): void => r.clean(PT);
    const steps = order === 'zap-before-update' ? [zap, update, flush] : [update, flush, zap];
    steps.forEach((step, i) => {
      if (i === dmaAt) expect(r.dma(page(0)).ok).toBe(true);
      step();
    });
    if (dmaAt === steps.length) expect(r.dma(page(0)).ok).toBe(true);
    // A walk that reads a line while the CPU is mid-update of a neighbouring entry is not a flush bug.
    expect(r.findings.list()).toEqual([]);
    return r.dma(page(1)).ok;
  }

  it('zap before update faults when the master walks between zap and clean; zap after update never faults', () => {
    expect([0, 1, 2, 3].map((at) => raceMap('zap-before-update', at))).toEqual([true, false, false, true]);
    expect([0, 1, 2, 3].map((at) => raceMap('zap-after-update', at))).toEqual([true, true, true, true]);
  });

  it('zapping the first and last IOVA is enough for a multi-page map sharing lines', () => {
    const setup = () => {
      const r = withTables();
      r.mapPages(0, 2); // older mapping in line 0
      r.mapPages(41, 7); // older mapping in line 2
      r.clean(PT);
      expect(r.dma(page(0)).ok && r.dma(page(41)).ok).toBe(true);
      r.mapPages(2, 39); // new mapping: pages 2..40, lines 0..2
      r.clean(PT);
      return r;
    };
    const r = setup();
    r.writel(REG.ZAP_ONE_LINE, page(2));
    r.writel(REG.ZAP_ONE_LINE, page(40));
    for (let p = 2; p <= 40; p++) expect(r.dma(page(p), 'write')).toMatchObject({ ok: true, pa: BUF + p * 0x1000 });

    const firstOnly = setup();
    firstOnly.writel(REG.ZAP_ONE_LINE, page(2));
    expect(firstOnly.dma(page(39))).toMatchObject({ ok: false, fault: { reason: 'pte-invalid' } });
  });

  it('ZAP_ONE_LINE also drops the cached DTE line, so a new page table becomes visible', () => {
    const r = withTables();
    const iova = 0x1040_0000; // DTE 0x41, same DTE line as 0x40
    expect(r.dma(iova)).toMatchObject({ ok: false, fault: { reason: 'dte-invalid' } });
    r.setEntry(PT2, 0, BUF | RW);
    r.setEntry(DT, 0x41, PT2 | RK_VALID);
    r.clean(PT2);
    r.clean(DT);
    expect(r.dma(iova)).toMatchObject({ ok: false, fault: { reason: 'dte-invalid' } });
    r.writel(REG.ZAP_ONE_LINE, iova);
    expect(r.dma(iova)).toMatchObject({ ok: true, pa: BUF });
  });

  it('ZAP_CACHE drops every IOTLB entry and cached line', () => {
    const r = withTables();
    r.mapPages(0, 1);
    r.clean(PT);
    r.dma(page(0));
    r.dma(page(1));
    expect(r.mmu.tlb()).toHaveLength(1);
    expect(r.mmu.walkCache()).toHaveLength(2);
    r.mapPages(1, 1);
    r.clean(PT);
    r.cmd(RK_CMD.ZAP_CACHE);
    expect(r.mmu.tlb()).toEqual([]);
    expect(r.mmu.walkCache()).toEqual([]);
    expect(r.dma(page(1)).ok).toBe(true);
  });

  it('evicts by capacity with the seeded policy and traces it', () => {
    const r = withTables({ tlb: { entries: 2 } });
    r.mapPages(0, 3);
    r.clean(PT);
    for (let p = 0; p < 3; p++) r.dma(page(p));
    expect(r.mmu.tlb()).toHaveLength(2);
    expect(r.trace.events().filter((e) => e.name === 'iotlb-evict')).toHaveLength(1);
  });
});

describe('rockchip faults, interrupts and stall', () => {
  it('INT_CLEAR is write-1-to-clear, INT_MASK gates INT_STATUS and the IRQ line', () => {
    const r = withTables();
    r.writel(REG.INT_MASK, 0);
    r.dma(page(0));
    expect(r.readl(REG.INT_RAWSTAT)).toBe(1);
    expect(r.readl(REG.INT_STATUS)).toBe(0);
    expect(r.irq).toEqual([]);
    r.writel(REG.INT_MASK, 3);
    expect(r.irq).toEqual([true]);
    r.writel(REG.INT_CLEAR, 2);
    expect(r.readl(REG.INT_RAWSTAT)).toBe(1);
    r.writel(REG.INT_CLEAR, 1);
    expect(r.readl(REG.INT_RAWSTAT)).toBe(0);
    expect(r.readl(REG.INT_CLEAR)).toBe(0);
    expect(r.irq).toEqual([true, false]);
  });

  it('PAGE_FAULT_DONE clears fault-active; PAGE_FAULT_ADDR keeps the first fault until then', () => {
    const r = withTables();
    r.dma(page(3), 'write');
    r.dma(page(4), 'read');
    expect(r.readl(REG.PAGE_FAULT_ADDR)).toBe(page(3));
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGE_FAULT_IS_WRITE).toBeTruthy();
    r.cmd(RK_CMD.PAGE_FAULT_DONE);
    expect(r.readl(REG.STATUS) & (RK_STATUS.PAGE_FAULT_ACTIVE | RK_STATUS.PAGE_FAULT_IS_WRITE)).toBe(0);
    r.dma(page(4), 'read');
    expect(r.readl(REG.PAGE_FAULT_ADDR)).toBe(page(4));
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGE_FAULT_IS_WRITE).toBe(0);
  });

  it('stalls only while paging is enabled; a stalled MMU holds the master (stallOf) without a page fault', () => {
    const r = rig();
    r.cmd(RK_CMD.ENABLE_STALL);
    expect(r.readl(REG.STATUS) & RK_STATUS.STALL_ACTIVE).toBe(0);
    expect(r.readl(REG.STATUS) >>> 31).toBe(1);
    r.setEntry(DT, 0x40, PT | RK_VALID);
    r.mapPages(0, 1);
    r.clean(DT);
    r.clean(PT);
    r.enable();
    r.cmd(RK_CMD.ENABLE_STALL);
    expect(r.readl(REG.STATUS) & RK_STATUS.STALL_ACTIVE).toBe(RK_STATUS.STALL_ACTIVE);
    expect(r.readl(REG.STATUS) >>> 31).toBe(0);
    expect(r.mmu.stallOf?.(MASTER, 'read')).toMatch(/vopb_mmu is stalled/);
    // Traffic that cannot wait (background scanout) is dropped.
    expect(r.dma(page(0))).toMatchObject({ ok: false, fault: { reason: 'stalled' } });
    expect(r.readl(REG.INT_RAWSTAT)).toBe(0);
    r.cmd(RK_CMD.DISABLE_STALL);
    expect(r.mmu.stallOf?.(MASTER, 'read')).toBeNull();
    expect(r.dma(page(0)).ok).toBe(true);
  });

  it('a page fault stalls the faulting master, and only it, until PAGE_FAULT_DONE', () => {
    const r = rig();
    r.setEntry(DT, 0x40, PT | RK_VALID);
    r.clean(DT);
    r.enable();
    expect(r.findings.list()).toEqual([]);
    expect(r.dma(page(3))).toMatchObject({ ok: false, fault: { reason: 'pte-invalid' } });
    expect(r.mmu.stallOf?.(MASTER, 'read')).toMatch(/page fault at IOVA 0x10003000, never acknowledged \(no PAGE_FAULT_DONE\)/);
    expect(r.mmu.stallOf?.({ name: 'other', id: MASTER.id + 1 }, 'read')).toBeNull();
    r.cmd(RK_CMD.PAGE_FAULT_DONE);
    expect(r.mmu.stallOf?.(MASTER, 'read')).toBeNull();
  });
});

describe('rockchip instances, power, snapshot', () => {
  const isp = { name: 'isp0_mmu', irq: 43, reg: [{ base: '0xff914000', size: '0x100' }, { base: '0xff915000', size: '0x100' }] };

  it('keeps two instances independent', () => {
    const r = rig(isp);
    expect(r.mmu.registerFiles().map((f) => f.window)).toEqual(['isp0_mmu', 'isp0_mmu.1']);
    r.setEntry(DT, 0x40, PT | RK_VALID);
    r.mapPages(0, 1);
    r.clean(DT);
    r.clean(PT);
    r.enable(DT, 0);
    expect(r.readl(REG.STATUS, 1) & RK_STATUS.PAGING_ENABLED).toBe(0);
    expect(r.dma(page(0), 'read')).toMatchObject({ ok: true, pa: BUF });
    // Writes go through the second instance, which is still untranslated.
    expect(r.dma(page(0), 'write')).toMatchObject({ ok: true, pa: page(0) });
    r.enable(DT, 1);
    expect(r.dma(page(0), 'write')).toMatchObject({ ok: true, pa: BUF });
    r.dma(page(1), 'write');
    r.mapPages(1, 1);
    r.clean(PT);
    // Zapping only the first instance (the v4.14 driver bug) leaves the second one stale.
    r.writel(REG.ZAP_ONE_LINE, page(1), 0);
    expect(r.dma(page(1), 'write')).toMatchObject({ ok: false, fault: { reason: 'pte-invalid' } });
    expect(r.readl(REG.INT_RAWSTAT, 0)).toBe(0);
    expect(r.readl(REG.INT_RAWSTAT, 1)).toBe(1);
    r.writel(REG.ZAP_ONE_LINE, page(1), 1);
    expect(r.dma(page(1), 'write').ok).toBe(true);
  });

  it('loses registers and caches when powered off; MMIO reads reset values after power-on', () => {
    const r = withTables();
    r.mapPages(0, 1);
    r.clean(PT);
    r.dma(page(0));
    r.dma(page(9));
    expect(r.irq).toEqual([true]);
    r.mmu.setPowered(false);
    expect(r.mmu.isPowered()).toBe(false);
    expect(r.irq).toEqual([true, false]);
    expect(r.dma(page(0))).toMatchObject({ ok: false, fault: { reason: 'powered-off' } });
    r.writel(REG.DTE_ADDR, DT);
    r.mmu.setPowered(true);
    expect(r.readl(REG.DTE_ADDR)).toBe(0);
    expect(r.readl(REG.INT_RAWSTAT)).toBe(0);
    expect(r.readl(REG.STATUS) & RK_STATUS.PAGING_ENABLED).toBe(0);
    expect(r.mmu.tlb()).toEqual([]);
    expect(r.mmu.walkCache()).toEqual([]);
  });

  it('restores registers, caches, faults and stats from a snapshot', () => {
    const r = withTables();
    r.mapPages(0, 1);
    r.clean(PT);
    r.dma(page(0));
    r.dma(page(1));
    const snap = r.mmu.snapshot();
    const before = { tlb: r.mmu.tlb(), wc: r.mmu.walkCache(), faults: r.mmu.faults(), stats: r.mmu.stats(), st: r.readl(REG.STATUS) };
    r.cmd(RK_CMD.FORCE_RESET);
    r.dma(page(2));
    r.mmu.restore(snap);
    expect({ tlb: r.mmu.tlb(), wc: r.mmu.walkCache(), faults: r.mmu.faults(), stats: r.mmu.stats(), st: r.readl(REG.STATUS) }).toEqual(before);
    expect(r.readl(REG.DTE_ADDR)).toBe(DT | 1);
  });
});

describe('rockchip v2 (40-bit) format', () => {
  it('packs and unpacks 40-bit addresses (§2.4)', () => {
    expect(rkEncodeAddr('v2', 0xab_1234_5000)).toBe(0x1234_5000 | (0xb << 8) | (0xa << 4));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 28 - 1 }), (pfn) => {
        const pa = pfn * 0x1000;
        return rkDecodeAddr('v2', rkEncodeAddr('v2', pa)) === pa && rkDecodeAddr('v1', rkEncodeAddr('v1', pa % 2 ** 32)) === pa % 2 ** 32;
      }),
    );
  });

  it('walks tables and pages above 4 GiB', () => {
    const hi = 0x1_2000_0000;
    const r = rig({ options: { version: 'v2' } }, 2 ** 32, 2 ** 32);
    const dt = hi;
    const pt = hi + 0x1000;
    r.setEntry(dt, 0x40, rkEncodeAddr('v2', pt) | RK_VALID);
    r.setEntry(pt, 0, rkEncodeAddr('v2', hi + 0x10_0000) | RW);
    r.clean(dt);
    r.clean(pt);
    r.enable(dt);
    expect(r.readl(REG.DTE_ADDR)).toBe(rkEncodeAddr('v2', dt) | 1);
    expect(r.dma(page(0) + 0x40, 'write')).toMatchObject({ ok: true, pa: hi + 0x10_0040 });
    expect(r.findings.list()).toEqual([]);
    r.writel(REG.DTE_ADDR, 0x2);
    expect(r.findings.list()).toMatchObject([{ kind: 'reserved-bits' }]);
  });

  it('rejects an unknown version option', () => {
    expect(() => rig({ options: { version: 'v3' } })).toThrow(/v1' or 'v2/);
  });
});

describe('rk3399 preset', () => {
  it('validates and builds every IOMMU on one bus', () => {
    const text = readFileSync(new URL('../../../resources/socs/rk3399.soc.json', import.meta.url), 'utf8');
    const parsed = parseConfig(text, 'rk3399.soc.json');
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const { config } = parsed;
    expect(config.memory[0]).toMatchObject({ base: '0x0', size: '0xF8000000' });
    const r = rig();
    const bus = new Bus(r.ram, r.cache);
    const ctx: HwContext = { bus, clock: new Clock(), trace: new Trace(), findings: r.findings, rng: new Rng(1), setIrq: () => undefined };
    for (const m of config.iommus) for (const w of createRockchipIommu(m, ctx).mmio()) bus.mapMmio(w);
    expect(bus.regions()).toHaveLength(config.iommus.reduce((n, m) => n + m.reg.length, 0));
    for (const d of config.devices) expect(config.iommus.some((m) => m.name === d.iommu)).toBe(true);
  });
});
