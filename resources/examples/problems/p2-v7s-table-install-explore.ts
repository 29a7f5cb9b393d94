// soc: mt8183
// P2 (seed 001, ARM v7s): two CPUs map nearby IOVAs (same 1 MiB level-1 slot). Both find the slot
// empty and allocate a level-2 table; with a plain store the second install overwrites the first,
// and the first CPU's mapping (and its table) is lost. With cmpxchg the loser frees its table and
// uses the winner's: every schedule keeps both mappings (exhaustive, preemption bound 2).
//
// Run: npm run bringup -- --soc resources/socs/mt8183.soc.json resources/examples/problems/p2-v7s-table-install-explore.ts

const MMU = 'iommu0';
const RW = 3;

async function race(tableInstall: 'cmpxchg' | 'store'): Promise<SocConsole.ExploreSpec & { done(): Promise<void> }> {
  kernel.driver(MMU).setVariant({ tableInstall });
  const d = await kernel.domainAlloc(MMU);
  const pages = await kernel.allocPages(2);
  const iovas = [0x1000_0000, 0x1000_8000];
  return {
    done: () => kernel.domainFree(d),
    threads: iovas.map((iova, i) => async () => expect(await kernel.map(d, iova, pages + i * 0x1000, 0x1000, RW)).toBe(0)),
    check: async () => {
      for (let i = 0; i < 2; i++) expect(await kernel.iovaToPhys(d, iovas[i]!)).toBe(pages + i * 0x1000);
    },
  };
}

test('tableInstall store: the explorer finds the lost mapping', async () => {
  const spec = await race('store');
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2, maxFailures: 1 });
  expect(r.failures).toHaveLength(1);
  console.log(`failing schedule: [${r.failures[0]!.schedule.join(',')}] after ${r.runs} runs`);
  const rep = await explore.replay(r.failures[0]!.schedule, spec);
  expect(rep.error).toContain('check: expected 0');
  soc.takeFindings();
});

test('tableInstall cmpxchg: explores clean (exhaustive, bound 2)', async () => {
  const spec = await race('cmpxchg');
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2 });
  expect(r.complete).toBe(true);
  expect(r.failures).toEqual([]);
  console.log(`${r.runs} schedules, all clean`);
  await spec.done();
  expect(soc.findings()).toEqual([]);
});
