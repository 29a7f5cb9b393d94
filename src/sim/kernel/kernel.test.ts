import { describe, expect, it } from 'vitest';
import { runOp } from '../core/coop';
import { EBUSY } from './errno';
import { FAKE_APERTURE, RAM_BASE, fakeConfig, makeRig } from './testing/fake-iommu';

describe('Kernel and the script-api kernel object', () => {
  it('domains as plain handles; map, iova_to_phys, unmap; IOMMU_* constants', async () => {
    const { kernel } = makeRig();
    const k = kernel.api;
    const d = await k.domainAlloc('iommu0');
    expect(d).toEqual({ id: expect.any(Number), iommu: 'iommu0', type: 'unmanaged' });
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(await k.map(d, 0x100000n, BigInt(RAM_BASE), 0x2000, k.IOMMU_READ | k.IOMMU_WRITE)).toBe(0);
    expect(await k.iovaToPhys(d, 0x101010)).toBe(RAM_BASE + 0x1010);
    expect(await k.unmap(d, 0x100000, 0x2000)).toBe(0x2000);
    expect([k.IOMMU_READ, k.IOMMU_WRITE, k.IOMMU_CACHE, k.IOMMU_NOEXEC, k.IOMMU_MMIO]).toEqual([1, 2, 4, 8, 16]);
    expect(await k.attachGroup(d, k.group('vpu'))).toBe(0);
    const d2 = await k.domainAlloc('iommu0');
    expect(await k.attachGroup(d2, k.group('de'))).toBe(-EBUSY);
    await k.detachGroup(d, k.group('vpu'));
    await k.domainFree(d);
    await expect(k.domainAlloc('nope')).rejects.toThrow(/no probed IOMMU/);
  });

  it('pages, DMA API and driver variant through the object', async () => {
    const { kernel } = makeRig();
    const k = kernel.api;
    const pa = await k.allocPages(2);
    expect(kernel.pages.ownerOf(pa)).toEqual({ kind: 'script' });
    await k.freePages(pa);
    expect(kernel.pages.isAllocated(pa)).toBe(false);
    const iova = await k.dma.mapSingle('vpu', RAM_BASE + 0x10, 0x100, 'bidirectional');
    expect(iova).toBe(FAKE_APERTURE - 0x1000 + 0x10);
    await k.dma.unmapSingle('vpu', iova, 0x100, 'bidirectional');
    const buf = await k.dma.allocCoherent('de', 0x3000);
    expect(buf.iova).toBeGreaterThan(0);
    await k.dma.freeCoherent('de', 0x3000, buf.iova);
    const segs = await k.dma.mapSg('vpu', [{ pa: RAM_BASE, len: 0x1000 }], 'to-device');
    expect(segs).toHaveLength(1);
    const drv = k.driver('iommu0');
    expect(drv.model).toBe('arm-lpae');
    expect(drv.variant.flushTables).toBe(true);
    drv.setVariant({ flushTables: false });
    expect(k.driver('iommu0').variant.flushTables).toBe(false);
  });

  it('runtime PM through a device link programs the IOMMU on the master\'s resume and stops it after', async () => {
    const { kernel, hw } = makeRig({ config: fakeConfig(undefined, { link: true }) });
    const k = kernel.api;
    expect(k.pm.status('iommu0')).toBe('suspended');
    expect(await k.pm.getSync('vpu')).toBe(0);
    expect(k.pm.status('iommu0')).toBe('active');
    expect(hw.enable).toBe(1);
    expect(hw.ttb).toBe((kernel.core.dmaDomain('vpu')!.priv as { table: number }).table);
    await k.pm.put('vpu');
    expect(k.pm.status('vpu')).toBe('suspended');
    expect(k.pm.status('iommu0')).toBe('suspended');
    expect(hw.enable).toBe(0);
  });

  it('without the link the IOMMU stays off while the master runs; CONFIG_PM=n keeps all active', async () => {
    const { kernel, hw } = makeRig();
    const k = kernel.api;
    await k.pm.getSync('vpu');
    expect(k.pm.status('iommu0')).toBe('suspended');
    expect(hw.enable).toBe(0);
    await k.deviceLinkAdd('de', 'iommu0', ['pm-runtime', 'rpm-active']);
    expect(k.pm.status('iommu0')).toBe('active');
    await expect(k.deviceLinkAdd('iommu0', 'de', ['pm-runtime'])).rejects.toThrow(/NULL/);
    k.pm.setEnabled(false);
    expect(k.pm.status('iommu0')).toBe('active');
    expect(await k.pm.getSync('de')).toBe(1);
    expect(await k.pm.setControl('de', 'on')).toBe(0);
  });

  it('throughput of the hot paths (map+unmap 4 KiB, dma map+unmap single)', async () => {
    const { kernel } = makeRig();
    const k = kernel.api;
    const d = await k.domainAlloc('iommu0');
    const n = 100_000;
    let t = performance.now();
    for (let i = 0; i < n; i++) {
      await k.map(d, 0x200000, RAM_BASE, 0x1000, 3);
      await k.unmap(d, 0x200000, 0x1000);
    }
    const mapRate = n / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < n; i++) {
      const iova = await k.dma.mapSingle('vpu', RAM_BASE + 0x40, 0x100, 'to-device');
      await k.dma.unmapSingle('vpu', iova, 0x100, 'to-device');
    }
    const dmaRate = n / ((performance.now() - t) / 1000);
    // Direct generator calls, without the async API layer.
    const dom = kernel.domain(d);
    t = performance.now();
    for (let i = 0; i < n; i++) {
      runOp(kernel.core.map(dom, 0x200000, RAM_BASE, 0x1000, 3));
      runOp(kernel.core.unmap(dom, 0x200000, 0x1000));
    }
    const coreRate = n / ((performance.now() - t) / 1000);
    console.log(`map+unmap via api: ${Math.round(mapRate)}/s; via core: ${Math.round(coreRate)}/s; dma map+unmap single: ${Math.round(dmaRate)}/s`);
    expect(mapRate).toBeGreaterThan(10_000);
  });
});
