// soc: rk3399
/**
 * Bring up one Rockchip IOMMU of the RK3399 preset by registers only, the way the Linux driver's
 * rk_iommu_enable() does, then move data through it by DMA.
 *
 *   npm run bringup -- --soc resources/socs/rk3399.soc.json resources/examples/rockchip-registers.ts
 *
 * Table formats (v1, 32-bit PA): DTE = PT address | valid; PTE = page address | writable(2) |
 * readable(1) | valid(0). IOVA bits 31:22 index the directory, 21:12 the page table.
 */
const MMU = 'vopb_mmu';
const DEV = 'vopb';
const CMD = { ENABLE_PAGING: 0, DISABLE_PAGING: 1, ENABLE_STALL: 2, DISABLE_STALL: 3, ZAP_CACHE: 4, PAGE_FAULT_DONE: 5, FORCE_RESET: 6 };
const STATUS_PAGING_ENABLED = 1 << 0;
const STATUS_PAGE_FAULT_ACTIVE = 1 << 1;
const INT_PAGE_FAULT = 1 << 0;
const VALID = 1 << 0;
const READABLE = 1 << 1;
const WRITABLE = 1 << 2;
const AUTO_GATING_DISABLE_FETCH_DTE_TIME_LIMIT = 0x8000_0000;

const PAGE = 0x1000;
const DT = 0x0100_0000;
const PT = 0x0100_1000;
const BUF = 0x0200_0000;
const IOVA = 0x1000_0000;
const PAGES = 4;

const dteSlot = (iova: number): number => DT + (iova >>> 22) * 4;
const pteSlot = (iova: number): number => PT + ((iova >>> 12) & 0x3ff) * 4;

/** The IOMMU's first register window, from the loaded config. */
function mmuBase(): number {
  const mmu = soc.config.iommus.find((m) => m.name === MMU)!;
  return Number(mmu.reg[0]!.base);
}

/** Directory and page table in RAM mapping IOVA..IOVA+PAGES pages to BUF, cleaned to memory. */
async function buildTables(): Promise<void> {
  await soc.mem.write(DT, new Uint8Array(PAGE));
  await soc.mem.write(PT, new Uint8Array(PAGE));
  await soc.writel(PT | VALID, dteSlot(IOVA));
  for (let i = 0; i < PAGES; i++) await soc.writel((BUF + i * PAGE) | WRITABLE | READABLE | VALID, pteSlot(IOVA + i * PAGE));
  // The walker does not snoop the CPU cache: tables must reach memory before it reads them.
  await soc.mem.clean(DT, PAGE);
  await soc.mem.clean(PT, PAGE);
}

/** rk_iommu_enable for one MMU instance: reset, DTE_ADDR, ZAP_CACHE, INT_MASK, AUTO_GATING, paging. */
async function enableIommu(): Promise<void> {
  const base = mmuBase();
  // force_reset's self-test: a dummy table address must read back exactly.
  await soc.writel(0xcafe_b000, base + 0x00);
  expect((await soc.readl(base + 0x00)) >>> 0).toBe(0xcafe_b000);
  await soc.setReg(MMU, 'COMMAND', CMD.FORCE_RESET);
  expect(await soc.reg(MMU, 'DTE_ADDR')).toBe(0);

  await soc.setReg(MMU, 'DTE_ADDR', DT);
  await soc.setReg(MMU, 'COMMAND', CMD.ZAP_CACHE);
  await soc.setReg(MMU, 'INT_MASK', INT_PAGE_FAULT | 2);
  const gating = await soc.reg(MMU, 'AUTO_GATING');
  await soc.setReg(MMU, 'AUTO_GATING', (gating | AUTO_GATING_DISABLE_FETCH_DTE_TIME_LIMIT) >>> 0);
  await soc.setReg(MMU, 'COMMAND', CMD.ENABLE_PAGING);
  expect((await soc.reg(MMU, 'STATUS')) & STATUS_PAGING_ENABLED).toBe(STATUS_PAGING_ENABLED);
}

/** What the driver's IRQ handler does: zap everything, let the master go on, acknowledge. */
async function handleFault(): Promise<void> {
  const status = await soc.reg(MMU, 'INT_STATUS');
  await soc.setReg(MMU, 'COMMAND', CMD.ZAP_CACHE);
  await soc.setReg(MMU, 'COMMAND', CMD.PAGE_FAULT_DONE);
  await soc.setReg(MMU, 'INT_CLEAR', status);
}

/** Acknowledge a fault without the handler's ZAP_CACHE, so the cached lines stay as they are. */
async function acknowledge(): Promise<void> {
  await soc.setReg(MMU, 'COMMAND', CMD.PAGE_FAULT_DONE);
  await soc.setReg(MMU, 'INT_CLEAR', INT_PAGE_FAULT);
}

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

test('programs the IOMMU by registers and moves data through it by DMA', async () => {
  await buildTables();
  await enableIommu();

  const data = pattern(PAGES * PAGE, 3);
  const w = await soc.device(DEV).dma.write(IOVA, data);
  expect(w.ok).toBe(true);

  // The device wrote memory behind the CPU cache: invalidate before the CPU looks.
  await soc.mem.invalidate(BUF, data.length);
  expect(await soc.mem.read(BUF, data.length)).toEqual(data);

  const r = await soc.device(DEV).dma.read(IOVA, data.length);
  expect(r.ok).toBe(true);
  expect(r.data).toEqual(data);

  const tlb = await soc.iommu(MMU).tlb();
  expect(tlb).toHaveLength(PAGES);
  expect(tlb[0]).toMatchObject({ iova: IOVA, pa: BUF, size: PAGE, perms: ['read', 'write'] });
});

test('a DMA to an unmapped IOVA faults, and the fault registers say where', async () => {
  await buildTables();
  await enableIommu();

  const hole = IOVA + PAGES * PAGE;
  const r = await soc.device(DEV).dma.read(hole, 64);
  expect(r.ok).toBe(false);
  expect(r.fault).toMatchObject({ iova: hole, access: 'read', reason: 'pte-invalid' });
  expect(await soc.reg(MMU, 'PAGE_FAULT_ADDR')).toBe(hole);
  expect((await soc.reg(MMU, 'STATUS')) & STATUS_PAGE_FAULT_ACTIVE).toBe(STATUS_PAGE_FAULT_ACTIVE);
  expect((await soc.reg(MMU, 'INT_STATUS')) & INT_PAGE_FAULT).toBe(INT_PAGE_FAULT);

  await handleFault();
  expect(await soc.reg(MMU, 'INT_RAWSTAT')).toBe(0);
  expect((await soc.reg(MMU, 'STATUS')) & STATUS_PAGE_FAULT_ACTIVE).toBe(0);
  // The fault was the point of this test.
  await soc.takeFindings();
});

test('a zap issued before the PTE update leaves the invalid line cached (the P1 race)', async () => {
  await buildTables();
  await enableIommu();
  const iova = IOVA + PAGES * PAGE;

  // Wrong order: zap first...
  await soc.setReg(MMU, 'ZAP_ONE_LINE', iova);
  // ...the master walks the table before the update: the IOMMU caches the line holding the invalid PTE...
  expect((await soc.device(DEV).dma.read(iova, 64)).ok).toBe(false);
  const line = (await soc.iommu(MMU).walkCache()).find((l) => l.tablePa === (pteSlot(iova) & ~63))!;
  expect(line.entries[(pteSlot(iova) & 63) / 4]).toBe(0);
  await acknowledge();

  // ...then the PTE is written and cleaned, but the cached line is stale: the DMA still faults.
  await soc.writel((BUF + PAGES * PAGE) | WRITABLE | READABLE | VALID, pteSlot(iova));
  await soc.mem.clean(pteSlot(iova), 4);
  expect((await soc.device(DEV).dma.read(iova, 64)).ok).toBe(false);
  await acknowledge();

  // The fixed order zaps after the update: the line is dropped and the next walk sees the PTE.
  await soc.setReg(MMU, 'ZAP_ONE_LINE', iova);
  expect((await soc.device(DEV).dma.read(iova, 64)).ok).toBe(true);
  await soc.takeFindings();
});
