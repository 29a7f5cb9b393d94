import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RK_STATUS } from '../../hw/rockchip-regs';
import { EADDRINUSE } from '../errno';
import { checkAgainstReference } from '../testing/driver-reference';
import { presetSoc } from '../testing/presets';

const MMU = 'vdec_mmu';
const DEV = 'vdec';
const RW = 3;

describe('rockchip-iommu driver', () => {
  it('probe links every master to its IOMMU (stateless, pm-runtime); the IOMMU follows the master', async () => {
    const soc = presetSoc('rk3399');
    const k = soc.kernel.api;
    expect(soc.kernel.pm.deviceLinks()).toContainEqual({ consumer: DEV, supplier: MMU, flags: ['stateless', 'pm-runtime'], rpmActive: 1 });
    expect(k.pm.status(MMU)).toBe('suspended');
    const d = await k.domainAlloc(MMU);
    expect(await k.attachDevice(d, DEV)).toBe(0);
    // Attached while suspended: nothing programmed yet.
    expect(soc.readReg(MMU, 'DTE_ADDR')).toBe(0);
    await k.pm.getSync(DEV);
    expect(k.pm.status(MMU)).toBe('active');
    const dt = (soc.kernel.domain(d).priv as { dt: number }).dt;
    // Resume ran rk_iommu_enable on both instances of the VDEC MMU.
    for (const w of [MMU, `${MMU}.1`]) {
      // mk_dtentries(dt): the valid bit set, as upstream writes it; no finding.
      expect(soc.readReg(w, 'DTE_ADDR')).toBe(dt | 1);
      expect(soc.readReg(w, 'STATUS') & (RK_STATUS.PAGING_ENABLED | RK_STATUS.STALL_ACTIVE)).toBe(RK_STATUS.PAGING_ENABLED);
      expect(soc.readReg(w, 'INT_MASK')).toBe(3);
      expect(soc.readReg(w, 'AUTO_GATING') >>> 31).toBe(1);
    }
    await k.pm.put(DEV);
    expect(k.pm.status(MMU)).toBe('suspended');
    // genpd: the master and its IOMMU suspended, their power domain is off.
    expect(soc.powerDomain('pd_vdu').on).toBe(false);
    expect(soc.findings.list()).toEqual([]);
  });

  it('map over an existing mapping: -EADDRINUSE, and what the call wrote is unwound', async () => {
    const soc = presetSoc('rk3399');
    const k = soc.kernel.api;
    const d = await k.domainAlloc(MMU);
    const pa = await k.allocPages(8);
    expect(await k.map(d, 0x403000, pa, 0x1000, RW)).toBe(0);
    expect(await k.map(d, 0x400000, pa, 0x8000, RW)).toBe(-EADDRINUSE);
    for (const iova of [0x400000, 0x401000, 0x402000, 0x404000]) expect(await k.iovaToPhys(d, iova)).toBe(0);
    expect(await k.iovaToPhys(d, 0x403000)).toBe(pa);
    await k.domainFree(d);
    expect(soc.kernel.pages.tablesOf(d.id)).toEqual([]);
  });

  it('zaps only while the IOMMU is in use; map and unmap zap every instance', async () => {
    const soc = presetSoc('rk3399');
    const k = soc.kernel.api;
    const d = await k.domainAlloc(MMU);
    await k.attachDevice(d, DEV);
    const pa = await k.allocPages(4);
    const zaps = (): number => soc.trace.events().filter((e) => e.name === 'ZAP_ONE_LINE').length;
    await k.map(d, 0x800000, pa, 0x4000, RW);
    expect(zaps()).toBe(0);
    await k.pm.getSync(DEV);
    await k.unmap(d, 0x800000, 0x4000);
    // Every unmapped page on both instances.
    expect(zaps()).toBe(8);
    await k.map(d, 0x800000, pa, 0x4000, RW);
    // First and last page on both instances.
    expect(zaps()).toBe(12);
  });

  it('map/unmap/iova_to_phys match a reference model, and every mapped page translates by DMA', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(63), fc.integer({ min: 1, max: 6 }), fc.nat(31)), { maxLength: 24 }), (cmds) => {
        const soc = presetSoc('rk3399');
        checkAgainstReference(soc, { iommu: MMU, dev: DEV, overlapErr: -EADDRINUSE, base: 0x1000_0000 - 32 * 4096, cmds });
      }),
      { numRuns: 60 },
    );
  });
});
