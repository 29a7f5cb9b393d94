// soc: mt8183
// P3 (seed 001, ARM v7s): a 64 KiB large page is 16 identical contiguous PTEs. Unmapping one 4 KiB
// page of it splits it into small pages first, which cannot be done atomically; two CPUs
// unmapping different pages of the same large page at once corrupt the PTEs (a page comes back,
// or a remaining one goes). Upstream splits under a lock (split_lock).
//
// Run: npm run bringup -- --soc resources/socs/mt8183.soc.json resources/examples/problems/p3-v7s-split-race.ts

const IOMMU = 'iommu0';
const IOVA = 0x1000_0000;
const RW = 3;

/** A fresh domain with one 64 KiB large page; two threads unmap its pages 2 and 13. */
async function race(splitLock: boolean): Promise<{ spec: SocConsole.ExploreSpec; done(): Promise<void> }> {
  kernel.driver(IOMMU).setVariant({ splitLock });
  const d = await kernel.domainAlloc(IOMMU);
  const pa = await kernel.allocPages(32);
  const large = pa + ((0x10000 - (pa % 0x10000)) % 0x10000);
  expect(await kernel.map(d, IOVA, large, 0x10000, RW)).toBe(0);
  return {
    spec: {
      threads: [async () => expect(await kernel.unmap(d, IOVA + 0x2000, 0x1000)).toBe(0x1000), async () => expect(await kernel.unmap(d, IOVA + 0xd000, 0x1000)).toBe(0x1000)],
    },
    done: async () => {
      await kernel.domainFree(d);
      await kernel.freePages(pa);
      kernel.driver(IOMMU).setVariant({ splitLock: true });
    },
  };
}

test('no split lock: an interleaving corrupts the large page, and the checker names it', async () => {
  const { spec, done } = await race(false);
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2, maxFailures: 1 });
  expect(r.failures).toHaveLength(1);
  const f = r.failures[0]!;
  const kinds = f.findings.map((x) => x.kind);
  expect(kinds.some((k) => k === 'lost-mapping' || k === 'unmap-mismatch')).toBe(true);
  console.log(`corrupted under schedule [${f.schedule.join(',')}]: ${f.findings.map((x) => x.message).join(' | ')}`);
  await done();
});

test('split under the lock: every interleaving is clean', async () => {
  const { spec, done } = await race(true);
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2 });
  expect(r.failures).toEqual([]);
  console.log(`${r.runs} schedules, all clean`);
  await done();
  expect(soc.findings()).toEqual([]);
});
