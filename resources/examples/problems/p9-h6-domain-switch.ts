// soc: sun50i-h6
// P9 (seed 004, Allwinner H6): one IOMMU, one group, many domains. The first attach of a domain
// context-switches TTB, and must invalidate the TLBs and the PTW cache, or translations of the
// previous domain survive the switch.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/problems/p9-h6-domain-switch.ts

const IOMMU = 'iommu0';
const DEV = 've';
const IOVA = 0x1000_0000;
const RW = 3;

/** Domain A maps IOVA to a page of 0xaa, domain B to a page of 0xbb; ve reads through A, then B. */
async function switchDomains(): Promise<{ viaB: DmaResult; pageA: number; cleanup: () => Promise<void> }> {
  const pageA = await kernel.allocPages(1);
  const pageB = await kernel.allocPages(1);
  await soc.mem.write(pageA, new Uint8Array(16).fill(0xaa));
  await soc.mem.write(pageB, new Uint8Array(16).fill(0xbb));
  await soc.mem.clean(pageA, 16);
  await soc.mem.clean(pageB, 16);
  const a = await kernel.domainAlloc(IOMMU);
  const b = await kernel.domainAlloc(IOMMU);
  // A domain maps only once it was attached (before, upstream's map oopses): b is attached once to fill it.
  expect(await kernel.attachGroup(b, kernel.group(DEV))).toBe(0);
  expect(await kernel.map(b, IOVA, pageB, 0x1000, RW)).toBe(0);
  await kernel.detachGroup(b, kernel.group(DEV));
  expect(await kernel.attachGroup(a, kernel.group(DEV))).toBe(0);
  expect(await kernel.map(a, IOVA, pageA, 0x1000, RW)).toBe(0);
  expect((await soc.device(DEV).dma.read(IOVA, 4)).data).toEqual(new Uint8Array(4).fill(0xaa));
  await kernel.detachGroup(a, kernel.group(DEV));
  expect(await kernel.attachGroup(b, kernel.group(DEV))).toBe(0);
  const viaB = await soc.device(DEV).dma.read(IOVA, 4);
  return {
    viaB,
    pageA,
    cleanup: async () => {
      await kernel.detachGroup(b, kernel.group(DEV));
      await kernel.domainFree(a);
      await kernel.domainFree(b);
      // Upstream's domain_free frees the DT only: both PTs are leaked (P7 shows the free itself).
      expect(soc.takeFindings().map((f) => f.kind)).toEqual(['table-leak', 'table-leak']);
      await kernel.freePages(pageA);
      await kernel.freePages(pageB);
    },
  };
}

test('upstream: the enable sequence flushes TLBs and PTW cache, B translates to its own page', async () => {
  const { viaB, pageA, cleanup } = await switchDomains();
  expect(viaB).toEqual({ ok: true, data: new Uint8Array(4).fill(0xbb) });
  expect(soc.iommu(IOMMU).tlb().filter((e) => e.pa === pageA)).toEqual([]);
  expect(soc.findings()).toEqual([]);
  await cleanup();
  expect(soc.findings()).toEqual([]);
});

test('invalidateOnSwitch: false: the old domain\'s translation survives the switch', async () => {
  kernel.driver(IOMMU).setVariant({ invalidateOnSwitch: false });
  const { viaB, pageA, cleanup } = await switchDomains();
  // Stale: ve, now in domain B, still reaches domain A's page.
  expect(viaB).toEqual({ ok: true, data: new Uint8Array(4).fill(0xaa) });
  expect(soc.iommu(IOMMU).tlb().filter((e) => e.pa === pageA).length).toBeGreaterThan(0);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['stale-translation']);
  expect(found[0]!.message).toContain(`translated to 0x${pageA.toString(16)}`);
  kernel.driver(IOMMU).setVariant({ invalidateOnSwitch: true });
  await cleanup();
  expect(soc.findings()).toEqual([]);
});
