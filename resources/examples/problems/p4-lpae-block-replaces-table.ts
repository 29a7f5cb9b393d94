// soc: arm64-smmu
// P4 (seed 002, ARM LPAE): io-pgtable frees a table while its domain is live in only three cases:
// a race loser's table, an empty table a block mapping replaces, and a full table a block-sized
// unmap removes. Each time the walk cache must be invalidated first (tlb_flush_walk), or the
// walker keeps following the freed table: the checker reports the walk of the freed table.
//
// Run: npm run bringup -- --soc resources/socs/arm64-smmu.soc.json resources/examples/problems/p4-lpae-block-replaces-table.ts

const SMMU = 'smmu0';
const DEV = 'dma0';
const IOVA = 0x4000_0000;
const SZ_2M = 0x20_0000;
const RW = 3;

/**
 * A live domain where IOVA had a page (so a level-3 table, walked and cached), unmapped again; then
 * a 2 MiB block is mapped over the region, replacing (and freeing) the now empty table.
 */
async function blockOverEmptyTable(): Promise<{ d: Domain; block: number; done(): Promise<void> }> {
  await kernel.pm.getSync(DEV);
  const d = await kernel.domainAlloc(SMMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  const page = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, page, 0x1000, RW)).toBe(0);
  expect((await soc.device(DEV).dma.read(IOVA, 4)).ok).toBe(true);
  expect(await kernel.unmap(d, IOVA, 0x1000)).toBe(0x1000);
  const pages = await kernel.allocPages(1024);
  const block = pages + ((SZ_2M - (pages % SZ_2M)) % SZ_2M);
  expect(await kernel.map(d, IOVA, block, SZ_2M, RW)).toBe(0);
  return {
    d,
    block,
    done: async () => {
      await kernel.detachDevice(d, DEV);
      await kernel.domainFree(d);
      await kernel.freePages(pages);
      await kernel.freePages(page);
      await kernel.pm.put(DEV);
    },
  };
}

test('upstream: the walk is flushed before the replaced table is freed; DMA uses the block', async () => {
  const { block, done } = await blockOverEmptyTable();
  const r = await soc.device(DEV).dma.read(IOVA + 0x1000, 4);
  expect(r.ok).toBe(true);
  expect(soc.findings()).toEqual([]);
  expect(block % SZ_2M).toBe(0);
  await done();
  expect(soc.findings()).toEqual([]);
});

test('flushWalk tlbival (leaf-only): the walker follows the freed table, use-after-free', async () => {
  kernel.driver(SMMU).setVariant({ flushWalk: 'tlbival' });
  const { d, done } = await blockOverEmptyTable();
  await soc.device(DEV).dma.read(IOVA + 0x1000, 4);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toContain('table-use-after-free');
  const uaf = found.find((f) => f.kind === 'table-use-after-free')!;
  expect(uaf.message).toContain(`level-3 page table of domain ${d.id}`);
  kernel.driver(SMMU).setVariant({ flushWalk: 'tlbiva' });
  await done();
  soc.takeFindings();
});
