import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { SocConfig } from '../../config/types';
import { SMMU_PAGE } from '../../hw/arm-smmu';
import { decodeFields } from '../../regs/dsl';
import { IOMMU_MODELS, Soc } from '../../soc';
import { armSmmuDriver } from './arm-smmu';

const PRESET = fileURLToPath(new URL('../../../../resources/socs/arm64-smmu.soc.json', import.meta.url));
const SMMU = 'smmu0';
const RW = 3;

function smmuSoc(edit?: (c: SocConfig) => void): Soc {
  const c = JSON.parse(readFileSync(PRESET, 'utf8')) as SocConfig;
  edit?.(c);
  const soc = new Soc(c, 1, IOMMU_MODELS, [armSmmuDriver()]);
  // The kernel boots on first use: probe the driver now.
  void soc.kernel;
  return soc;
}

function fill(soc: Soc, pa: number, len = 16): Uint8Array {
  const b = Uint8Array.from({ length: len }, (_, i) => (pa / 4096 + i * 5) & 0xff);
  soc.cache.write(pa, b);
  soc.cache.clean(pa, len);
  return b;
}

const cbOf = (soc: Soc, dev: string): number => (soc.kernel.core.dmaDomain(dev)!.priv as { cb: number }).cb;

const MAPPINGS = [
  { iova: 0x0010_0000, pa: 0x8800_3000, size: 0x1000 },
  { iova: 0x0060_0000, pa: 0x8860_0000, size: 0x200000 },
  { iova: 0x4000_0000, pa: 0x8000_0000, size: 0x40000000 },
];

describe('arm-smmu driver on the SMMUv2 model', () => {
  it('resets the SMMU, gives every device a stream match entry and its default domain a context bank', () => {
    const soc = smmuSoc();
    expect(soc.readReg(SMMU, 'sCR0') & 1).toBe(0);
    const cbs = soc.devices().map((dev) => cbOf(soc, dev));
    expect(cbs).toEqual([0, 1, 2, 3]);
    const display = soc.kernel.core.dmaDomain('display')!;
    const s1 = (display.priv as { cfg: { armLpaeS1Cfg: { ttbr: number } } }).cfg.armLpaeS1Cfg;
    expect(soc.readReg(SMMU, 'CB0_TTBR0_LO')).toBe(s1.ttbr);
    expect(soc.readReg(SMMU, 'CB0_TTBR0_HI')).toBe(0);
    expect(soc.readReg(SMMU, 'CB1_TTBR0_HI') >>> 16).toBe(1);
    // T0SZ 16 (48-bit VA), EPD1, non-coherent walks: NC/outer shareable.
    expect(soc.readReg(SMMU, 'CB0_TCR')).toBe(16 | (2 << 12) | (1 << 23));
    expect(soc.readReg(SMMU, 'CB0_SCTLR')).toBe(0x1067);
    expect(soc.readReg(SMMU, 'SMR0')).toBe((0x8000_0000 | 16) >>> 0);
    expect(soc.readReg(SMMU, 'S2CR0')).toBe(0);
    expect(soc.readReg(SMMU, 'S2CR4') >>> 16).toBe(2);
    expect(soc.findings.list()).toEqual([]);
  });

  it('programs MAIR as upstream computes it: MAIR1 = 0xffffffff (0xf4 << 24 sign-extends), and the inspector says what it holds', () => {
    const soc = smmuSoc();
    expect(soc.readReg(SMMU, 'CB0_MAIR0')).toBe(0xf404ff44);
    expect(soc.readReg(SMMU, 'CB0_MAIR1')).toBe(0xffffffff);
    const meta = soc.registerFile(SMMU).decl.meta.registers.find((r) => r.name === 'CB0_MAIR1')!;
    expect(decodeFields(meta, soc.readReg(SMMU, 'CB0_MAIR1'))).toEqual(['Attr4', 'Attr5', 'Attr6', 'Attr7'].map((name) => ({ name, value: 0xff, label: undefined })));
    expect(meta.doc).toMatch(/sign-extends/);
    expect(soc.findings.list()).toEqual([]);
  });

  it('maps 4 KiB pages, 2 MiB and 1 GiB blocks through the kernel; DMA translates; unmap makes DMA fault; no table leaks', async () => {
    const soc = smmuSoc();
    const k = soc.kernel.api;
    const d = await k.domainAlloc(SMMU);
    expect(await k.attachDevice(d, 'gpu')).toBe(0);
    expect(soc.readReg(SMMU, 'S2CR2')).toBe(4);
    for (const m of MAPPINGS) expect(await k.map(d, m.iova, m.pa, m.size, RW)).toBe(0);
    const dev = soc.device('gpu');
    for (const m of MAPPINGS) {
      for (const off of [0, m.size - 16]) {
        const want = fill(soc, m.pa + off);
        expect(await k.iovaToPhys(d, m.iova + off)).toBe(m.pa + off);
        expect(dev.read(m.iova + off, 16).data).toEqual(want);
      }
    }
    expect(new Set(soc.iommu(SMMU).tlb().map((e) => e.size))).toEqual(new Set([0x1000, 0x200000, 0x40000000]));
    for (const m of MAPPINGS) expect(await k.unmap(d, m.iova, m.size)).toBe(m.size);
    for (const m of MAPPINGS) expect(dev.read(m.iova, 4).ok).toBe(false);
    expect(soc.findings.take().map((f) => f.kind)).toEqual(MAPPINGS.map(() => 'fault'));
    await k.detachDevice(d, 'gpu');
    expect(soc.readReg(SMMU, 'S2CR2')).toBe(2);
    await k.domainFree(d);
    expect(soc.kernel.pages.tablesOf(d.id)).toEqual([]);
    expect(soc.readReg(SMMU, 'CB4_SCTLR')).toBe(0);
    expect(soc.findings.list()).toEqual([]);
  });

  it('a context fault raises the bank\'s interrupt; the handler reports and clears it', async () => {
    const soc = smmuSoc();
    const k = soc.kernel.api;
    expect(soc.device('video').read(0x1234_5000, 4).ok).toBe(false);
    const cb = cbOf(soc, 'video');
    expect(soc.irqs.level(65 + cb)).toBe(true);
    expect(soc.readReg(SMMU, `CB${cb}_FAR_LO`)).toBe(0x1234_5000);
    expect(await k.handleIrq(SMMU)).toBe(true);
    expect(soc.irqs.level(65 + cb)).toBe(false);
    expect(soc.readReg(SMMU, `CB${cb}_FSR`)).toBe(0);
    expect(soc.trace.events().find((e) => e.name === 'io_page_fault')?.args).toMatchObject({ device: 'video', iova: '0x12345000', flags: 0 });
    soc.findings.take();
  });

  it('the DMA API maps through the default domain; unmapping invalidates with TLBIVAL + TLBSYNC', async () => {
    const soc = smmuSoc();
    const k = soc.kernel.api;
    const pa = 0xa000_0000 - 0x10_0000;
    const iova = await k.dma.mapSingle('dma0', pa, 0x3000, 'bidirectional');
    const want = fill(soc, pa + 0x2000);
    expect(soc.device('dma0').read(iova + 0x2000, 16).data).toEqual(want);
    const ops: string[] = [];
    for (const sym of ['arm_smmu_tlb_add_page_s1', 'arm_smmu_tlb_sync_context']) await k.kprobe(sym, () => ops.push(sym));
    await k.dma.unmapSingle('dma0', iova, 0x3000, 'bidirectional');
    expect(ops).toEqual(['arm_smmu_tlb_add_page_s1', 'arm_smmu_tlb_add_page_s1', 'arm_smmu_tlb_add_page_s1', 'arm_smmu_tlb_sync_context']);
    expect(soc.device('dma0').read(iova + 0x2000, 4).ok).toBe(false);
    soc.findings.take();
  });

  it('flushWalk tlbiva drops the walk-cache entry of a table freed by a block-sized unmap; tlbival leaves it pointing at the freed table (P4)', async () => {
    for (const flushWalk of ['tlbiva', 'tlbival', 'tlbiasid'] as const) {
      const soc = smmuSoc();
      const k = soc.kernel.api;
      k.driver(SMMU).setVariant({ flushWalk });
      const d = await k.domainAlloc(SMMU);
      await k.attachDevice(d, 'display');
      await k.map(d, 0x0040_0000, 0x8800_0000, 0x2000, RW);
      expect(soc.device('display').read(0x0040_1000, 4).ok).toBe(true);
      const l2Entry = (): { entries: number[] } | undefined => soc.iommu(SMMU).walkCache().find((e) => e.iova === 0x0040_0000 && e.span === 0x200000);
      const table = (l2Entry()!.entries[0]! & 0xfffff000) >>> 0;
      expect(soc.kernel.pages.isAllocated(table)).toBe(true);
      // A 2 MiB unmap over the L3 table: tlb_flush_walk, then the table is freed.
      expect(await k.unmap(d, 0x0040_0000, 0x200000)).toBe(0x200000);
      expect(soc.kernel.pages.isAllocated(table)).toBe(false);
      expect(l2Entry() !== undefined).toBe(flushWalk === 'tlbival');
    }
  });

  it('freeing a domain turns its bank off, flushes its ASID and frees the bank for the next domain', async () => {
    const soc = smmuSoc();
    const k = soc.kernel.api;
    const d = await k.domainAlloc(SMMU);
    await k.attachDevice(d, 'display');
    await k.map(d, 0x0010_0000, 0x8800_0000, 0x1000, RW);
    soc.device('display').read(0x0010_0000, 4);
    await k.detachDevice(d, 'display');
    await k.domainFree(d);
    expect(soc.iommu(SMMU).tlb().filter((e) => e.attrs?.cb === 4)).toEqual([]);
    const d2 = await k.domainAlloc(SMMU);
    await k.attachDevice(d2, 'video');
    expect((soc.kernel.domain(d2).priv as { cb: number }).cb).toBe(4);
    expect(soc.readReg(SMMU, 'CB4_SCTLR') & 1).toBe(1);
    expect(SMMU_PAGE).toBe(0x1000);
  });
});
