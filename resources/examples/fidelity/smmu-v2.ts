// soc: arm64-smmu
// arm-smmu as upstream programs an SMMUv2: arm_smmu_device_reset sets sCR0.VMIDPNE and PTM (no TLB
// broadcasting); arm_smmu_write_context_bank leaves CBAR.IRPTNDX alone, since on SMMUv2 every
// context bank has its own context interrupt: a fault in bank 1 raises bank 1's line.
//
// Run: npm run bringup -- --soc resources/socs/arm64-smmu.soc.json resources/examples/fidelity/smmu-v2.ts

const SMMU = 'smmu0';
const CONTEXT_IRQ_BASE = 65;
const RW = 3;
const FSR = ['CB0_FSR', 'CB1_FSR', 'CB2_FSR', 'CB3_FSR', 'CB4_FSR', 'CB5_FSR', 'CB6_FSR', 'CB7_FSR'] as const;
const CBAR = ['CBAR0', 'CBAR1', 'CBAR2', 'CBAR3', 'CBAR4', 'CBAR5', 'CBAR6', 'CBAR7'] as const;

test('arm_smmu_device_reset sets VMIDPNE and PTM in sCR0', async () => {
  await kernel.boot();
  const scr0 = await soc.reg(SMMU, 'sCR0');
  expect((scr0 >>> 11) & 1).toBe(1);
  expect((scr0 >>> 12) & 1).toBe(1);
});

test('a fault in a context bank raises that bank\'s own context interrupt, not bank 0\'s', async () => {
  const a = await kernel.domainAlloc(SMMU);
  const b = await kernel.domainAlloc(SMMU);
  expect(await kernel.attachDevice(a, 'display')).toBe(0);
  expect(await kernel.attachDevice(b, 'video')).toBe(0);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(a, 0x1000_0000, pa, 0x1000, RW)).toBe(0);
  const r = await soc.device('video').dma.read(0x2000_0000, 4);
  expect(r.fault?.reason).toBe('dte-invalid');
  // The bank video's domain got (the default domains took the first ones at boot).
  const banks: number[] = [];
  for (let n = 0; n < FSR.length; n++) if ((await soc.reg(SMMU, FSR[n]!)) !== 0) banks.push(n);
  expect(banks).toHaveLength(1);
  const bank = banks[0]!;
  expect(bank).toBeGreaterThan(0);
  // SMMUv2: CBAR.IRPTNDX is not written, and the bank's own line is raised.
  expect((await soc.reg(SMMU, CBAR[bank]!)) >>> 24).toBe(0);
  expect(soc.irq(CONTEXT_IRQ_BASE + bank)).toBe(true);
  expect(soc.irq(CONTEXT_IRQ_BASE)).toBe(false);
  expect(await kernel.handleIrq(SMMU)).toBe(true);
  expect(soc.irq(CONTEXT_IRQ_BASE + bank)).toBe(false);
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['fault']);
  await kernel.detachDevice(a, 'display');
  await kernel.detachDevice(b, 'video');
});
