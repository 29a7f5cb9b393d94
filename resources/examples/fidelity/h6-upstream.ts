// soc: sun50i-h6
// The sun50i driver as mainline has it (v6.7 on: identity domain, map_pages, one shared group), and
// the variants that bring back what this console modelled before. Each pair of tests shows the
// upstream default first, then the variant.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/fidelity/h6-upstream.ts

const IOMMU = 'iommu0';
const DEV = 've';
const IOVA = 0x1000_0000;
const RW = 3;
const EINVAL = -22;
const EFAULT = -14;

const regs = async (): Promise<{ enable: number; ttb: number }> => ({ enable: await soc.reg(IOMMU, 'ENABLE'), ttb: await soc.reg(IOMMU, 'TTB') });
/** sun50i_iommu_disable gates the clock and asserts RST_BUS_IOMMU: the block is held in reset, its registers unreadable. */
const inReset = (): boolean => !soc.blocks().find((b) => b.name === IOMMU)!.powered;

test('iommu_attach_device is -EINVAL on the H6 group of six masters; iommu_attach_group attaches them all', async () => {
  const d = await kernel.domainAlloc(IOMMU);
  expect(await kernel.attachDevice(d, DEV)).toBe(EINVAL);
  expect(kernel.group('de')).toBe(kernel.group(DEV));
  expect(await kernel.attachGroup(d, kernel.group(DEV))).toBe(0);
  await kernel.detachGroup(d, kernel.group(DEV));
});

/** The group on its default DMA domain, then on the static identity domain. */
async function toIdentity(): Promise<{ before: { enable: number; ttb: number }; after: { enable: number; ttb: number } | 'in reset' }> {
  const before = await regs();
  const identity = await kernel.domainAlloc(IOMMU, 'identity');
  expect(await kernel.attachGroup(identity, kernel.group(DEV))).toBe(0);
  const after = inReset() ? 'in reset' : await regs();
  await kernel.detachGroup(identity, kernel.group(DEV));
  return { before, after };
}

test('upstream: the identity attach drops a reference of the DMA domain, which stays live: translation goes on', async () => {
  const { before, after } = await toIdentity();
  expect(before.enable).toBe(1);
  expect(after).toEqual(before);
});

test("leaveDomain: 'disable': the identity attach turns translation off at once (ENABLE=0, TTB=0, then clock off and reset)", async () => {
  kernel.driver(IOMMU).setVariant({ leaveDomain: 'disable' });
  const { before, after } = await toIdentity();
  expect(before.enable).toBe(1);
  expect(after).toBe('in reset');
  kernel.driver(IOMMU).setVariant({ leaveDomain: 'refcount' });
});

/** ENABLE and TTB as sun50i_iommu_enable starts programming the new domain of a switch. */
async function atSwitch(): Promise<{ old: { enable: number; ttb: number }; during: { enable: number; ttb: number } | 'in reset' | undefined }> {
  const d = await kernel.domainAlloc(IOMMU);
  const old = await regs();
  // Both reads start inside the probe, while the kernel is in sun50i_iommu_enable.
  let during: Promise<[number, number]> | 'in reset' | undefined;
  const probe = await kernel.kprobe('sun50i_iommu_enable', () => {
    during ??= inReset() ? 'in reset' : Promise.all([soc.reg(IOMMU, 'ENABLE'), soc.reg(IOMMU, 'TTB')]);
  });
  expect(await kernel.attachGroup(d, kernel.group(DEV))).toBe(0);
  await kernel.unregisterKprobe(probe);
  await kernel.detachGroup(d, kernel.group(DEV));
  await kernel.domainFree(d);
  const seen = during === 'in reset' ? during : await during;
  return { old, during: seen === 'in reset' ? seen : seen && { enable: seen[0], ttb: seen[1] } };
}

test('upstream: switching paging domains rewrites TTB with ENABLE still 1 (no untranslated window)', async () => {
  const { old, during } = await atSwitch();
  expect(during).toEqual(old);
  expect(old.enable).toBe(1);
});

test("leaveDomain: 'disable': the switch turns translation off first (the IOMMU even held in reset), an untranslated window", async () => {
  kernel.driver(IOMMU).setVariant({ leaveDomain: 'disable' });
  const { during } = await atSwitch();
  expect(during).toBe('in reset');
  kernel.driver(IOMMU).setVariant({ leaveDomain: 'refcount' });
});

test('upstream: a map before the first attach is a NULL dereference: an oops, and the call fails', async () => {
  const d = await kernel.domainAlloc(IOMMU);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(EFAULT);
  const found = soc.takeFindings();
  expect(found.map((f) => f.kind)).toEqual(['oops']);
  expect(found[0]!.message).toContain('sun50i_iommu_alloc_page_table');
  expect(found[0]!.message).toContain('called from sun50i_iommu_map');
  await kernel.domainFree(d);
  await kernel.freePages(pa);
});

test("mapBeforeAttach: 'ok': the map of a never-attached domain succeeds", async () => {
  kernel.driver(IOMMU).setVariant({ mapBeforeAttach: 'ok', detachBeforeFree: true });
  const d = await kernel.domainAlloc(IOMMU);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(0);
  expect(await kernel.iovaToPhys(d, IOVA)).toBe(pa);
  await kernel.domainFree(d);
  await kernel.freePages(pa);
  expect(soc.findings()).toEqual([]);
  kernel.driver(IOMMU).setVariant({ mapBeforeAttach: 'oops', detachBeforeFree: false });
});

/** A domain attached, mapped and detached again, then freed. */
async function freeDetached(): Promise<Finding[]> {
  const d = await kernel.domainAlloc(IOMMU);
  expect(await kernel.attachGroup(d, kernel.group(DEV))).toBe(0);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, pa, 0x1000, RW)).toBe(0);
  await kernel.detachGroup(d, kernel.group(DEV));
  await kernel.domainFree(d);
  await kernel.freePages(pa);
  return soc.takeFindings();
}

test('upstream: domain_free frees the DT only; the PT left behind is a table-leak', async () => {
  const found = await freeDetached();
  expect(found.map((f) => f.kind)).toEqual(['table-leak']);
  expect(found[0]!.message).toContain('level 2');
});

test('detachBeforeFree: the PTs are freed with the DT', async () => {
  kernel.driver(IOMMU).setVariant({ detachBeforeFree: true });
  expect(await freeDetached()).toEqual([]);
  kernel.driver(IOMMU).setVariant({ detachBeforeFree: false });
});
