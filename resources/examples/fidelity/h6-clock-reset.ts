// soc: sun50i-h6
// Reset and clock lines are hardware: MMIO to the H6 IOMMU while RST_BUS_IOMMU is asserted or its bus
// clock is gated is a bus-error naming the line (the interconnect would hang or return garbage).
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/fidelity/h6-clock-reset.ts

const IOMMU = 'iommu0';

test('a register read with RST_BUS_IOMMU asserted is a bus-error naming the reset line', async () => {
  await soc.reset('RST_BUS_IOMMU', true);
  expect(await soc.reg(IOMMU, 'TTB')).toBe(0);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['bus-error']);
  expect(found[0]!.message).toContain('reset RST_BUS_IOMMU is asserted');
  await soc.reset('RST_BUS_IOMMU', false);
  await soc.setReg(IOMMU, 'TTB', 0x4001_0000);
  expect(await soc.reg(IOMMU, 'TTB')).toBe(0x4001_0000);
  expect(soc.findings()).toEqual([]);
});

test('a register write with the bus clock gated is a bus-error naming the clock, and is lost', async () => {
  await soc.clock('bus-iommu', false);
  await soc.setReg(IOMMU, 'TTB', 0x4002_0000);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['bus-error']);
  expect(found[0]!.message).toContain('clock bus-iommu is gated');
  await soc.clock('bus-iommu', true);
  expect(await soc.reg(IOMMU, 'TTB')).toBe(0x4001_0000);
});
