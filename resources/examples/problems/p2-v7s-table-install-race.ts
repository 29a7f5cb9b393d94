// soc: mt8183
// P2 (seed 001, ARM v7s): two CPUs map IOVAs in the same 1 MiB; both find its level-1 slot empty and
// allocate a level-2 table. With a plain store the later install overwrites the earlier one, and
// the mapping made in the overwritten table is lost (its table leaks). Upstream installs with
// cmpxchg, and the loser frees its table and uses the winner's.
//
// Run: npm run bringup -- --soc resources/socs/mt8183.soc.json resources/examples/problems/p2-v7s-table-install-race.ts

const IOMMU = 'iommu0';
const IOVA = 0x1000_0000;
const RW = 3;

/** Two threads mapping neighbouring pages of one empty 1 MiB region of a fresh domain. */
async function race(tableInstall: 'cmpxchg' | 'store'): Promise<{ spec: SocConsole.ExploreSpec; done(): Promise<void> }> {
  kernel.driver(IOMMU).setVariant({ tableInstall });
  const d = await kernel.domainAlloc(IOMMU);
  const pa = await kernel.allocPages(2);
  return {
    spec: {
      threads: [async () => expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(0), async () => expect(await kernel.map(d, IOVA + 0x1000, pa + 0x1000, 0x1000, RW)).toBe(0)],
    },
    done: async () => {
      await kernel.domainFree(d);
      await kernel.freePages(pa);
      kernel.driver(IOMMU).setVariant({ tableInstall: 'cmpxchg' });
    },
  };
}

test('plain store: an interleaving loses a mapping, and the checker names it', async () => {
  const { spec, done } = await race('store');
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2, maxFailures: 1 });
  expect(r.failures).toHaveLength(1);
  const f = r.failures[0]!;
  expect(f.findings.map((x) => x.kind)).toContain('lost-mapping');
  const lost = f.findings.find((x) => x.kind === 'lost-mapping')!;
  expect(lost.message).toContain('returned success');
  expect(lost.replay?.schedule).toEqual(f.schedule);
  console.log(`lost mapping under schedule [${f.schedule.join(',')}]: ${lost.message}`);
  await done();
});

test('cmpxchg, the loser frees its table: every interleaving is clean', async () => {
  const { spec, done } = await race('cmpxchg');
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2 });
  expect(r.failures).toEqual([]);
  console.log(`${r.runs} schedules, all clean`);
  await done();
  expect(soc.findings()).toEqual([]);
});
