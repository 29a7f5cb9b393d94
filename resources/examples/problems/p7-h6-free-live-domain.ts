// soc: sun50i-h6
// P7 (seed 004, Allwinner H6): freeing a domain whose DT is still in TTB. Its pages go back to the
// allocator and are reused while the walker still reads them as tables. Mainline does exactly this
// (domain_free frees the DT only, and leaks the PTs); Robin Murphy's suggestion on the first
// posting, the variant detachBeforeFree: if the domain being freed is live in hardware, detach
// first (TTB off, invalidate), then free the PTs and the DT.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/problems/p7-h6-free-live-domain.ts

const IOMMU = 'iommu0';
const DEV = 've';
const IOVA = 0x1000_0000;
/** A second mapping in another MiB, never used before the free: nothing of it is cached. */
const IOVA2 = 0x1020_0000;
const RW = 3;

async function liveDomain(): Promise<{ d: Domain; pa: number; ttb: number }> {
  const d = await kernel.domainAlloc(IOMMU);
  expect(await kernel.attachGroup(d, kernel.group(DEV))).toBe(0);
  const pa = await kernel.allocPages(2);
  expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(0);
  expect(await kernel.map(d, IOVA2, pa + 0x1000, 0x1000, RW)).toBe(0);
  expect((await soc.device(DEV).dma.read(IOVA, 4)).ok).toBe(true);
  const ttb = await soc.reg(IOMMU, 'TTB');
  expect(await soc.reg(IOMMU, 'ENABLE')).toBe(1);
  return { d, pa, ttb };
}

/** The group still points at the freed domain (the caller's bug): put it back on its default domain. */
async function recover(d: Domain, pa: number): Promise<void> {
  await kernel.detachGroup(d, kernel.group(DEV));
  await kernel.freePages(pa);
}

test('detachBeforeFree: translation is off before the tables are freed', async () => {
  kernel.driver(IOMMU).setVariant({ detachBeforeFree: true });
  const { d, pa } = await liveDomain();
  await kernel.domainFree(d);
  // sun50i_iommu_disable: ENABLE=0, TTB=0, then the clock gated and RST_BUS_IOMMU asserted.
  expect(soc.blocks().find((b) => b.name === IOMMU)!.powered).toBe(false);
  expect(soc.findings()).toEqual([]);
  await recover(d, pa);
  expect(soc.findings()).toEqual([]);
});

test('upstream (detachBeforeFree: false): TTB keeps pointing at the freed DT, and its reuse is walked', async () => {
  kernel.driver(IOMMU).setVariant({ detachBeforeFree: false });
  const { d, pa, ttb } = await liveDomain();
  await kernel.domainFree(d);
  expect(await soc.reg(IOMMU, 'ENABLE')).toBe(1);
  expect(await soc.reg(IOMMU, 'TTB')).toBe(ttb);
  // Named at the free: the live DT, and the PTs upstream never frees.
  const atFree = soc.takeFindings();
  expect(atFree.map((f) => f.kind)).toEqual(['live-domain-free', 'table-leak']);
  expect(atFree[0]!.where).toMatchObject({ iommu: IOMMU, domain: d.id });
  // The next 16 KiB allocation gets the freed DT back, and fills it with whatever it holds.
  const reused = await kernel.allocPages(4);
  expect(reused).toBe(ttb);
  await soc.mem.write(reused, new Uint8Array(0x4000).fill(0xff));
  await soc.mem.clean(reused, 0x4000);
  const r = await soc.device(DEV).dma.read(IOVA2, 4);
  expect(r.ok).toBe(false);
  expect(r.fault).toMatchObject({ iova: IOVA2, master: DEV, reason: 'dte-invalid' });
  // The walk of the freed (and reused) directory table is named, then its consequence.
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['table-use-after-free', 'fault']);
  kernel.driver(IOMMU).setVariant({ detachBeforeFree: true });
  await kernel.freePages(reused);
  await recover(d, pa);
  soc.takeFindings();
});
