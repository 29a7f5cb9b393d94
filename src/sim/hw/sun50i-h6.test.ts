import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/validate';
import { ACI_NONE, ACI_RD, ACI_RD_WR, ACI_WR, DT, H6Driver, h6Soc, IOMMU, PRESET_FILE } from './h6-test-kit';
import { INT_L1PG_INVALID, INT_L2PG_INVALID } from './sun50i-h6';

const IOVA = 0x1000_0000;
const PA1 = 0x4800_0000;
const PA2 = 0x4900_0000;

function setup(edit?: Parameters<typeof h6Soc>[0]) {
  const soc = h6Soc(edit);
  const drv = new H6Driver(soc);
  const de = soc.device('de');
  const iommu = soc.iommu(IOMMU);
  return { soc, drv, de, iommu };
}

/** Put a recognisable word at the start of a physical page (straight to RAM). */
function mark(soc: ReturnType<typeof h6Soc>, pa: number, v: number): void {
  soc.ram.write32(pa, v);
}

const word = (d: Uint8Array | undefined): number => new DataView(d!.buffer, d!.byteOffset).getUint32(0, true);

describe('sun50i-h6 preset', () => {
  it('validates against the schema and builds', () => {
    const r = parseConfig(readFileSync(PRESET_FILE, 'utf8'), PRESET_FILE);
    expect(r.ok).toBe(true);
    const { soc } = setup();
    expect(soc.devices()).toEqual(['de', 've_r', 'di', 've', 'csi', 'vp9']);
    expect(soc.blocks().find((b) => b.name === IOMMU)).toMatchObject({ kind: 'iommu', model: 'sun50i-h6', base: 0x030f0000, size: 0x10000, powered: true });
    expect(soc.readReg(IOMMU, 'VERSION')).toBe(0x10);
  });
});

describe('sun50i-h6 translation', () => {
  it('translates through DT and PT and moves data across several pages', () => {
    const { soc, drv, de, iommu } = setup();
    const pages = [0x4800_0000, 0x4a00_3000, 0x4c10_0000];
    pages.forEach((pa, i) => drv.map(IOVA + i * 0x1000, pa));
    drv.enable();
    const data = Uint8Array.from({ length: 10000 }, (_, i) => (i * 7) & 0xff);
    expect(de.write(IOVA + 100, data)).toEqual({ ok: true });
    // Bytes land on the three physical pages, split at the page boundaries.
    expect(soc.ram.read(pages[0]! + 100, 3996)).toEqual(data.subarray(0, 3996));
    expect(soc.ram.read(pages[1]!, 4096)).toEqual(data.subarray(3996, 8092));
    expect(soc.ram.read(pages[2]!, 1908)).toEqual(data.subarray(8092));
    expect(de.read(IOVA + 100, 10000)).toEqual({ ok: true, data });
    expect(de.copy(IOVA + 100, IOVA + 5000, 3000).ok).toBe(true);
    expect(soc.ram.read(pages[1]! + 904, 3000)).toEqual(data.subarray(0, 3000));
    // Page 1 came in by prefetch with page 0's walk.
    expect(iommu.stats().walks).toBe(2);
    expect(soc.findings.list()).toEqual([]);
  });

  it('tells where each translation came from: a full walk, a walk through a cached DTE, a TLB hit', () => {
    const { drv, de, iommu } = setup();
    drv.map(IOVA, PA1);
    drv.map(IOVA + 0x1000, PA2);
    drv.enable();
    drv.set('TLB_PREFETCH', 0);
    expect(iommu.translate(de.port, IOVA, 'read')).toMatchObject({ ok: true, pa: PA1, source: 'walk' });
    expect(iommu.translate(de.port, IOVA + 4, 'read')).toMatchObject({ ok: true, pa: PA1 + 4, source: 'tlb' });
    const dte = drv.soc.readl(drv.dtePa(IOVA));
    expect(iommu.translate(de.port, IOVA + 0x1000, 'read')).toMatchObject({ ok: true, pa: PA2, source: 'walk-cache', cachedPa: drv.dtePa(IOVA), cachedValue: dte });
  });

  it('passes DMA through untranslated while ENABLE is 0 or the master is bypassed', () => {
    const { soc, drv, de } = setup();
    mark(soc, PA1, 0xcafe);
    expect(word(de.read(PA1, 4).data)).toBe(0xcafe);
    drv.enable();
    drv.set('BYPASS', 1);
    expect(word(de.read(PA1, 4).data)).toBe(0xcafe);
    drv.set('BYPASS', 0);
    expect(de.read(PA1, 4).fault?.reason).toBe('dte-invalid');
    soc.findings.take();
  });

  it('does not see a PTE the CPU wrote but did not clean, and reports the unflushed walk', () => {
    const { soc, drv, de } = setup();
    drv.enable();
    mark(soc, PA1, 0x1234);
    drv.map(IOVA, PA1, ACI_RD_WR, false);
    const r = de.read(IOVA, 4);
    // The DTE itself is still only in the CPU cache: the walker finds an empty DT slot.
    expect(r.fault).toMatchObject({ reason: 'dte-invalid', master: 'de', access: 'read', iova: IOVA });
    const kinds = soc.findings.take().map((f) => f.kind);
    expect(kinds).toContain('unflushed-walk');
    expect(kinds).toContain('fault');

    soc.cache.clean(drv.dtePa(IOVA), 4);
    // The invalid DTE is held in the PTW cache until invalidated.
    expect(de.read(IOVA, 4).fault?.reason).toBe('dte-invalid');
    soc.findings.take();
    drv.zapPtw(IOVA);
    // Now the DTE is seen, but the PTE is still un-cleaned.
    expect(de.read(IOVA, 4).fault?.reason).toBe('pte-invalid');
    expect(soc.findings.take().map((f) => f.kind)).toContain('unflushed-walk');

    soc.cache.clean(drv.ptePa(IOVA), 4);
    expect(word(de.read(IOVA, 4).data)).toBe(0x1234);
    expect(soc.findings.list()).toEqual([]);
  });

  it('a coherent walker sees un-cleaned table writes', () => {
    const { soc, drv, de } = setup((c) => (c.iommus[0]!.coherentWalk = true));
    drv.enable();
    mark(soc, PA1, 0x77);
    drv.map(IOVA, PA1, ACI_RD_WR, false);
    expect(word(de.read(IOVA, 4).data)).toBe(0x77);
    expect(soc.findings.list()).toEqual([]);
  });
});

describe('sun50i-h6 TLB and PTW cache are strict', () => {
  function remapped() {
    const s = setup();
    s.drv.enable();
    s.drv.set('TLB_PREFETCH', 0);
    mark(s.soc, PA1, 0x1111);
    mark(s.soc, PA2, 0x2222);
    s.drv.map(IOVA, PA1);
    expect(word(s.de.read(IOVA, 4).data)).toBe(0x1111);
    s.drv.map(IOVA, PA2);
    return s;
  }

  it('keeps using a stale entry until an address+mask invalidation covers it', () => {
    const { drv, de, iommu } = remapped();
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111);
    drv.zapIova(IOVA + 0x1000);
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111);
    drv.zapIova(IOVA + 0x100000, 0xfff00000);
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111);
    expect(iommu.tlb().map((e) => e.level).sort()).toEqual(['macro', 'micro0']);
    drv.zapIova(IOVA + 0xabc);
    expect(iommu.tlb()).toEqual([]);
    expect(word(de.read(IOVA, 4).data)).toBe(0x2222);
  });

  it('a coarse mask clears every entry it covers', () => {
    const { drv, de } = remapped();
    drv.zapIova(IOVA + 0x80000, 0xfff00000);
    expect(word(de.read(IOVA, 4).data)).toBe(0x2222);
  });

  it('per-master micro-TLB flush leaves the macro-TLB, and the macro flush clears it', () => {
    const { soc, drv, de, iommu } = remapped();
    const ve = soc.device('ve');
    expect(word(ve.read(IOVA, 4).data)).toBe(0x1111); // from the macro-TLB
    drv.set('TLB_FLUSH', 1 << 0);
    expect(drv.reg('TLB_FLUSH')).toBe(0);
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111); // micro0 refilled from the stale macro entry
    expect(iommu.tlb().filter((e) => e.level === 'micro3')).toHaveLength(1);
    drv.set('TLB_FLUSH', 1 << 16);
    drv.set('TLB_FLUSH', 1 << 0);
    expect(word(de.read(IOVA, 4).data)).toBe(0x2222);
    expect(word(ve.read(IOVA, 4).data)).toBe(0x1111); // micro3 was not flushed
    drv.set('TLB_FLUSH', 1 << 3);
    expect(word(ve.read(IOVA, 4).data)).toBe(0x2222);
  });

  it('a cached DTE survives a TLB flush and goes only with a PTW invalidation of its 1 MiB region', () => {
    const { soc, drv, de, iommu } = setup();
    drv.enable();
    mark(soc, PA1, 0x1111);
    mark(soc, PA2, 0x2222);
    drv.map(IOVA, PA1);
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111);
    expect(iommu.walkCache()).toEqual([{ iova: IOVA, span: 0x100000, tablePa: drv.dtePa(IOVA), entries: [soc.readl(drv.dtePa(IOVA))], valid: true }]);
    // Move the region to a new PT that maps PA2.
    const newPt = 0x4020_0000;
    soc.writel(newPt | 1, drv.dtePa(IOVA));
    soc.writel((PA2 | (ACI_RD_WR << 4) | 2) >>> 0, newPt);
    soc.cache.clean(drv.dtePa(IOVA), 4);
    soc.cache.clean(newPt, 4);
    drv.set('TLB_FLUSH', 0x3f | (1 << 16));
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111);
    drv.set('TLB_FLUSH', 0x3f | (1 << 16));
    drv.zapPtw(IOVA + 0x100000);
    expect(word(de.read(IOVA, 4).data)).toBe(0x1111);
    drv.set('TLB_FLUSH', 0x3f | (1 << 16));
    drv.zapPtw(IOVA + 0xff000);
    expect(word(de.read(IOVA, 4).data)).toBe(0x2222);
  });

  it('traces capacity evictions in batches per cache level', () => {
    const { soc, drv, de, iommu } = setup((c) => {
      c.iommus[0]!.tlb = { entries: 4 };
      c.iommus[0]!.options = { microTlbEntries: 2 };
    });
    drv.enable();
    drv.set('TLB_PREFETCH', 0);
    for (let i = 0; i < 8; i++) drv.map(IOVA + i * 0x1000, PA1 + i * 0x1000);
    expect(de.read(IOVA, 8 * 4096).ok).toBe(true);
    expect(iommu.tlb().map((e) => e.level).sort()).toEqual(['macro', 'macro', 'macro', 'macro', 'micro0', 'micro0']);
    const ev = soc.trace.events().filter((e) => e.name === 'evict');
    const count = (level: string): number => ev.filter((e) => e.args?.level === level).reduce((n, e) => n + Number(e.args?.count), 0);
    expect([count('micro0'), count('macro')]).toEqual([6, 4]);
  });

  it('prefetch loads the next page, which then needs the +4 KiB zap', () => {
    const { soc, drv, de, iommu } = setup();
    drv.enable();
    mark(soc, PA1, 0x1111);
    drv.map(IOVA, PA1);
    drv.map(IOVA + 0x1000, PA1 + 0x1000);
    de.read(IOVA, 4);
    expect(iommu.tlb().filter((e) => e.level === 'macro').map((e) => e.iova)).toEqual([IOVA, IOVA + 0x1000]);
    drv.zapIova(IOVA);
    drv.zapIova(IOVA + 0x1000);
    expect(iommu.tlb()).toEqual([]);
  });
});

describe('sun50i-h6 registers', () => {
  it('self-clearing bits read 0 when done, also when invalidation takes time', () => {
    const { drv, soc } = setup((c) => (c.iommus[0]!.options = { invalidateCycles: 100 }));
    drv.set('TLB_FLUSH', 0x0003003f);
    expect(drv.reg('TLB_FLUSH')).toBe(0x0003003f);
    expect(drv.poll('TLB_FLUSH')).toBeGreaterThan(1);
    drv.set('TLB_IVLD_ENABLE', 1);
    soc.run(100);
    expect(drv.reg('TLB_IVLD_ENABLE')).toBe(0);
    drv.set('PC_IVLD_ENABLE', 1);
    expect(drv.reg('PC_IVLD_ENABLE')).toBe(1);
    expect(drv.poll('PC_IVLD_ENABLE')).toBeGreaterThan(1);
  });

  it('INT_CLR clears only the INT_STA bits written as 1, and the IRQ line follows', () => {
    const { soc, drv, de, iommu } = setup();
    drv.enable();
    de.read(IOVA, 4);
    soc.device('csi').write(IOVA + 0x3000_0000, new Uint8Array(4));
    drv.map(IOVA + 0x5000_0000, PA1, ACI_NONE);
    soc.device('ve').write(IOVA + 0x5000_0000, new Uint8Array(4));
    expect(drv.reg('INT_STA')).toBe(INT_L1PG_INVALID | (1 << 3));
    expect(soc.irqs.level(57)).toBe(true);
    drv.set('INT_CLR', INT_L1PG_INVALID);
    expect(drv.reg('INT_STA')).toBe(1 << 3);
    expect(drv.reg('INT_CLR')).toBe(0);
    expect(soc.irqs.level(57)).toBe(true);
    drv.set('INT_CLR', 1 << 3);
    expect(drv.reg('INT_STA')).toBe(0);
    expect(soc.irqs.level(57)).toBe(false);
    expect(iommu.faults().map((f) => [f.master, f.reason])).toEqual([
      ['de', 'dte-invalid'],
      ['csi', 'dte-invalid'],
      ['ve', 'permission'],
    ]);
    soc.findings.take();
  });

  it('the mainline double write to DM_AUT_CTRL1 leaves ACI 2 (read-only) writable', () => {
    const { soc, drv } = setup();
    drv.enable();
    expect(drv.reg('DM_AUT_CTRL1')).toBe(0x05550000);
    drv.map(IOVA, PA1, ACI_RD);
    expect(soc.device('ve').write(IOVA, new Uint8Array([1, 2, 3, 4])).ok).toBe(true);
    expect(soc.findings.list()).toEqual([]);
  });

  it('a write to a read-only (ACI 2) page faults with permission, INT_STA, ERR_ADDR and ERR_DATA', () => {
    const { soc, drv, iommu } = setup();
    drv.enable({ 0x0b0: 0x0fff0000, 0x0b4: [0x05550aaa] });
    drv.map(IOVA, PA1, ACI_RD);
    drv.map(IOVA + 0x1000, PA2, ACI_WR);
    const ve = soc.device('ve');
    expect(ve.read(IOVA, 8).ok).toBe(true);
    const r = ve.write(IOVA + 0x10, new Uint8Array(4));
    expect(r).toMatchObject({ ok: false, fault: { iova: IOVA + 0x10, master: 've', access: 'write', reason: 'permission', iommu: IOMMU } });
    expect(drv.reg('INT_STA')).toBe(1 << 3);
    expect(drv.reg('INT_ERR_ADDR3')).toBe(IOVA + 0x10);
    expect(drv.reg('INT_ERR_DATA3')).toBe((PA1 | (ACI_RD << 4) | 2) >>> 0);
    expect((drv.reg('INT_ERR_DATA3') >>> 4) & 0xf).toBe(ACI_RD);
    expect(soc.irqs.level(57)).toBe(true);
    expect(ve.read(IOVA + 0x1000, 4).fault?.reason).toBe('permission');
    expect(iommu.stats().faults).toBe(2);
    expect(soc.findings.take().filter((f) => f.kind === 'fault')).toHaveLength(2);
    expect(iommu.tlb().find((e) => e.level === 'micro3' && e.iova === IOVA)).toMatchObject({ perms: ['read'], attrs: { aci: ACI_RD } });
  });

  it('invalid DTE and invalid PTE faults set the L1/L2 address and blame registers', () => {
    const { soc, drv } = setup();
    drv.enable();
    expect(soc.device('di').read(0x2000_0000, 4).fault?.reason).toBe('dte-invalid');
    expect(drv.reg('INT_STA')).toBe(INT_L1PG_INVALID);
    expect(drv.reg('INT_ERR_ADDR_L1')).toBe(0x2000_0000);
    expect(drv.reg('L1PG_INT')).toBe(1 << 2);
    drv.map(IOVA, PA1);
    expect(soc.device('vp9').write(IOVA + 0x4000, new Uint8Array(4)).fault?.reason).toBe('pte-invalid');
    expect(drv.reg('INT_STA')).toBe(INT_L1PG_INVALID | INT_L2PG_INVALID);
    expect(drv.reg('INT_ERR_ADDR_L2')).toBe(IOVA + 0x4000);
    expect(drv.reg('L2PG_INT')).toBe(1 << 5);
    drv.set('INT_CLR', INT_L1PG_INVALID | INT_L2PG_INVALID);
    expect([drv.reg('INT_STA'), drv.reg('L1PG_INT'), drv.reg('L2PG_INT')]).toEqual([0, 0, 0]);
    soc.findings.take();
  });

  it('reports a misaligned TTB and writes to reserved bits', () => {
    const { soc, drv } = setup();
    drv.set('TTB', DT + 0x400);
    expect(drv.reg('TTB')).toBe(DT);
    drv.set('TLB_PREFETCH', 0x7f);
    const f = soc.findings.take();
    expect(f.map((x) => x.kind)).toEqual(['misaligned-table', 'reserved-bits']);
    expect(f[1]!.message).toMatch(/TLB_PREFETCH.*0x40/);
    drv.set('RESET', 0xffffffff);
    expect(soc.findings.list()).toEqual([]);
  });

  it('a master held in reset cannot translate, and reset drops its micro-TLB', () => {
    const { soc, drv, de, iommu } = setup();
    drv.enable();
    drv.map(IOVA, PA1);
    de.read(IOVA, 4);
    drv.set('RESET', ~1 >>> 0);
    expect(iommu.tlb().map((e) => e.level)).not.toContain('micro0');
    expect(de.read(IOVA, 4).fault?.reason).toBe('master-reset');
    drv.set('RESET', 0xffffffff);
    expect(de.read(IOVA, 4).ok).toBe(true);
    soc.findings.take();
  });
});

describe('sun50i-h6 power', () => {
  it('powering off loses registers, TLBs and caches; MMIO reads reset values; DMA faults', () => {
    const { soc, drv, de, iommu } = setup();
    drv.enable();
    drv.map(IOVA, PA1);
    de.read(IOVA, 4);
    expect(iommu.tlb().length).toBeGreaterThan(0);
    soc.powerDomain('pd_iommu').set(false);
    expect(iommu.isPowered()).toBe(false);
    expect(drv.reg('DM_AUT_CTRL0')).toBe(0xaaa);
    drv.set('TTB', DT);
    expect(soc.findings.take().map((f) => f.kind)).toEqual(['mmio-while-off', 'mmio-while-off']);
    const r = de.read(IOVA, 4);
    expect(r.fault?.reason).toBe('powered-off');
    // Not a fault of the IOMMU: the power checker names it.
    expect(soc.findings.take().map((f) => f.kind)).toEqual(['dma-while-suspended']);
    soc.powerDomain('pd_iommu').set(true);
    expect([drv.reg('TTB'), drv.reg('ENABLE'), drv.reg('INT_ENABLE')]).toEqual([0, 0, 0]);
    expect(iommu.tlb()).toEqual([]);
    expect(iommu.walkCache()).toEqual([]);
  });

  it('a bus-error domain throws on MMIO while off', () => {
    const { soc, drv } = setup((c) => (c.powerDomains![0]!.offAccess = 'bus-error'));
    soc.powerDomain('pd_iommu').set(false);
    expect(() => drv.reg('TTB')).toThrow(/bus error/);
    soc.findings.take();
  });
});

describe('sun50i-h6 snapshot', () => {
  it('restores registers, TLBs, PTW cache, RAM and faults', () => {
    const { soc, drv, de, iommu } = setup();
    drv.enable();
    drv.map(IOVA, PA1);
    de.write(IOVA, Uint8Array.of(9, 9, 9, 9));
    const snap = soc.snapshot();
    const before = { tlb: iommu.tlb(), ptw: iommu.walkCache(), ttb: drv.reg('TTB'), stats: iommu.stats() };
    drv.set('TLB_FLUSH', 0x3003f);
    drv.set('ENABLE', 0);
    de.write(PA1, Uint8Array.of(1, 1, 1, 1));
    soc.device('di').read(0x2000_0000, 4);
    soc.restore(snap);
    expect({ tlb: iommu.tlb(), ptw: iommu.walkCache(), ttb: drv.reg('TTB'), stats: iommu.stats() }).toEqual(before);
    expect(drv.reg('ENABLE')).toBe(1);
    expect(soc.ram.read(PA1, 4)).toEqual(Uint8Array.of(9, 9, 9, 9));
    expect(iommu.faults()).toEqual([]);
  });
});
