// soc: sun50i-h6
// P5 (seed 003, dma-iommu): a double unmap, or an unmap that does not match what the IOVA allocator
// handed out, leaves the page tables and the allocator disagreeing. dma-iommu must warn, naming
// both calls, the IOVA and the sizes, and carry on.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/problems/p5-dma-double-unmap.ts

const DEV = 'de';

test('map, DMA, unmap once: clean', async () => {
  const pa = await kernel.allocPages(1);
  await soc.mem.write(pa, new Uint8Array([1, 2, 3, 4]));
  await soc.mem.clean(pa, 4);
  const iova = await kernel.dma.mapSingle(DEV, pa, 0x1000, 'to-device');
  expect(await soc.device(DEV).dma.read(iova, 4)).toEqual({ ok: true, data: new Uint8Array([1, 2, 3, 4]) });
  await kernel.dma.unmapSingle(DEV, iova, 0x1000, 'to-device');
  expect(soc.findings()).toEqual([]);
  await kernel.freePages(pa);
});

test('a second unmap of the same IOVA is reported, naming both unmaps, and the run goes on', async () => {
  const pa = await kernel.allocPages(1);
  const iova = await kernel.dma.mapSingle(DEV, pa, 0x1000, 'bidirectional');
  await kernel.dma.unmapSingle(DEV, iova, 0x1000, 'bidirectional');
  await kernel.dma.unmapSingle(DEV, iova, 0x1000, 'bidirectional');
  const found = soc.takeFindings();
  const double = found.filter((f) => f.kind === 'double-unmap');
  expect(double).toHaveLength(1);
  expect(double[0]!.message).toContain(`0x${iova.toString(16)}`);
  expect(double[0]!.message).toContain('already unmapped by dma_unmap_single');
  expect(double[0]!.message).toContain('mapped by dma_map_single');
  // Not a crash: the DMA API still works.
  const again = await kernel.dma.mapSingle(DEV, pa, 0x1000, 'bidirectional');
  await kernel.dma.unmapSingle(DEV, again, 0x1000, 'bidirectional');
  expect(soc.findings()).toEqual([]);
  await kernel.freePages(pa);
});

test('an unmap with a size other than the mapping is reported with both sizes', async () => {
  const pa = await kernel.allocPages(4);
  const iova = await kernel.dma.mapSingle(DEV, pa, 0x3000, 'to-device');
  await kernel.dma.unmapSingle(DEV, iova, 0x1000, 'to-device');
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toContain('unmap-mismatch');
  const m = found.find((f) => f.kind === 'unmap-mismatch')!;
  expect(m.message).toContain('size 0x1000');
  expect(m.message).toContain('0x3000');
  await kernel.freePages(pa);
});
