import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { SocConfig } from '../../config/types';
import { IOMMU_MODELS, Soc } from '../../soc';
import { mtkIommuDriver } from './mtk-iommu';

const PRESET = fileURLToPath(new URL('../../../../resources/socs/mt8183.soc.json', import.meta.url));
const IOMMU = 'iommu0';
const RW = 3;
const FOUR_G = 0x1_0000_0000;

function mtkSoc(edit?: (c: SocConfig) => void): Soc {
  const c = JSON.parse(readFileSync(PRESET, 'utf8')) as SocConfig;
  edit?.(c);
  const soc = new Soc(c, 1, IOMMU_MODELS, [mtkIommuDriver()]);
  // The kernel boots on first use: probe the driver now.
  void soc.kernel;
  return soc;
}

/** Fill RAM at pa (cleaned, so a non-coherent master sees it) with a pattern derived from pa. */
function fill(soc: Soc, pa: number, len = 16): Uint8Array {
  const b = Uint8Array.from({ length: len }, (_, i) => (pa / 4096 + i * 7) & 0xff);
  soc.cache.write(pa, b);
  soc.cache.clean(pa, len);
  return b;
}

const MAPPINGS = [
  { iova: 0x1000_0000, pa: 0x4800_1000, size: 0x1000 },
  { iova: 0x1001_0000, pa: 0x4802_0000, size: 0x10000 },
  { iova: 0x1010_0000, pa: 0x4810_0000, size: 0x100000 },
  { iova: 0x1100_0000, pa: 0x4900_0000, size: 0x1000000 },
  // Above 4 GiB: needs the MediaTek PA extension bits.
  { iova: 0x1200_0000, pa: FOUR_G + 0x2000_0000, size: 0x1000 },
];

describe('mtk_iommu driver on the M4U model', () => {
  it('probes, allocates and attaches the default DMA domain: PT_BASE and the larb ports are programmed', () => {
    const soc = mtkSoc();
    const d = soc.kernel.core.dmaDomain('disp_ovl0')!;
    expect(d.type).toBe('dma');
    const pgd = (d.priv as { iop: { pgd: number } }).iop.pgd;
    expect(soc.readReg(IOMMU, 'PT_BASE_ADDR')).toBe(pgd);
    expect(soc.readReg(IOMMU, 'LARB0_MMU_EN')).toBe((1 << 0) | (1 << 6));
    expect(soc.readReg(IOMMU, 'LARB1_MMU_EN')).toBe(1);
    expect(soc.readReg(IOMMU, 'LARB4_MMU_EN')).toBe(1 << 1);
    expect(soc.readReg(IOMMU, 'LARB6_MMU_EN')).toBe(1);
    expect(soc.readReg(IOMMU, 'INT_MAIN_CONTROL')).toBe(0x3fff);
    expect(soc.kernel.pages.ownerOf(pgd)).toMatchObject({ kind: 'pgtable', level: 1, iommu: IOMMU });
    expect(soc.findings.list()).toEqual([]);
  });

  it('maps every page size (and PAs above 4 GiB) through the kernel; DMA translates; unmap makes DMA fault; no table leaks', async () => {
    const soc = mtkSoc();
    const k = soc.kernel.api;
    const d = await k.domainAlloc(IOMMU);
    expect(await k.attachGroup(d, k.group('disp_ovl0'))).toBe(0);
    for (const m of MAPPINGS) expect(await k.map(d, m.iova, m.pa, m.size, RW)).toBe(0);
    // The master resumes, and through its device link the M4U.
    expect(await k.pm.getSync('disp_ovl0')).toBe(0);
    expect(k.pm.status(IOMMU)).toBe('active');
    const dev = soc.device('disp_ovl0');
    for (const m of MAPPINGS) {
      for (const off of [0, m.size - 16]) {
        const want = fill(soc, m.pa + off);
        expect(await k.iovaToPhys(d, m.iova + off)).toBe(m.pa + off);
        expect(dev.read(m.iova + off, 16).data).toEqual(want);
      }
    }
    const sizes = new Set(soc.iommu(IOMMU).tlb().map((e) => e.size));
    expect([...sizes].sort((a, b) => a - b)).toEqual([0x1000, 0x10000, 0x100000, 0x1000000]);
    expect(soc.kernel.pages.tablesOf(d.id).map((a) => a.bytes).sort((a, b) => a - b)).toEqual([1024, 1024, 16384]);

    for (const m of MAPPINGS) expect(await k.unmap(d, m.iova, m.size)).toBe(m.size);
    for (const m of MAPPINGS) {
      const r = dev.read(m.iova, 4);
      expect(r.ok).toBe(false);
      expect(r.fault?.iova).toBe(m.iova);
    }
    expect(soc.findings.take().map((f) => f.kind)).toEqual(MAPPINGS.map(() => 'fault'));

    await k.pm.put('disp_ovl0');
    await k.detachGroup(d, k.group('disp_ovl0'));
    expect(soc.readReg(IOMMU, 'PT_BASE_ADDR')).toBe((soc.kernel.core.dmaDomain('disp_ovl0')!.priv as { iop: { pgd: number } }).iop.pgd);
    await k.domainFree(d);
    expect(soc.kernel.pages.tablesOf(d.id)).toEqual([]);
    expect(soc.findings.list()).toEqual([]);
  });

  it('a fault raises SPI 166; the ISR reports it, clears it and flushes', async () => {
    const soc = mtkSoc();
    const k = soc.kernel.api;
    await k.pm.getSync('venc');
    expect(soc.device('venc').read(0x2000_0000, 4).ok).toBe(false);
    expect(soc.irqs.level(166)).toBe(true);
    expect(await k.handleIrq(IOMMU)).toBe(true);
    expect(soc.readReg(IOMMU, 'FAULT_ST1')).toBe(0);
    expect(soc.irqs.level(166)).toBe(false);
    expect(await k.handleIrq(IOMMU)).toBe(false);
    const fault = soc.trace.events().find((e) => e.name === 'io_page_fault');
    expect(fault?.args).toMatchObject({ device: 'venc', iova: '0x20000000', flags: 0 });
    soc.findings.take();
  });

  it('the DMA API maps through the default domain and iotlb_sync_map invalidates the range', async () => {
    const soc = mtkSoc();
    const k = soc.kernel.api;
    const pa = 0x4a00_0000;
    await k.pm.getSync('vdec');
    const iova = await k.dma.mapSingle('vdec', pa, 0x2000, 'bidirectional');
    const want = fill(soc, pa + 0x1ff0);
    expect(soc.device('vdec').read(iova + 0x1ff0, 16).data).toEqual(want);
    await k.dma.unmapSingle('vdec', iova, 0x2000, 'bidirectional');
    expect(soc.device('vdec').read(iova, 4).ok).toBe(false);
    expect(soc.findings.take().map((f) => f.kind)).toEqual(['fault']);
  });

  it('tlbOps: true invalidates the range before an L2 table is freed; false (v5.13+) only at iotlb_sync', async () => {
    for (const tlbOps of [true, false]) {
      const soc = mtkSoc();
      const k = soc.kernel.api;
      k.driver(IOMMU).setVariant({ tlbOps });
      const d = await k.domainAlloc(IOMMU);
      await k.attachGroup(d, k.group('camera'));
      await k.map(d, 0x1030_0000, 0x4800_0000, 0x1000, RW);
      const l2 = soc.kernel.pages.tablesOf(d.id).find((a) => a.bytes === 1024)!.pa;
      const seen: boolean[] = [];
      await k.kprobe('mtk_iommu_tlb_flush_range_sync', () => seen.push(soc.kernel.pages.isAllocated(l2)));
      expect(await k.unmap(d, 0x1030_0000, 0x100000)).toBe(0x100000);
      expect(seen).toEqual(tlbOps ? [true, false] : [false]);
      expect(soc.kernel.pages.isAllocated(l2)).toBe(false);
    }
  });

  it('passes the io-pgtable variants down: partialUnmap refuse leaves a section whole', async () => {
    const soc = mtkSoc();
    const k = soc.kernel.api;
    k.driver(IOMMU).setVariant({ partialUnmap: 'refuse' });
    expect(k.driver(IOMMU).variant).toMatchObject({ tableInstall: 'cmpxchg', splitLock: true, partialUnmap: 'refuse', tlbOps: true });
    const d = await k.domainAlloc(IOMMU);
    await k.map(d, 0x1040_0000, 0x4810_0000, 0x100000, RW);
    expect(await k.unmap(d, 0x1040_0000, 0x1000)).toBe(0);
    expect(await k.iovaToPhys(d, 0x1040_1000)).toBe(0x4810_1000);
    expect(soc.findings.take().map((f) => f.kind)).toEqual(['driver-warn', 'unmap-mismatch']);
    k.driver(IOMMU).setVariant({ partialUnmap: 'split' });
    const d2 = await k.domainAlloc(IOMMU);
    await k.map(d2, 0x1040_0000, 0x4810_0000, 0x100000, RW);
    expect(await k.unmap(d2, 0x1040_0000, 0x1000)).toBe(0x1000);
    expect(await k.iovaToPhys(d2, 0x1040_1000)).toBe(0x4810_1000);
    expect(await k.iovaToPhys(d2, 0x1040_0000)).toBe(0);
  });
});
