import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/validate';
import type { SocConfig } from '../config/types';
import { IOMMU_MODELS, Soc } from '../soc';
import { MTK_INT_CLR, MTK_INV_ALL, MTK_INV_RANGE, MTK_INVLD_EN0, mtkM4uId } from './mtk-v7s';

const PRESET = fileURLToPath(new URL('../../../resources/socs/mt8183.soc.json', import.meta.url));
const IOMMU = 'iommu0';
const L1 = 0x4000_0000;
const L2A = 0x4001_0000;
const L2B = 0x4001_0400;
const DATA = 0x4800_0000;
const FOUR_G = 0x1_0000_0000;

function preset(): SocConfig {
  return JSON.parse(readFileSync(PRESET, 'utf8')) as SocConfig;
}

/** The MT8183 preset with no kernel driver: the test programs the M4U itself. */
function m4uSoc(edit?: (c: SocConfig) => void): Soc {
  const c = preset();
  edit?.(c);
  return new Soc(c, 1, IOMMU_MODELS, []);
}

class M4u {
  constructor(readonly soc: Soc) {}

  set(reg: string, v: number): void {
    this.soc.writeReg(IOMMU, reg, v);
  }

  reg(name: string): number {
    return this.soc.readReg(IOMMU, name);
  }

  /** A CPU store to a table, cleaned for the non-coherent walker unless told not to. */
  put(pa: number, v: number, clean = true): void {
    this.soc.writel(v >>> 0, pa);
    if (clean) this.soc.cache.clean(pa, 4);
  }

  l1(iova: number, desc: number, n = 1): void {
    for (let i = 0; i < n; i++) this.put(L1 + ((iova >>> 20) + i) * 4, desc);
  }

  l2(table: number, iova: number, desc: number, n = 1): void {
    for (let i = 0; i < n; i++) this.put(table + (((iova >>> 12) & 0xff) + i) * 4, desc);
  }

  enable(larbBits: Record<number, number> = { 0: 1 }): void {
    this.set('PT_BASE_ADDR', L1);
    this.set('INV_SEL', 3);
    this.set('INT_MAIN_CONTROL', 0x3fff);
    for (const [larb, bits] of Object.entries(larbBits)) this.set(`LARB${larb}_MMU_EN`, bits);
  }

  range(start: number, end: number): void {
    this.set('INVLD_START_A', start);
    this.set('INVLD_END_A', end);
    this.set('INVALIDATE', MTK_INV_RANGE);
  }

  xlate(dev: string, iova: number, access: 'read' | 'write' = 'read'): number | string {
    const t = this.soc.iommu(IOMMU).translate(this.soc.device(dev).port, iova, access);
    return t.ok ? t.pa : t.fault.reason;
  }
}

const small = (pa: number): number => ((pa % FOUR_G) & 0xfffff000) | 0x2;
const large = (pa: number): number => ((pa % FOUR_G) & 0xffff0000) | 0x1;
const section = (pa: number): number => ((pa % FOUR_G) & 0xfff00000) | 0x2;
const supersection = (pa: number): number => ((pa % FOUR_G) & 0xff000000) | (1 << 18) | 0x2;
const table = (pa: number): number => (pa & 0xfffffc00) | 0x1;

describe('MediaTek M4U model (mtk-v7s)', () => {
  it('the MT8183 preset validates', () => {
    const r = parseConfig(readFileSync(PRESET, 'utf8'), PRESET);
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it('walks small pages, large pages, sections and supersections', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0010_0000, table(L2A));
    m.l2(L2A, 0x0010_1000, small(DATA + 0x3000));
    m.l2(L2A, 0x0012_0000, large(DATA + 0x50000), 16);
    m.l1(0x0200_0000, section(DATA + 0x0040_0000));
    m.l1(0x0300_0000, supersection(DATA + 0x0100_0000), 16);
    expect(m.xlate('disp_ovl0', 0x0010_1234)).toBe(DATA + 0x3234);
    expect(m.xlate('disp_ovl0', 0x0012_f008, 'write')).toBe(DATA + 0x5f008);
    expect(m.xlate('disp_ovl0', 0x020a_bcde)).toBe(DATA + 0x004a_bcde);
    expect(m.xlate('disp_ovl0', 0x03f0_0010)).toBe(DATA + 0x01f0_0010);
    const sizes = m.soc.iommu(IOMMU).tlb().map((e) => e.size).sort((a, b) => a - b);
    expect(sizes).toEqual([0x1000, 0x10000, 0x100000, 0x1000000]);
    expect(m.soc.iommu(IOMMU).walkCache()).toEqual([{ iova: 0x0010_0000, span: 0x100000, tablePa: L1 + 4, entries: [table(L2A)], valid: true }]);
    expect(m.soc.iommu(IOMMU).stats()).toMatchObject({ walks: 4, misses: 4, hits: 0 });
  });

  it('decodes the MediaTek PA extension bits 9/4/5 as PA bits 32/33/34 at both levels', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0010_0000, table(L2A));
    m.l2(L2A, 0x0010_0000, small(0x2000_0000) | (1 << 9));
    m.l2(L2A, 0x0010_1000, small(0) | (1 << 4) | (1 << 5));
    m.l1(0x0500_0000, section(0x2030_0000) | (1 << 9));
    expect(m.xlate('disp_ovl0', 0x0010_0010)).toBe(FOUR_G + 0x2000_0010);
    expect(m.xlate('disp_ovl0', 0x0010_1000)).toBe(6 * FOUR_G);
    expect(m.xlate('disp_ovl0', 0x0500_0040)).toBe(FOUR_G + 0x2030_0040);
    // A DMA beat really reaches RAM above 4 GiB.
    m.soc.cache.write(FOUR_G + 0x2000_0000, Uint8Array.of(1, 2, 3, 4));
    m.soc.cache.clean(FOUR_G + 0x2000_0000, 4);
    expect(m.soc.device('disp_ovl0').read(0x0010_0000, 4).data).toEqual(Uint8Array.of(1, 2, 3, 4));
  });

  it('without the MTK extension, checks AF and AP instead', () => {
    const m = new M4u(m4uSoc((c) => (c.iommus[0]!.options!.mtkExt = false)));
    m.enable();
    m.l1(0x0010_0000, table(L2A));
    const af = 1 << 4;
    const unpriv = 1 << 5;
    const ro = 1 << 9;
    m.l2(L2A, 0x0010_0000, small(DATA) | af | unpriv);
    m.l2(L2A, 0x0010_1000, small(DATA) | af | unpriv | ro);
    m.l2(L2A, 0x0010_2000, small(DATA) | unpriv);
    expect(m.xlate('disp_ovl0', 0x0010_0000, 'write')).toBe(DATA);
    expect(m.xlate('disp_ovl0', 0x0010_1000, 'read')).toBe(DATA);
    expect(m.xlate('disp_ovl0', 0x0010_1000, 'write')).toBe('permission');
    expect(m.xlate('disp_ovl0', 0x0010_2000, 'read')).toBe('permission');
    m.soc.findings.take();
  });

  it('records NS in the TLB entry', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0200_0000, section(DATA) | (1 << 19));
    m.xlate('disp_ovl0', 0x0200_0000);
    expect(m.soc.iommu(IOMMU).tlb()[0]!.attrs).toEqual({ ns: 1 });
  });

  it('ports whose larb MMU_EN bit is clear bypass translation', () => {
    const m = new M4u(m4uSoc());
    m.enable({ 0: 1 });
    expect(m.xlate('mdp_rdma0', 0x4800_1000)).toBe(0x4800_1000);
    m.set('LARB0_MMU_EN', 1 | (1 << 6));
    expect(m.xlate('mdp_rdma0', 0x4800_1000)).toBe('dte-invalid');
    m.soc.findings.take();
  });

  it('a fault latches FAULT_ST1, FAULT_VA, INVLD_PA and the remapped INT_ID and raises the IRQ until INT_CLR', () => {
    const m = new M4u(m4uSoc());
    m.enable({ 4: 1 << 1 });
    m.l1(0x0010_0000, table(L2A));
    expect(m.xlate('venc', 0x0010_5000, 'write')).toBe('pte-invalid');
    expect(m.reg('FAULT_ST1')).toBe(1);
    expect(m.reg('MMU0_FAULT_VA')).toBe(0x0010_5000 | 2 | 1);
    expect(m.reg('MMU0_INVLD_PA')).toBe(L2A + 5 * 4);
    // venc is larb 4 port 1; MT8183 reports larb 4 as hardware larb 1.
    expect(m.reg('MMU0_INT_ID')).toBe((1 << 7) | (1 << 2));
    expect(m.soc.irqs.level(166)).toBe(true);
    // A second fault does not overwrite the first.
    expect(m.xlate('venc', 0x0700_0000)).toBe('dte-invalid');
    expect(m.reg('MMU0_FAULT_VA')).toBe(0x0010_5000 | 3);
    m.set('INT_CONTROL0', MTK_INT_CLR);
    expect(m.reg('FAULT_ST1')).toBe(0);
    expect(m.reg('INT_CONTROL0') & MTK_INT_CLR).toBe(0);
    expect(m.soc.irqs.level(166)).toBe(false);
    const f = m.soc.findings.take();
    expect(f.map((x) => x.kind)).toEqual(['fault', 'fault']);
    expect(m.soc.iommu(IOMMU).faults().map((x) => [x.master, x.access, x.reason])).toEqual([
      ['venc', 'write', 'pte-invalid'],
      ['venc', 'read', 'dte-invalid'],
    ]);
    expect(mtkM4uId(4, 1)).toBe(129);
  });

  it('is strict: entries stay until a covering range invalidation, which sets CPE_DONE', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0010_0000, table(L2A));
    m.l2(L2A, 0x0010_3000, small(DATA));
    expect(m.xlate('disp_ovl0', 0x0010_3000)).toBe(DATA);
    m.l2(L2A, 0x0010_3000, small(DATA + 0x7000));
    expect(m.xlate('disp_ovl0', 0x0010_3000)).toBe(DATA);
    m.range(0x0010_4000, 0x0010_8000);
    expect(m.reg('CPE_DONE')).toBe(1);
    expect(m.xlate('disp_ovl0', 0x0010_3000)).toBe(DATA);
    m.set('CPE_DONE', 0);
    m.range(0x0010_3000, 0x0010_3000);
    expect(m.xlate('disp_ovl0', 0x0010_3000)).toBe(DATA + 0x7000);
  });

  it('keeps the L1 table descriptor cached: a replaced L2 table is only seen after an invalidation', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0010_0000, table(L2A));
    m.l2(L2A, 0x0010_0000, small(DATA));
    m.l2(L2B, 0x0010_1000, small(DATA + 0x9000));
    expect(m.xlate('disp_ovl0', 0x0010_0000)).toBe(DATA);
    m.l1(0x0010_0000, table(L2B));
    // Another page of the same MiB: the cached L1 descriptor still names L2A.
    expect(m.xlate('disp_ovl0', 0x0010_1000)).toBe('pte-invalid');
    m.set('INVALIDATE', MTK_INV_ALL);
    expect(m.soc.iommu(IOMMU).walkCache()).toEqual([]);
    expect(m.xlate('disp_ovl0', 0x0010_1000)).toBe(DATA + 0x9000);
    m.soc.findings.take();
  });

  it('invalidations only reach the MMU0 TLB set when INV_SEL.EN0 is set', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0200_0000, section(DATA));
    m.xlate('disp_ovl0', 0x0200_0000);
    m.set('INV_SEL', 2);
    m.set('INVALIDATE', MTK_INV_ALL);
    expect(m.soc.iommu(IOMMU).tlb()).toHaveLength(1);
    m.set('INV_SEL', MTK_INVLD_EN0);
    m.set('INVALIDATE', MTK_INV_ALL);
    expect(m.soc.iommu(IOMMU).tlb()).toHaveLength(0);
  });

  it('a busy range invalidation completes after invalidateCycles; CPE_DONE reads 0 until then', () => {
    const m = new M4u(m4uSoc((c) => (c.iommus[0]!.options!.invalidateCycles = 100)));
    m.enable();
    m.l1(0x0200_0000, section(DATA));
    m.xlate('disp_ovl0', 0x0200_0000);
    m.range(0x0200_0000, 0x0200_0000);
    expect(m.soc.iommu(IOMMU).tlb()).toHaveLength(1);
    let polls = 1;
    while (m.reg('CPE_DONE') === 0) polls++;
    expect(polls).toBeGreaterThan(1);
    expect(m.soc.iommu(IOMMU).tlb()).toHaveLength(0);
  });

  it('reports a walk of a descriptor the CPU did not clean', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.put(L1 + (0x0200_0000 >>> 20) * 4, section(DATA), false);
    expect(m.xlate('disp_ovl0', 0x0200_0000)).toBe('dte-invalid');
    expect(m.soc.findings.take().map((f) => f.kind)).toEqual(['unflushed-walk', 'fault']);
  });

  it('IOVAs beyond 32 bits fault; power-off loses registers and caches', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    expect(m.xlate('disp_ovl0', FOUR_G)).toBe('address-size');
    m.l1(0x0200_0000, section(DATA));
    m.xlate('disp_ovl0', 0x0200_0000);
    const iommu = m.soc.iommu(IOMMU);
    iommu.setPowered(false);
    expect(m.xlate('disp_ovl0', 0x0200_0000)).toBe('powered-off');
    iommu.setPowered(true);
    expect(iommu.tlb()).toEqual([]);
    expect(m.reg('PT_BASE_ADDR')).toBe(0);
    expect(m.xlate('disp_ovl0', 0x0200_0000)).toBe(0x0200_0000);
    m.soc.findings.take();
  });

  it('snapshot and restore bring back registers, TLB and walk cache', () => {
    const m = new M4u(m4uSoc());
    m.enable();
    m.l1(0x0010_0000, table(L2A));
    m.l2(L2A, 0x0010_0000, small(DATA));
    m.xlate('disp_ovl0', 0x0010_0000);
    const snap = m.soc.snapshot();
    const before = { tlb: m.soc.iommu(IOMMU).tlb(), wc: m.soc.iommu(IOMMU).walkCache() };
    m.set('INVALIDATE', MTK_INV_ALL);
    m.set('PT_BASE_ADDR', 0);
    m.soc.restore(snap);
    expect({ tlb: m.soc.iommu(IOMMU).tlb(), wc: m.soc.iommu(IOMMU).walkCache() }).toEqual(before);
    expect(m.reg('PT_BASE_ADDR')).toBe(L1);
    expect(m.xlate('disp_ovl0', 0x0010_0000)).toBe(DATA);
  });
});
