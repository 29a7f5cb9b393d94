// soc: sun50i-h6
// P6 (seed 004, Allwinner H6): the H6 walker is not cache-coherent. Page-table writes the CPU
// leaves in its cache are invisible to it: upstream cleans every written entry (sun50i_table_flush);
// the variant that never does makes the walker read stale memory.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/problems/p6-h6-unflushed-tables.ts

const IOMMU = 'iommu0';
const DEV = 've';
const IOVA = 0x1000_0000;
const DATA = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);

async function mapOnePage(): Promise<{ d: Domain; pa: number }> {
  const d = await kernel.domainAlloc(IOMMU);
  expect(await kernel.attachGroup(d, kernel.group(DEV))).toBe(0);
  const pa = await kernel.allocPages(1);
  await soc.mem.write(pa, DATA);
  await soc.mem.clean(pa, DATA.length);
  expect(await kernel.map(d, IOVA, pa, 0x1000, kernel.IOMMU_READ | kernel.IOMMU_WRITE)).toBe(0);
  return { d, pa };
}

async function teardown(d: Domain, pa: number): Promise<void> {
  await kernel.detachGroup(d, kernel.group(DEV));
  await kernel.domainFree(d);
  // Upstream's domain_free frees the DT only: the PT is leaked (P7 shows the free itself).
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['table-leak']);
  await kernel.freePages(pa);
}

test('upstream: DTE and PTE are cleaned to memory, the DMA translates', async () => {
  const { d, pa } = await mapOnePage();
  expect(await soc.device(DEV).dma.read(IOVA, 4)).toEqual({ ok: true, data: DATA });
  expect(soc.findings()).toEqual([]);
  await teardown(d, pa);
});

test('flushTables: false: the walker reads the DTE from memory, not the CPU cache, and faults', async () => {
  kernel.driver(IOMMU).setVariant({ flushTables: false });
  expect(kernel.driver(IOMMU).variant.flushTables).toBe(false);
  const { d, pa } = await mapOnePage();
  // The tables are right as the CPU sees them...
  expect(await kernel.iovaToPhys(d, IOVA + 8)).toBe(pa + 8);
  // ...but not in memory, where the walker looks.
  const r = await soc.device(DEV).dma.read(IOVA, 4);
  expect(r.ok).toBe(false);
  expect(r.fault).toMatchObject({ iova: IOVA, master: DEV, access: 'read', reason: 'dte-invalid' });
  const kinds = soc.takeFindings().map((f) => f.kind);
  expect(kinds).toContain('unflushed-walk');
  expect(kinds).toContain('fault');
  kernel.driver(IOMMU).setVariant({ flushTables: true });
  await teardown(d, pa);
  soc.takeFindings();
});
