// soc: rk3399
// P8 (seed 004), the device-link half: a master's runtime PM must carry its IOMMU along. The
// Rockchip driver adds a stateless pm-runtime device link from every master to its IOMMU, so
// resuming the master resumes the IOMMU (whose resume callback programs the domain) and suspending
// every master lets the IOMMU suspend. Without the link the IOMMU stays suspended, translation off,
// while the master does DMA: the checker reports it.
//
// Run: npm run bringup -- --soc resources/socs/rk3399.soc.json resources/examples/problems/p8-rk-device-link.ts

const MMU = 'vopb_mmu';
const DEV = 'vopb';
const IOVA = 0x1000_0000;
const DATA = new Uint8Array([0x5a, 0x5a, 0x5a, 0x5a]);

/** A paging domain attached while the IOMMU is suspended, one page mapped. */
async function domainWithPage(): Promise<{ d: Domain; pa: number; done(): Promise<void> }> {
  const pa = await kernel.allocPages(1);
  await soc.mem.write(pa, DATA);
  await soc.mem.clean(pa, DATA.length);
  const d = await kernel.domainAlloc(MMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  expect(await kernel.map(d, IOVA, pa, 0x1000, kernel.IOMMU_READ | kernel.IOMMU_WRITE)).toBe(0);
  return {
    d,
    pa,
    done: async () => {
      await kernel.detachDevice(d, DEV);
      await kernel.domainFree(d);
      await kernel.freePages(pa);
    },
  };
}

test('with the link: resuming the master resumes its IOMMU, suspending it lets the IOMMU suspend', async () => {
  const { done } = await domainWithPage();
  expect(kernel.pm.status(MMU)).toBe('suspended');
  await kernel.pm.getSync(DEV);
  expect(kernel.pm.status(MMU)).toBe('active');
  expect(await soc.device(DEV).dma.read(IOVA, 4)).toEqual({ ok: true, data: DATA });
  await kernel.pm.put(DEV);
  expect(kernel.pm.status(DEV)).toBe('suspended');
  expect(kernel.pm.status(MMU)).toBe('suspended');
  await done();
  expect(soc.findings()).toEqual([]);
});

test('without the link: the master runs, its IOMMU stays suspended, and the DMA is reported', async () => {
  await kernel.deviceLinkDel(DEV, MMU);
  const { done } = await domainWithPage();
  await kernel.pm.getSync(DEV);
  expect(kernel.pm.status(MMU)).toBe('suspended');
  // Paging is off in a suspended Rockchip IOMMU: the beat goes to PA = IOVA, untranslated.
  await soc.device(DEV).dma.read(IOVA, 4);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['dma-while-suspended']);
  expect(found[0]!.where).toMatchObject({ iommu: MMU, device: DEV, iova: '0x10000000' });
  expect(found[0]!.message).toContain('runtime-suspended');
  await kernel.pm.put(DEV);
  await kernel.deviceLinkAdd(DEV, MMU, ['stateless', 'pm-runtime']);
  await done();
  expect(soc.findings()).toEqual([]);
});
