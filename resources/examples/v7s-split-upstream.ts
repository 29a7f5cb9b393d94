// soc: mt8183
// The split-era ARM v7s io-pgtable (until v6.12) as upstream wrote it: partialUnmap 'split-upstream'.
// A 4 KiB unmap inside a 1 MiB section rebuilds the rest of the section from its attributes only,
// so every remaining page points at the offset into the section instead of the section's memory;
// a 4 KiB unmap in the 2nd..16th MiB of a 16 MiB supersection splits it into sections and then
// returns 0. The default 'split' keeps the output address, and the checkers stay quiet.
//
// Run: npm run bringup -- --soc resources/socs/mt8183.soc.json resources/examples/v7s-split-upstream.ts

const IOMMU = 'iommu0';
const IOVA = 0x1000_0000;
const RW = 3;

/** Pages whose first page-aligned run of `align` bytes is returned, with the allocation to free. */
async function aligned(align: number): Promise<{ pa: number; free(): Promise<void> }> {
  const base = await kernel.allocPages((2 * align) / 0x1000);
  return { pa: base + ((align - (base % align)) % align), free: () => kernel.freePages(base) };
}

test('split-upstream: a page unmapped from a section loses the output address of the rest', async () => {
  kernel.driver(IOMMU).setVariant({ partialUnmap: 'split-upstream' });
  const d = await kernel.domainAlloc(IOMMU);
  const mem = await aligned(0x10_0000);
  expect(await kernel.map(d, IOVA, mem.pa, 0x10_0000, RW)).toBe(0);
  expect(await kernel.unmap(d, IOVA + 0x3000, 0x1000)).toBe(0x1000);
  expect(await kernel.iovaToPhys(d, IOVA + 0x5000)).toBe(0x5000);
  const lost = soc.takeFindings().filter((f) => f.kind === 'lost-mapping');
  expect(lost.length).toBeGreaterThan(0);
  console.log(lost[lost.length - 1]!.message);
  await kernel.domainFree(d);
  await mem.free();
});

test('split-upstream: a page unmap in the 3rd MiB of a supersection splits it, then returns 0', async () => {
  kernel.driver(IOMMU).setVariant({ partialUnmap: 'split-upstream' });
  const d = await kernel.domainAlloc(IOMMU);
  // No DMA goes there: any 16 MiB-aligned DRAM address below the kernel's half will do.
  const pa = 0x4100_0000;
  expect(await kernel.map(d, IOVA, pa, 0x100_0000, RW)).toBe(0);
  expect(await kernel.unmap(d, IOVA + 0x20_3000, 0x1000)).toBe(0);
  expect(await kernel.iovaToPhys(d, IOVA + 0x20_3000)).toBe(pa + 0x20_3000);
  console.log(soc.takeFindings().map((f) => `${f.kind}: ${f.message}`).join('\n'));
  await kernel.domainFree(d);
});

test("split (the default): the rest of the section keeps its memory", async () => {
  kernel.driver(IOMMU).setVariant({ partialUnmap: 'split' });
  const d = await kernel.domainAlloc(IOMMU);
  const mem = await aligned(0x10_0000);
  expect(await kernel.map(d, IOVA, mem.pa, 0x10_0000, RW)).toBe(0);
  expect(await kernel.unmap(d, IOVA + 0x3000, 0x1000)).toBe(0x1000);
  expect(await kernel.iovaToPhys(d, IOVA + 0x5000)).toBe(mem.pa + 0x5000);
  await kernel.domainFree(d);
  await mem.free();
  expect(soc.findings().filter((f) => f.severity === 'error')).toEqual([]);
});
