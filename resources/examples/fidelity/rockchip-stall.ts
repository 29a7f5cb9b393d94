// soc: rk3399
// Rockchip as upstream programs it: DTE_ADDR takes mk_dtentries(dt), the valid bit set, and the
// model accepts it silently. A page fault stalls the faulting master until the driver sends
// PAGE_FAULT_DONE from its interrupt handler, which the SoC runs while the master waits; a handler
// that never sends it leaves the master stuck, and the console names it.
//
// Run: npm run bringup -- --soc resources/socs/rk3399.soc.json resources/examples/fidelity/rockchip-stall.ts

const MMU = 'vopb_mmu';
const DEV = 'vopb';
const IOVA = 0x1000_0000;
const RW = 3;

async function faultThenRead(): Promise<{ first: DmaResult; second: DmaResult; done: () => Promise<void> }> {
  await kernel.pm.getSync(DEV);
  const d = await kernel.domainAlloc(MMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(0);
  const first = await soc.device(DEV).dma.read(IOVA + 0x10_0000, 4);
  const second = await soc.device(DEV).dma.read(IOVA, 4);
  const done = async (): Promise<void> => {
    await kernel.detachDevice(d, DEV);
    await kernel.pm.put(DEV);
  };
  return { first, second, done };
}

test('upstream: DTE_ADDR holds dt | 1 after enable, and nothing is reported', async () => {
  await kernel.pm.getSync(DEV);
  const d = await kernel.domainAlloc(MMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(0);
  expect((await soc.reg(MMU, 'DTE_ADDR')) & 1).toBe(1);
  expect(soc.findings()).toEqual([]);
  await kernel.detachDevice(d, DEV);
  await kernel.pm.put(DEV);
});

test('upstream: the fault stalls the master; its handler, taken while the master waits, sends PAGE_FAULT_DONE', async () => {
  const { first, second, done } = await faultThenRead();
  expect(first.fault?.reason).toBe('pte-invalid');
  expect(second.ok).toBe(true);
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['fault']);
  // The handler ran: the interrupt is cleared.
  expect(await soc.reg(MMU, 'INT_STATUS')).toBe(0);
  await done();
});

test('pageFaultDone: false: the master stays stalled, and is named', async () => {
  kernel.driver(MMU).setVariant({ pageFaultDone: false });
  const { first, second, done } = await faultThenRead();
  expect(first.fault?.reason).toBe('pte-invalid');
  expect(second.ok).toBe(false);
  expect(second.fault?.reason).toBe('stalled');
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['fault', 'master-stalled']);
  expect(found[1]!.message).toContain('vopb is stuck');
  expect(found[1]!.message).toContain('never acknowledged (no PAGE_FAULT_DONE)');
  expect(found[1]!.where).toMatchObject({ device: DEV, iommu: MMU });
  kernel.driver(MMU).setVariant({ pageFaultDone: true });
  await done();
});
