import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/validate';
import type { SocConfig } from '../config/types';
import { IOMMU_MODELS, Soc } from '../soc';
import {
  CB,
  FSR_AFF,
  FSR_MULTI,
  FSR_PF,
  FSR_TF,
  FSYNR0_WNR,
  S2CR_TYPE_BYPASS,
  SCR0_GFIE,
  SCR0_USFCFG,
  SCTLR_CFIE,
  SCTLR_CFRE,
  SCTLR_M,
  SGFSR_USF,
  SMMU_PAGE,
  SMR_VALID,
  TCR_EPD1,
} from './arm-smmu';

const PRESET = fileURLToPath(new URL('../../../resources/socs/arm64-smmu.soc.json', import.meta.url));
const SMMU = 'smmu0';
const BASE = 0xd000_0000;
/** Context bank pages start at numpage = 8 pages. */
const CB0 = BASE + 8 * SMMU_PAGE;
const T = 0x8000_0000;
const DATA = 0x9000_0000;
const ASID = 5;

function smmuSoc(edit?: (c: SocConfig) => void): Soc {
  const c = JSON.parse(readFileSync(PRESET, 'utf8')) as SocConfig;
  edit?.(c);
  return new Soc(c, 1, IOMMU_MODELS, []);
}

/** Builds LPAE tables with CPU stores (cleaned) and programs the SMMU by hand. */
class Smmu {
  private next = T + 0x1000;

  constructor(readonly soc: Soc) {}

  set(reg: string, v: number): void {
    this.soc.writeReg(SMMU, reg, v);
  }

  reg(name: string): number {
    return this.soc.readReg(SMMU, name);
  }

  put64(pa: number, lo: number, hi = 0): void {
    this.soc.writel(lo >>> 0, pa);
    this.soc.writel(hi >>> 0, pa + 4);
    this.soc.cache.clean(pa, 8);
  }

  newTable(): number {
    const t = this.next;
    this.next += 0x1000;
    return t;
  }

  /** Stream `sid` → context bank 0, walking from T with T0SZ (32: 3 levels, 16: 4 levels). */
  enable(sid: number, t0sz = 32, asid = ASID): void {
    this.set('SMR0', (SMR_VALID | sid) >>> 0);
    this.set('S2CR0', 0);
    this.set('CBA2R0', 1);
    this.set('CBAR0', (1 << 16) | (2 << 24));
    this.set('CB0_TCR', t0sz | TCR_EPD1);
    this.set('CB0_TTBR0_HI', asid << 16);
    this.set('CB0_TTBR0_LO', T);
    this.set('CB0_SCTLR', SCTLR_M | SCTLR_CFIE | SCTLR_CFRE);
    this.set('sCR0', SCR0_GFIE | SCR0_USFCFG);
  }

  tlbi(reg: 'TLBIVA' | 'TLBIVAL', va: number, asid = ASID): void {
    this.set(`CB0_${reg}_HI`, (asid << 16) | Math.floor(va / 2 ** 44));
    this.set(`CB0_${reg}_LO`, Math.floor(va / 4096) % 2 ** 32);
  }

  sync(): void {
    this.set('CB0_TLBSYNC', 0);
    while (this.reg('CB0_TLBSTATUS') & 1);
  }

  xlate(dev: string, iova: number, access: 'read' | 'write' = 'read'): number | string {
    const t = this.soc.iommu(SMMU).translate(this.soc.device(dev).port, iova, access);
    return t.ok ? t.pa : t.fault.reason;
  }
}

const AF = 1 << 10;
const RO = 1 << 7;
const UNPRIV = 1 << 6;
const NG = 1 << 11;
const tableDesc = (pa: number): number => (pa | 3) >>> 0;
const page = (pa: number, attrs = AF | UNPRIV | NG): number => (pa | attrs | 3) >>> 0;
const block = (pa: number, attrs = AF | UNPRIV | NG): number => (pa | attrs | 1) >>> 0;

/** 3 levels (T0SZ 32): L1 at T, one L2 and one L3 table for iova. */
function map3(s: Smmu, iova: number, leaf: number, lvl: 1 | 2 | 3): { l2: number; l3: number } {
  const l1i = Math.floor(iova / 2 ** 30) % 4;
  const l2i = Math.floor(iova / 2 ** 21) % 512;
  const l3i = Math.floor(iova / 2 ** 12) % 512;
  if (lvl === 1) {
    s.put64(T + l1i * 8, leaf);
    return { l2: 0, l3: 0 };
  }
  const l2 = s.newTable();
  s.put64(T + l1i * 8, tableDesc(l2));
  if (lvl === 2) {
    s.put64(l2 + l2i * 8, leaf);
    return { l2, l3: 0 };
  }
  const l3 = s.newTable();
  s.put64(l2 + l2i * 8, tableDesc(l3));
  s.put64(l3 + l3i * 8, leaf);
  return { l2, l3 };
}

describe('Arm SMMUv2 model (arm-lpae)', () => {
  it('the arm64-smmu preset validates and the ID registers describe it', () => {
    const r = parseConfig(readFileSync(PRESET, 'utf8'), PRESET);
    expect(r.ok ? [] : r.errors).toEqual([]);
    const s = new Smmu(smmuSoc());
    expect(s.reg('ID1') & 0xff).toBe(8);
    expect((s.reg('ID1') >>> 28) & 7).toBe(2);
    expect(s.reg('ID0') & 0xff).toBe(16);
    expect((s.reg('ID0') >>> 14) & 1).toBe(0);
    expect((s.reg('ID2') >>> 8) & 0xf).toBe(5);
    expect(s.soc.iommu(SMMU).decl.byName.get('CB1_TLBSYNC')!.offset).toBe(9 * SMMU_PAGE + CB.TLBSYNC);
  });

  it('bypasses while sCR0.CLIENTPD is set (its reset value)', () => {
    const s = new Smmu(smmuSoc());
    expect(s.xlate('display', 0x1234_5000)).toBe(0x1234_5000);
  });

  it('walks 3 levels (T0SZ 32): 4 KiB pages, 2 MiB and 1 GiB blocks', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    map3(s, 0x0040_3000, page(DATA + 0x5000), 3);
    map3(s, 0x4060_0000, block(DATA + 0x0020_0000), 2);
    map3(s, 0x8000_0000, block(0x8000_0000), 1);
    expect(s.xlate('display', 0x0040_3abc)).toBe(DATA + 0x5abc);
    expect(s.xlate('display', 0x406f_0010, 'write')).toBe(DATA + 0x002f_0010);
    expect(s.xlate('display', 0xbfff_fff0)).toBe(0xbfff_fff0);
    const tlb = s.soc.iommu(SMMU).tlb();
    expect(tlb.map((e) => e.size).sort((a, b) => a - b)).toEqual([0x1000, 0x200000, 0x40000000]);
    expect(tlb[0]!.attrs).toEqual({ cb: 0, asid: ASID, global: 0 });
    // The walk cache holds the table descriptors (levels 1 and 2) it went through.
    expect(s.soc.iommu(SMMU).walkCache().map((e) => [e.iova, e.span])).toEqual([
      [0, 0x40000000],
      [0x400000, 0x200000],
      [0x40000000, 0x40000000],
    ]);
  });

  it('walks 4 levels with T0SZ 16 (48-bit input)', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16, 16);
    const iova = 0x8000_0000_0000 + 0x1000;
    const l1 = s.newTable();
    const l2 = s.newTable();
    const l3 = s.newTable();
    s.put64(T + 256 * 8, tableDesc(l1));
    s.put64(l1, tableDesc(l2));
    s.put64(l2, tableDesc(l3));
    s.put64(l3 + 8, page(DATA));
    expect(s.xlate('display', iova + 0x10)).toBe(DATA + 0x10);
    expect(s.xlate('display', 2 ** 48)).toBe('address-size');
    s.soc.findings.take();
  });

  it('SMMUv1: a bank raises the context interrupt its CBAR.IRPTNDX selects', () => {
    const s = new Smmu(smmuSoc((c) => (c.iommus[0]!.options = { ...c.iommus[0]!.options, version: 'v1' })));
    s.enable(32);
    map3(s, 0x0010_0000, page(DATA, UNPRIV | NG), 3);
    expect(s.xlate('video', 0x0010_0000)).toBe('permission');
    expect(s.soc.irqs.level(67)).toBe(true);
    expect(s.soc.irqs.level(65)).toBe(false);
    s.soc.findings.take();
  });

  it('AF clear: access-flag fault; AP read-only: write permission fault, with FSR/FAR/FSYNR0/CBFRSYNRA and the context IRQ', () => {
    const s = new Smmu(smmuSoc());
    s.enable(32);
    map3(s, 0x0010_0000, page(DATA, UNPRIV | NG), 3);
    map3(s, 0x4000_1000, page(DATA, AF | UNPRIV | NG | RO), 3);
    expect(s.xlate('video', 0x0010_0000)).toBe('permission');
    expect(s.reg('CB0_FSR')).toBe(FSR_AFF);
    expect(s.reg('CB0_FAR_LO')).toBe(0x0010_0000);
    expect(s.reg('CB0_FSYNR0')).toBe(3);
    expect(s.reg('CBFRSYNRA0')).toBe(32);
    // SMMUv2: bank 0's own context interrupt, 65 + 0, whatever CBAR0.IRPTNDX (2) says.
    expect(s.soc.irqs.level(65)).toBe(true);
    expect(s.soc.irqs.level(67)).toBe(false);
    expect(s.xlate('video', 0x4000_1000, 'read')).toBe(DATA);
    expect(s.xlate('video', 0x4000_1000, 'write')).toBe('permission');
    expect(s.reg('CB0_FSR')).toBe((FSR_AFF | FSR_MULTI) >>> 0);
    s.set('CB0_FSR', s.reg('CB0_FSR'));
    expect(s.soc.irqs.level(65)).toBe(false);
    expect(s.xlate('video', 0x4000_1000, 'write')).toBe('permission');
    expect(s.reg('CB0_FSR')).toBe(FSR_PF);
    expect(s.reg('CB0_FSYNR0')).toBe(3 | FSYNR0_WNR);
    expect(s.soc.findings.take().every((f) => f.kind === 'fault')).toBe(true);
  });

  it('a privileged-only page faults for an unprivileged master, unless S2CR.PRIVCFG says privileged', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    map3(s, 0x0020_0000, page(DATA, AF | NG), 3);
    expect(s.xlate('display', 0x0020_0000)).toBe('permission');
    s.set('S2CR0', 3 << 24);
    s.set('CB0_TLBIALL', 0);
    s.sync();
    expect(s.xlate('display', 0x0020_0000)).toBe(DATA);
    s.soc.findings.take();
  });

  it('invalid descriptors are translation faults with the level in FSYNR0', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    expect(s.xlate('display', 0x0030_0000, 'write')).toBe('dte-invalid');
    expect(s.reg('CB0_FSR')).toBe(FSR_TF);
    expect(s.reg('CB0_FSYNR0')).toBe(1 | FSYNR0_WNR);
    s.soc.findings.take();
  });

  it('an unmatched stream faults globally with USFCFG (sGFSR.USF, sGFSYNR1, global IRQ); S2CR bypass passes', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    expect(s.xlate('gpu', 0x1000)).toBe('translation-disabled');
    expect(s.reg('sGFSR')).toBe(SGFSR_USF);
    expect(s.reg('sGFSYNR1')).toBe(64);
    expect(s.soc.irqs.level(64)).toBe(true);
    s.set('sGFSR', SGFSR_USF);
    expect(s.soc.irqs.level(64)).toBe(false);
    s.set('SMR1', (SMR_VALID | 64) >>> 0);
    s.set('S2CR1', S2CR_TYPE_BYPASS << 16);
    expect(s.xlate('gpu', 0x1000)).toBe(0x1000);
    // A masked SMR matches a range of stream IDs.
    s.set('SMR0', (SMR_VALID | (0x0f << 16) | 0x10) >>> 0);
    map3(s, 0x0040_0000, block(DATA), 2);
    expect(s.xlate('dma0', 0x0040_0000)).toBe('translation-disabled');
    s.set('SMR2', (SMR_VALID | (0xff << 16) | 0x80) >>> 0);
    s.set('S2CR2', 0);
    expect(s.xlate('dma0', 0x0040_0000)).toBe(DATA);
    s.soc.findings.take();
  });

  it('TLB maintenance takes effect at TLBSYNC, not before', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    const { l3 } = map3(s, 0x0040_3000, page(DATA), 3);
    expect(s.xlate('display', 0x0040_3000)).toBe(DATA);
    s.put64(l3 + 3 * 8, page(DATA + 0x8000));
    s.tlbi('TLBIVAL', 0x0040_3000);
    expect(s.xlate('display', 0x0040_3000)).toBe(DATA);
    s.sync();
    expect(s.xlate('display', 0x0040_3000)).toBe(DATA + 0x8000);
  });

  it('TLBIVAL leaves the walk cache; TLBIVA drops it: a freed table stays walkable after leaf-only invalidation (P4)', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    const { l2 } = map3(s, 0x0040_0000, page(DATA), 3);
    expect(s.xlate('display', 0x0040_0000)).toBe(DATA);
    // The L3 table is replaced (as if freed and the region remapped) by one mapping another page.
    const other = s.newTable();
    s.put64(other + 8, page(DATA + 0x4000));
    s.put64(l2 + 2 * 8, tableDesc(other));
    s.tlbi('TLBIVAL', 0x0040_0000);
    s.sync();
    // The cached L2 descriptor still leads to the old table, whose slot 1 is empty.
    expect(s.xlate('display', 0x0040_1000)).toBe('pte-invalid');
    s.tlbi('TLBIVA', 0x0040_0000);
    s.sync();
    expect(s.xlate('display', 0x0040_1000)).toBe(DATA + 0x4000);
    s.soc.findings.take();
  });

  it('TLBIVA for another ASID leaves the walk cache; TLBIASID and TLBIALL drop by ASID / everything', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    map3(s, 0x0040_0000, page(DATA), 3);
    s.xlate('display', 0x0040_0000);
    const wc = (): number => s.soc.iommu(SMMU).walkCache().length;
    expect(wc()).toBe(2);
    s.tlbi('TLBIVA', 0x0040_0000, ASID + 1);
    s.sync();
    expect(wc()).toBe(2);
    s.set('CB0_TLBIASID', ASID + 1);
    s.sync();
    expect(wc()).toBe(2);
    s.set('CB0_TLBIASID', ASID);
    s.sync();
    expect(wc()).toBe(0);
    expect(s.soc.iommu(SMMU).tlb()).toEqual([]);
    s.xlate('display', 0x0040_0000);
    s.set('CB0_TLBIALL', 0);
    s.sync();
    expect(wc() + s.soc.iommu(SMMU).tlb().length).toBe(0);
    s.xlate('display', 0x0040_0000);
    s.set('TLBIALLNSNH', 0);
    s.set('sTLBGSYNC', 0);
    expect(s.reg('sTLBGSTATUS')).toBe(0);
    expect(wc()).toBe(0);
  });

  it('an entry of another ASID in the bank is not a hit', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    map3(s, 0x0040_0000, page(DATA), 3);
    expect(s.xlate('display', 0x0040_0000)).toBe(DATA);
    s.set('CB0_TTBR0_HI', (ASID + 1) << 16);
    s.set('CB0_TTBR0_LO', T + 0x100000);
    expect(s.xlate('display', 0x0040_0000)).toBe('dte-invalid');
    s.soc.findings.take();
  });

  it('a busy TLBSYNC reads SACTIVE until invalidateCycles have passed', () => {
    const s = new Smmu(smmuSoc((c) => (c.iommus[0]!.options!.invalidateCycles = 200)));
    s.enable(16);
    map3(s, 0x0040_0000, page(DATA), 3);
    s.xlate('display', 0x0040_0000);
    s.set('CB0_TLBIALL', 0);
    s.set('CB0_TLBSYNC', 0);
    expect(s.reg('CB0_TLBSTATUS')).toBe(1);
    let polls = 1;
    while (s.reg('CB0_TLBSTATUS') & 1) polls++;
    expect(polls).toBeGreaterThan(1);
    expect(s.soc.iommu(SMMU).tlb()).toEqual([]);
  });

  it('reports un-cleaned descriptors; power-off resets registers and caches', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    s.soc.writel(block(DATA), T);
    expect(s.xlate('display', 0x0040_0000)).toBe('dte-invalid');
    expect(s.soc.findings.take().map((f) => f.kind)).toEqual(['unflushed-walk', 'fault']);
    // Software bits 58:55 (io-pgtable's SW_SYNC) left dirty in the cache are ignored by the walker.
    s.put64(T, block(0x8000_0000));
    s.soc.writel(1 << 23, T + 4);
    expect(s.xlate('display', 0x0040_0000)).toBe(0x8040_0000);
    expect(s.soc.findings.take()).toEqual([]);
    s.soc.powerDomain('pd_smmu').set(false);
    s.soc.powerDomain('pd_smmu').set(true);
    expect(s.reg('sCR0')).toBe(1);
    expect(s.soc.iommu(SMMU).tlb()).toEqual([]);
  });

  it('snapshot and restore bring back registers, TLB, walk cache and queued maintenance', () => {
    const s = new Smmu(smmuSoc());
    s.enable(16);
    map3(s, 0x0040_0000, page(DATA), 3);
    s.xlate('display', 0x0040_0000);
    s.set('CB0_TLBIALL', 0);
    const snap = s.soc.snapshot();
    const before = { tlb: s.soc.iommu(SMMU).tlb(), wc: s.soc.iommu(SMMU).walkCache() };
    s.sync();
    s.set('CB0_SCTLR', 0);
    s.soc.restore(snap);
    expect({ tlb: s.soc.iommu(SMMU).tlb(), wc: s.soc.iommu(SMMU).walkCache() }).toEqual(before);
    expect(s.reg('CB0_SCTLR') & SCTLR_M).toBe(1);
    s.sync();
    expect(s.soc.iommu(SMMU).tlb()).toEqual([]);
  });
});
