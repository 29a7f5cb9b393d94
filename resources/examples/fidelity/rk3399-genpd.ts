// soc: rk3399
// Power domains behave like genpd: on RK3399 each IOMMU sits in its master's power domain (as the
// device tree has it); the master's last runtime put suspends it and, through the device link, its
// IOMMU, and the domain powers off, losing the IOMMU's registers. The next resume powers it on and
// the driver's runtime_resume reprograms the IOMMU. A resume that does not is caught.
//
// Run: npm run bringup -- --soc resources/socs/rk3399.soc.json resources/examples/fidelity/rk3399-genpd.ts

const MMU = 'vopb_mmu';
const DEV = 'vopb';
const PD = 'pd_vopb';
const IOVA = 0x1000_0000;
const RW = 3;

/** A domain with one page mapped and attached; the master cycles through suspend and resume. */
async function powerCycle(): Promise<{ off: boolean; after: DmaResult; d: Domain }> {
  const d = await kernel.domainAlloc(MMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(0);
  await kernel.pm.getSync(DEV);
  expect((await soc.device(DEV).dma.read(IOVA, 4)).ok).toBe(true);
  await kernel.pm.put(DEV);
  const off = !soc.blocks().find((b) => b.name === PD)!.powered;
  await kernel.pm.getSync(DEV);
  const after = await soc.device(DEV).dma.read(IOVA, 4);
  return { off, after, d };
}

test('upstream: the last runtime put powers the domain off; the resume reprograms the IOMMU', async () => {
  const { off, after, d } = await powerCycle();
  expect(off).toBe(true);
  expect(after.ok).toBe(true);
  expect((await soc.reg(MMU, 'DTE_ADDR')) & 1).toBe(1);
  expect(soc.findings()).toEqual([]);
  await kernel.pm.put(DEV);
  await kernel.detachDevice(d, DEV);
});

test('reprogramOnResume: false: after the power cycle the IOMMU is at reset, and the DMA is caught', async () => {
  kernel.driver(MMU).setVariant({ reprogramOnResume: false });
  const { off, d } = await powerCycle();
  expect(off).toBe(true);
  expect(await soc.reg(MMU, 'DTE_ADDR')).toBe(0);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['dma-while-suspended']);
  expect(found[0]!.message).toContain('power domain pd_vopb is off, and its runtime resume did not program them again');
  kernel.driver(MMU).setVariant({ reprogramOnResume: true });
  await kernel.pm.put(DEV);
  await kernel.detachDevice(d, DEV);
});
