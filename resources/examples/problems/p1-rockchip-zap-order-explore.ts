// soc: rk3399
// P1 (seed 000, Rockchip), found by the interleaving explorer instead of a hand-placed kprobe:
// a CPU thread maps page B while a DMA thread keeps reading its neighbour A (same 64-byte PTE
// line). With zapOrder 'before-update' some interleaving lets a walk between the zap and the PTE
// write cache the old (invalid) line, and the next DMA to B faults. The upstream order (update,
// then zap first and last IOVA) explores clean: exhaustive, preemption bound 2.
//
// Run: npm run bringup -- --soc resources/socs/rk3399.soc.json resources/examples/problems/p1-rockchip-zap-order-explore.ts

const MMU = 'vopb_mmu';
const DEV = 'vopb';
const RW = 3;

/**
 * A live domain with page A mapped and a page for B; the spec races mapping B against DMA to A.
 * done() detaches, so the next test can attach its own domain.
 */
async function race(zapOrder: 'after-update' | 'before-update'): Promise<SocConsole.ExploreSpec & { done(): Promise<void> }> {
  kernel.driver(MMU).setVariant({ zapOrder });
  await kernel.pm.getSync(DEV);
  const d = await kernel.domainAlloc(MMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  const iova = 0x1000_0000;
  const pages = await kernel.allocPages(2);
  expect(await kernel.map(d, iova, pages, 0x1000, RW)).toBe(0);
  const dev = soc.device(DEV);
  return {
    done: () => kernel.detachDevice(d, DEV),
    threads: [
      async () => expect(await kernel.map(d, iova + 0x1000, pages + 0x1000, 0x1000, RW)).toBe(0),
      async () => {
        for (let i = 0; i < 3; i++) expect((await dev.dma.read(iova, 4)).ok).toBe(true);
      },
    ],
    check: async () => {
      const r = await dev.dma.read(iova + 0x1000, 4);
      expect(r.fault?.reason).toBeUndefined();
    },
  };
}

test('zapOrder before-update: the explorer finds the interleaving, and it replays', async () => {
  const spec = await race('before-update');
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2, maxFailures: 1 });
  expect(r.failures).toHaveLength(1);
  const { schedule, findings } = r.failures[0]!;
  expect(findings.map((f) => f.kind)).toContain('stale-translation');
  expect(findings[0]!.replay?.schedule).toEqual(schedule);
  console.log(`failing schedule: [${schedule.join(',')}]`);
  const rep = await explore.replay(schedule, spec);
  expect(rep.error).toBeDefined();
  // The replayed run's state stays: the IOMMU cached the invalid PTE of B.
  expect(soc.iommu(MMU).faults().some((f) => f.iova === 0x1000_1000 && f.reason === 'pte-invalid')).toBe(true);
  await spec.done();
});

test('zapOrder before-update: random schedules find it too', async () => {
  const spec = await race('before-update');
  const r = await explore({ ...spec, mode: 'random', runs: 200, seed: 1, maxFailures: 1 });
  expect(r.failures).toHaveLength(1);
  await spec.done();
});

test('upstream order explores clean (exhaustive, bound 2)', async () => {
  const spec = await race('after-update');
  const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2 });
  expect(r.complete).toBe(true);
  expect(r.failures).toEqual([]);
  console.log(`${r.runs} schedules, all clean`);
  await spec.done();
});
