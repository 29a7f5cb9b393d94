/**
 * The page-table view end to end in web mode: a script maps pages through the kernel API, then the
 * table tree shows the descriptors level by level, the IOVA map shows the runs, the walk box walks an
 * IOVA to its PA, and the memory view labels a table page with its domain. On the arm64-smmu preset
 * (LPAE, 4 KiB pages and a 2 MiB block) and the sun50i-h6 (DT/PT, 4 KiB pages; then a live domain
 * freed under the hardware). Screenshots go to test-results/page-tables-*.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConsole, poll, runScript, setScript, SHOTS, type Rig } from './console-kit';

const SMMU_SCRIPT = `test('maps 4 KiB pages and a 2 MiB block', async () => {
  const d = await kernel.domainAlloc('smmu0');
  expect(await kernel.attachDevice(d, 'display')).toBe(0);
  const rw = kernel.IOMMU_READ | kernel.IOMMU_WRITE;
  expect(await kernel.map(d, 0x1000_0000, 0x9000_0000, 0x2000, rw)).toBe(0);
  expect(await kernel.map(d, 0x1000_4000, 0x9000_8000, 0x1000, kernel.IOMMU_READ)).toBe(0);
  expect(await kernel.map(d, 0x2000_0000, 0x9020_0000, 0x20_0000, rw)).toBe(0);
});
`;

const H6_SCRIPT = `test('maps 4 KiB pages', async () => {
  const d = await kernel.domainAlloc('iommu0');
  expect(await kernel.attachGroup(d, kernel.group('ve'))).toBe(0);
  const pa = await kernel.allocPages(4);
  expect(await kernel.map(d, 0x1000_0000, pa, 0x4000, kernel.IOMMU_READ | kernel.IOMMU_WRITE)).toBe(0);
  expect(await kernel.map(d, 0x1010_0000, pa + 0x3000, 0x1000, kernel.IOMMU_READ)).toBe(0);
});
`;

const H6_UAF_SCRIPT = `test('frees the live domain without detaching it first (P7)', async () => {
  kernel.driver('iommu0').setVariant({ detachBeforeFree: false });
  const d = await kernel.domainAlloc('iommu0');
  expect(await kernel.attachGroup(d, kernel.group('ve'))).toBe(0);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, 0x1000_0000, pa, 0x1000, kernel.IOMMU_READ | kernel.IOMMU_WRITE)).toBe(0);
  await kernel.domainFree(d);
  // The checkers report the freed live tables; this run is about what the page-table view shows.
  soc.takeFindings();
});
`;

let rig: Rig;
beforeAll(async () => {
  rig = await openConsole();
});
afterAll(async () => {
  await rig?.close();
});

const shot = (name: string) => rig.page.screenshot({ path: `${SHOTS}/page-tables-${name}.png` });
const tab = (id: string) => rig.page.getByTestId(`tab-${id}`).click();
const entry = (level: number, index: number) => rig.page.locator(`[data-testid=pt-entry][data-level="${level}"][data-index="${index}"]`);

/** The newest unmanaged domain (the script's), picked in the domain selector. */
async function pickScriptDomain(): Promise<number> {
  const domains = await rig.host.domains();
  const d = domains.filter((x) => x.type === 'unmanaged').sort((a, b) => b.id - a.id)[0]!;
  await rig.page.getByTestId('pt-domain').selectOption(String(d.id));
  return d.id;
}

async function loadPreset(name: string): Promise<void> {
  await rig.page.getByTestId('preset-select').selectOption(name);
  await poll(() => rig.page.getByTestId('soc-name').textContent()).toBe(name);
}

async function walk(iova: string): Promise<void> {
  await rig.page.getByTestId('pt-walk-input').fill(iova);
  await rig.page.getByTestId('pt-walk-input').press('Enter');
}

describe('the page-table view (web mode)', () => {
  it('arm64-smmu: LPAE levels 0-3, a 2 MiB block, the IOVA map and a walk to the PA', async () => {
    const { page } = rig;
    await page.goto(rig.server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    await loadPreset('arm64-smmu');
    await setScript(page, SMMU_SCRIPT);
    await runScript(page, /1 passed/);
    await tab('pagetables');
    const id = await pickScriptDomain();
    await poll(() => page.getByTestId('pt-format').textContent()).toBe('arm-lpae 4K, 48-bit IOVA');
    await page.getByTestId('pt-live').waitFor();

    await entry(0, 0).click();
    await entry(1, 0).click();
    await poll(() => entry(2, 256).textContent()).toContain('2 MiB block → 0x90200000 RW');
    await entry(2, 128).click();
    await poll(() => entry(3, 0).textContent()).toContain('4 KiB page → 0x90000000 RW');
    expect(await entry(3, 4).textContent()).toContain('4 KiB page → 0x90008000 R');
    expect(await page.locator('[data-testid=pt-entry][data-level="3"]').count()).toBe(3);
    await entry(3, 1).click();
    expect(await page.getByTestId('pt-detail').textContent()).toMatch(/AttrIndx.*AP RW, EL0.*AF 1/);

    // Runs: 8 KiB of 4 KiB pages RW, 4 KiB RO, one 2 MiB block.
    const runs = page.getByTestId('pt-run');
    await poll(() => runs.count()).toBe(3);
    expect(await runs.nth(2).textContent()).toMatch(/0x20000000.*0x90200000.*2 MiB/);
    expect(await page.getByTestId('iova-mark').count()).toBeGreaterThanOrEqual(2);

    // The click on the 4 KiB leaf walked it: four levels down to the PA.
    await poll(() => page.getByTestId('pt-walk-result').textContent()).toContain('0x10001000 → 0x90001000');
    await walk('0x10001234');
    await poll(() => page.getByTestId('pt-walk-result').textContent()).toContain('0x10001234 → 0x90001234');
    expect(await page.getByTestId('pt-walk-step').count()).toBe(4);
    await shot('1-smmu');

    await runs.nth(2).click();
    await poll(() => page.getByTestId('pt-walk-result').textContent()).toContain('0x20000000 → 0x90200000 (2 MiB, RW)');
    expect(await page.getByTestId('pt-walk-step').count()).toBe(3);
    await walk('0x30000000');
    await poll(() => page.getByTestId('pt-walk-result').textContent()).toMatch(/fault: L2\[384\].*valid\) clear/);
    await page.getByTestId('iova-aperture').click();
    await shot('2-smmu-block-fault');

    // The memory view labels the root table page with its domain and level.
    const root = (await rig.host.domains()).find((d) => d.id === id)!.root!.pa;
    await tab('memory');
    await page.getByTestId('memory-mode-ram').click();
    await page.getByTestId('memory-goto').fill(`0x${root.toString(16)}`);
    await page.getByTestId('memory-goto').press('Enter');
    const row = page.locator(`[data-testid=memory-row][data-addr="${root}"]`);
    await poll(() => row.getByTestId('memory-owner').textContent()).toBe(`domain ${id} · L0 table`);
    expect(await row.getAttribute('class')).toContain('own-pgtable');
    await shot('3-memory');
  });

  it('sun50i-h6: DT/PT with 4 KiB pages; a freed live domain is flagged', async () => {
    const { page } = rig;
    await loadPreset('sun50i-h6');
    await setScript(page, H6_SCRIPT);
    await runScript(page, /1 passed/);
    await tab('pagetables');
    const id = await pickScriptDomain();
    await poll(() => page.getByTestId('pt-format').textContent()).toBe('sun50i-h6 DT/PT');
    const w = await rig.host.walkIova(id, 0x1000_2000);
    if (!w.result.ok) throw new Error('the mapping is missing');
    const pa = `0x${w.result.pa.toString(16)}`;

    await poll(() => entry(1, 256).textContent()).toContain('DTE → PT at');
    expect(await page.locator('[data-testid=pt-entry][data-level="1"]').count()).toBe(2);
    await entry(1, 256).click();
    await poll(() => entry(2, 2).textContent()).toContain(`4 KiB page → ${pa}, ACI 4 (RD_WR)`);
    await page.getByTestId('pt-show-invalid').check();
    await poll(() => page.locator('[data-testid=pt-entry][data-kind=invalid]').count()).toBeGreaterThan(0);
    await page.getByTestId('pt-show-invalid').uncheck();
    await entry(2, 2).click();
    await poll(() => page.getByTestId('pt-walk-result').textContent()).toContain(`0x10002000 → ${pa}`);
    expect(await page.getByTestId('pt-walk-step').count()).toBe(2);
    await poll(() => page.getByTestId('pt-run').count()).toBe(2);
    await shot('4-h6');

    await setScript(page, H6_UAF_SCRIPT);
    await runScript(page, /1 passed/);
    const freed = await pickScriptDomain();
    await poll(() => page.getByTestId('pt-note').first().textContent()).toMatch(new RegExp(`is free memory \\(last held by page table \\(domain ${freed}, level 1`));
    expect(await page.locator('.badge.freed').count()).toBe(1);
    await page.getByTestId('pt-live').waitFor();
    // The hardware still walks the freed DT: every step names the memory it really is now.
    await walk('0x10000000');
    await poll(() => page.getByTestId('pt-walk').textContent()).toMatch(/table not owned: 0x[0-9a-f]+ is free memory/);
    await shot('5-h6-freed-live');
    expect(rig.errors).toEqual([]);
  });
});
