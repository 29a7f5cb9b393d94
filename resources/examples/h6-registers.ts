// soc: sun50i-h6
// Allwinner H6 IOMMU bring-up by registers only: build the Directory Table and a Page Table in RAM
// with CPU stores, clean them to memory (the walker is not cache-coherent), program TTB, interrupts,
// permissions, flush, enable, then move data by DMA through the mappings and check it.
//
// Run: npm run bringup -- --soc resources/socs/sun50i-h6.soc.json resources/examples/h6-registers.ts

const IOMMU = 'iommu0';
const DT = 0x4000_0000; // Directory Table: 4096 DTEs, 16 KiB aligned
const PT = 0x4000_4000; // one Page Table: 256 PTEs, 1 KiB aligned
const IOVA = 0x1000_0000;
const PAGES = [0x4800_0000, 0x4800_2000, 0x4a00_0000, 0x4a00_5000]; // deliberately not contiguous
const RO_IOVA = IOVA + 0x10_000; // a read-only page in the same PT
const RO_PAGE = 0x4b00_0000;

const ACI_RD = 2;
const ACI_RD_WR = 4;
const INT_L2PG_INVALID = 1 << 17;

const pte = (pa: number, aci: number): number => (pa | (aci << 4) | 2) >>> 0;
const ptePa = (iova: number): number => PT + ((iova >>> 12) & 0xff) * 4;

async function store(pa: number, value: number): Promise<void> {
  await soc.writel(value, pa);
  await soc.mem.clean(pa, 4); // dma_sync_single_for_device(DMA_TO_DEVICE)
}

async function poll(reg: string): Promise<void> {
  for (let i = 0; i < 2000; i++) if ((await soc.reg(IOMMU, reg)) === 0) return;
  throw new Error(`${reg} did not clear`);
}

async function zap(iova: number): Promise<void> {
  await soc.setReg(IOMMU, 'TLB_IVLD_ADDR', iova);
  await soc.setReg(IOMMU, 'TLB_IVLD_ADDR_MASK', 0xffff_f000);
  await soc.setReg(IOMMU, 'TLB_IVLD_ENABLE', 1);
  await poll('TLB_IVLD_ENABLE');
}

/** Tables and the enable sequence (hardware-facts §1.9), with one DM_AUT_CTRL1 store for ACI 2 and 3. */
async function bringUp(): Promise<void> {
  await store(DT + (IOVA >>> 20) * 4, PT | 1);
  for (const [i, pa] of PAGES.entries()) await store(ptePa(IOVA + i * 0x1000), pte(pa, ACI_RD_WR));
  await store(ptePa(RO_IOVA), pte(RO_PAGE, ACI_RD));
  await soc.setReg(IOMMU, 'TTB', DT);
  await soc.setReg(IOMMU, 'TLB_PREFETCH', 0x3f);
  await soc.setReg(IOMMU, 'INT_ENABLE', 0x0003_003f);
  await soc.setReg(IOMMU, 'DM_AUT_CTRL0', 0x0fff_0000); // ACI 1: no access
  await soc.setReg(IOMMU, 'DM_AUT_CTRL1', 0x0555_0aaa); // ACI 2: read-only, ACI 3: write-only
  await soc.setReg(IOMMU, 'TLB_FLUSH', 0x0003_003f);
  await poll('TLB_FLUSH');
  await soc.setReg(IOMMU, 'AUTO_GATING', 1);
  await soc.setReg(IOMMU, 'ENABLE', 1);
}

test('DMA write, read and copy through four scattered pages', async () => {
  await bringUp();
  const de = soc.device('de');
  expect(de.iommu).toBe(IOMMU);
  const data = new Uint8Array(3 * 4096);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13 + 7) & 0xff;

  expect(await de.dma.write(IOVA + 0x800, data)).toEqual({ ok: true });
  // The CPU sees what the device wrote once its stale lines are dropped.
  await soc.mem.invalidate(PAGES[0]!, 4096);
  expect(await soc.mem.read(PAGES[0]! + 0x800, 0x800)).toEqual(data.subarray(0, 0x800));
  await soc.mem.invalidate(PAGES[2]!, 4096);
  expect(await soc.mem.read(PAGES[2]!, 16)).toEqual(data.subarray(0x1800, 0x1810));

  const back = await de.dma.read(IOVA + 0x800, data.length);
  expect(back.ok).toBe(true);
  expect(back.data).toEqual(data);

  expect((await de.dma.copy(IOVA + 0x800, IOVA + 0x3000, 0x400)).ok).toBe(true);
  await soc.mem.invalidate(PAGES[3]!, 4096);
  expect(await soc.mem.read(PAGES[3]!, 0x400)).toEqual(data.subarray(0, 0x400));

  const stats = soc.iommu(IOMMU).stats();
  expect(stats.faults).toBe(0);
  expect(stats.walks).toBeGreaterThan(0);
  expect(soc.iommu(IOMMU).tlb().length).toBeGreaterThan(0);
});

test('a write to a read-only page faults and raises the IRQ', async () => {
  await bringUp();
  const ve = soc.device('ve'); // master 3
  expect((await ve.dma.read(RO_IOVA, 64)).ok).toBe(true);
  const r = await ve.dma.write(RO_IOVA + 0x40, new Uint8Array(64));
  expect(r.ok).toBe(false);
  expect(r.fault).toMatchObject({ iova: RO_IOVA + 0x40, master: 've', access: 'write', reason: 'permission' });
  expect(await soc.reg(IOMMU, 'INT_STA')).toBe(1 << 3);
  expect(await soc.reg(IOMMU, 'INT_ERR_ADDR3')).toBe(RO_IOVA + 0x40);
  expect(((await soc.reg(IOMMU, 'INT_ERR_DATA3')) >>> 4) & 0xf).toBe(ACI_RD);
  expect(soc.irq(57)).toBe(true);
  // The fault handler: acknowledge, pulse the master's reset.
  await soc.setReg(IOMMU, 'INT_CLR', 1 << 3);
  await soc.setReg(IOMMU, 'RESET', ~(1 << 3) >>> 0);
  await soc.setReg(IOMMU, 'RESET', 0xffff_ffff);
  expect(soc.irq(57)).toBe(false);
  const taken = soc.takeFindings();
  expect(taken.map((f) => f.kind)).toEqual(['fault']);
});

test('an unmapped page stays translated until its TLB entry is zapped', async () => {
  await bringUp();
  const di = soc.device('di');
  expect((await di.dma.read(IOVA, 4)).ok).toBe(true);
  await store(ptePa(IOVA), 0); // unmap, no invalidation yet
  expect((await di.dma.read(IOVA, 4)).ok).toBe(true); // stale, as on silicon
  // The checker compares the TLB hit with the tables in memory, and says so.
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['stale-translation']);
  await zap(IOVA);
  const r = await di.dma.read(IOVA, 4);
  expect(r.fault?.reason).toBe('pte-invalid');
  expect(await soc.reg(IOMMU, 'INT_STA')).toBe(INT_L2PG_INVALID);
  expect(await soc.reg(IOMMU, 'L2PG_INT')).toBe(1 << 2);
  await soc.setReg(IOMMU, 'INT_CLR', INT_L2PG_INVALID);
  expect(soc.takeFindings().map((f) => f.kind)).toEqual(['fault']);
});
