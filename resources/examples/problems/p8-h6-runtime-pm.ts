// soc: sun50i-h6
// P8 (seed 004, Allwinner H6): the first posting programmed the IOMMU only from its runtime-PM
// resume callback, keyed on "a domain is attached": attach took a runtime-PM reference, detach
// dropped it. Robin Murphy: how well does that work when runtime PM is compiled out, or inhibited
// from sysfs? It does not: nothing resumes, so nothing programs the new domain. Upstream programs
// the hardware from attach itself and has no runtime PM.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/problems/p8-h6-runtime-pm.ts

const IOMMU = 'iommu0';
const DEV = 've';
const IOVA = 0x1000_0000;
const DATA = new Uint8Array([7, 7, 7, 7]);

/** Attach a fresh domain with one page mapped; the DMA through it, and TTB before and after. */
async function attachAndRead(): Promise<{ d: Domain; pa: number; attached: number; ttbBefore: number; ttbAfter: number; r: DmaResult }> {
  const pa = await kernel.allocPages(1);
  await soc.mem.write(pa, DATA);
  await soc.mem.clean(pa, DATA.length);
  const d = await kernel.domainAlloc(IOMMU);
  const ttbBefore = await soc.reg(IOMMU, 'TTB');
  const attached = await kernel.attachGroup(d, kernel.group(DEV));
  const ttbAfter = await soc.reg(IOMMU, 'TTB');
  // After the attach: before it, upstream's map oopses on the NULL sun50i_domain->iommu.
  expect(await kernel.map(d, IOVA, pa, 0x1000, kernel.IOMMU_READ | kernel.IOMMU_WRITE)).toBe(0);
  const r = await soc.device(DEV).dma.read(IOVA, 4);
  return { d, pa, attached, ttbBefore, ttbAfter, r };
}

async function release(d: Domain, pa: number): Promise<void> {
  await kernel.detachGroup(d, kernel.group(DEV));
  await kernel.domainFree(d);
  // Upstream's domain_free frees the DT only: the PT is leaked (P7 shows the free itself).
  expect(soc.takeFindings().map((f) => f.kind)).toContain('table-leak');
  await kernel.freePages(pa);
}

test('upstream: attach programs the hardware, with CONFIG_PM=n too', async () => {
  kernel.pm.setEnabled(false);
  const { d, pa, attached, ttbBefore, ttbAfter, r } = await attachAndRead();
  expect(attached).toBe(0);
  expect(ttbAfter).not.toBe(ttbBefore);
  expect(r).toEqual({ ok: true, data: DATA });
  await release(d, pa);
  kernel.pm.setEnabled(true);
  expect(soc.findings()).toEqual([]);
});

test('first posting, runtime PM on: resume programs the domain, and the IOMMU never suspends while attached', async () => {
  kernel.driver(IOMMU).setVariant({ programInResumeOnly: true });
  const { d, pa, attached, ttbAfter, ttbBefore, r } = await attachAndRead();
  expect(attached).toBe(0);
  expect(ttbAfter).not.toBe(ttbBefore);
  expect(r).toEqual({ ok: true, data: DATA });
  // No master is runtime-active, yet the IOMMU is: the reference is tied to the attach.
  expect(kernel.pm.status(DEV)).toBe('suspended');
  expect(kernel.pm.status(IOMMU)).toBe('active');
  await release(d, pa);
  expect(soc.findings()).toEqual([]);
});

test('first posting with power/control = on: the new domain is never programmed', async () => {
  await kernel.pm.setControl(IOMMU, 'on');
  const { d, pa, attached, ttbBefore, ttbAfter, r } = await attachAndRead();
  expect(attached).toBe(0);
  // Already active: neither detach's put nor attach's get ran a callback.
  expect(ttbAfter).toBe(ttbBefore);
  expect(r.ok).toBe(false);
  expect(r.fault).toMatchObject({ iova: IOVA, master: DEV, reason: 'dte-invalid' });
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['fault', 'pm-disabled-no-setup']);
  await kernel.pm.setControl(IOMMU, 'auto');
  await release(d, pa);
  soc.takeFindings();
});

test('first posting with CONFIG_PM=n: no callback ever runs, the new domain is never programmed', async () => {
  kernel.pm.setEnabled(false);
  const { d, pa, attached, ttbBefore, ttbAfter, r } = await attachAndRead();
  expect(attached).toBe(0);
  expect(ttbAfter).toBe(ttbBefore);
  expect(r.ok).toBe(false);
  expect(r.fault).toMatchObject({ iova: IOVA, master: DEV, reason: 'dte-invalid' });
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['fault', 'pm-disabled-no-setup']);
  expect(found[1]!.message).toContain('CONFIG_PM=n');
  await release(d, pa);
  kernel.pm.setEnabled(true);
  kernel.driver(IOMMU).setVariant({ programInResumeOnly: false });
  soc.takeFindings();
});
