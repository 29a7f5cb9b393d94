// soc: rk3399
// P1 (seed 000, Rockchip): the IOMMU caches page-table lines, invalid entries included. If the
// driver zaps an IOVA before writing its PTE, a master walking the same table in between caches the
// old (invalid) entry again, and the fresh mapping faults. Upstream updates first, then zaps the
// first and last IOVA of the range. The interleaving is placed by hand: a kretprobe on the zap runs
// a DMA to the neighbouring page (same 64-byte PTE line) right after the zap.
//
// Run: npm run bringup -- --soc resources/socs/rk3399.soc.json resources/examples/problems/p1-rockchip-zap-order.ts

const MMU = 'vopb_mmu';
const DEV = 'vopb';
const RW = 3;

/**
 * Map page A (not used yet, so not in the IOTLB), then its neighbour B with a DMA to A squeezed in
 * right after the zap: the DMA walks, and the IOMMU caches the PTE line holding both.
 */
async function mapNeighbourDuringZap(d: Domain, iova: number): Promise<{ viaB: DmaResult; during: DmaResult | undefined; pageB: number }> {
  const dev = soc.device(DEV);
  const pages = await kernel.allocPages(2);
  const pageB = pages + 0x1000;
  await soc.mem.write(pageB, new Uint8Array([0xb0, 0xb1, 0xb2, 0xb3]));
  await soc.mem.clean(pageB, 4);
  expect(await kernel.map(d, iova, pages, 0x1000, RW)).toBe(0);
  let during: Promise<DmaResult> | undefined;
  const probe = await kernel.kretprobe('rk_iommu_zap_iova_first_last', () => {
    during ??= dev.dma.read(iova, 4);
  });
  expect(await kernel.map(d, iova + 0x1000, pageB, 0x1000, RW)).toBe(0);
  await kernel.unregisterKprobe(probe);
  expect(await kernel.iovaToPhys(d, iova + 0x1000)).toBe(pageB);
  return { viaB: await dev.dma.read(iova + 0x1000, 4), during: await during, pageB };
}

async function activeDomain(): Promise<Domain> {
  // The master's runtime resume resumes its IOMMU through the device link: paging on.
  await kernel.pm.getSync(DEV);
  expect(kernel.pm.status(MMU)).toBe('active');
  const d = await kernel.domainAlloc(MMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  return d;
}

test('upstream: update, then zap first and last IOVA; the neighbour DMA caches the new entry', async () => {
  const d = await activeDomain();
  const { viaB, during } = await mapNeighbourDuringZap(d, 0x1000_0000);
  expect(during?.ok).toBe(true);
  expect(viaB).toEqual({ ok: true, data: new Uint8Array([0xb0, 0xb1, 0xb2, 0xb3]) });
  expect(soc.iommu(MMU).faults()).toEqual([]);
  await kernel.detachDevice(d, DEV);
  expect(soc.findings()).toEqual([]);
});

test('zapOrder: before-update: a walk between zap and update re-caches the invalid PTE', async () => {
  kernel.driver(MMU).setVariant({ zapOrder: 'before-update' });
  const d = await activeDomain();
  const iova = 0x2000_0000;
  const { viaB, during } = await mapNeighbourDuringZap(d, iova);
  expect(during?.ok).toBe(true);
  // The page tables are right (iova_to_phys above), the IOMMU's cached line is not.
  expect(viaB.ok).toBe(false);
  expect(viaB.fault).toMatchObject({ iova: iova + 0x1000, master: DEV, access: 'read', reason: 'pte-invalid' });
  expect(soc.iommu(MMU).walkCache().some((l) => l.iova <= iova && iova < l.iova + l.span && l.entries.includes(0))).toBe(true);
  // The checker names it: the fault came from a cached line the tables in memory contradict.
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['fault', 'stale-translation']);
  expect(found[1]!.where).toMatchObject({ iommu: MMU, device: DEV, iova: `0x${(iova + 0x1000).toString(16)}` });
  kernel.driver(MMU).setVariant({ zapOrder: 'after-update' });
  await kernel.detachDevice(d, DEV);
});

test('only the first and last IOVA need a zap: the inner page tables of a range are new', async () => {
  const d = await activeDomain();
  const dev = soc.device(DEV);
  const base = 0x3000_0000;
  const pages = await kernel.allocPages(4);
  // Neighbours at both ends are walked first, so both end lines are cached.
  expect(await kernel.map(d, base, pages, 0x1000, RW)).toBe(0);
  expect(await kernel.map(d, base + 0x11000, pages + 0x3000, 0x1000, RW)).toBe(0);
  expect((await dev.dma.read(base, 4)).ok).toBe(true);
  expect((await dev.dma.read(base + 0x11000, 4)).ok).toBe(true);
  // A range from the page after the first to the page before the last: 64 KiB, four PTE lines.
  const big = await kernel.allocPages(16);
  expect(await kernel.map(d, base + 0x1000, big, 0x10000, RW)).toBe(0);
  for (let off = 0; off < 0x10000; off += 0x1000) expect((await dev.dma.read(base + 0x1000 + off, 4)).ok).toBe(true);
  await kernel.detachDevice(d, DEV);
  expect(soc.findings()).toEqual([]);
});
