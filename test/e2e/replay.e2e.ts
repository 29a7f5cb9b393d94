/**
 * Findings and replay, end to end in web mode: a finding jumps to its script line and its moment on
 * the timeline; an explorer failure (problem P1 on rk3399) replays step by step with the views
 * following; the device tree shows the kernel's device links; the shortcuts help.
 * Screenshots go to test-results/replay-*.png.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConsole, poll, runScript, setScript, SHOTS, type Rig } from './console-kit';

const P1 = readFileSync(new URL('../../resources/examples/problems/p1-rockchip-zap-order-explore.ts', import.meta.url), 'utf8');

/** A double unmap on the H6: the finding names line 5, the second unmap. */
const DOUBLE_UNMAP = [
  "test('double unmap', async () => {",
  '  const pa = await kernel.allocPages(1);',
  "  const iova = await kernel.dma.mapSingle('ve', pa, 4096, 'to-device');",
  "  await kernel.dma.unmapSingle('ve', iova, 4096, 'to-device');",
  "  await kernel.dma.unmapSingle('ve', iova, 4096, 'to-device');",
  '});',
  '',
].join('\n');

let rig: Rig;
beforeAll(async () => {
  rig = await openConsole();
});
afterAll(async () => {
  await rig?.close();
});

const shot = (name: string) => rig.page.screenshot({ path: `${SHOTS}/replay-${name}.png` });
const tab = (id: string) => rig.page.getByTestId(`tab-${id}`).click();
const activeTab = () => rig.page.locator('[role=tab].active').getAttribute('data-testid');
const position = () => rig.page.getByTestId('replay-position').textContent();
/** The timeline draws on the frame after its data arrives: wait for the canvas to carry pixels. */
const timelineDrawn = () =>
  poll(() =>
    rig.page.evaluate(`(() => {
      const c = document.querySelector('[data-testid=timeline-canvas]');
      return !!c && c.width > 0 && c.getContext('2d').getImageData(4, 4, 1, 1).data[3] > 0;
    })()`),
  ).toBe(true);

describe('findings and replay (web mode)', () => {
  it('a finding jumps to its script line in the editor and to its moment on the timeline', async () => {
    const { page } = rig;
    await page.goto(rig.server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    await setScript(page, DOUBLE_UNMAP);
    await runScript(page, /0 passed, 1 failed/);
    await tab('findings');
    const row = page.locator('[data-testid=finding-row][data-kind=double-unmap]').first();
    await row.waitFor();
    await row.click();
    // Selecting keeps the list in place; the row's Timeline button opens the timeline at it.
    expect(await activeTab()).toBe('tab-findings');
    await row.getByTestId('finding-timeline').click();
    expect(await activeTab()).toBe('tab-timeline');
    const view = page.getByTestId('timeline-view');
    await view.waitFor();
    // The window is centred on the finding's moment.
    const marker = Number(await view.getAttribute('data-marker'));
    const start = Number(await view.getAttribute('data-start'));
    const end = Number(await view.getAttribute('data-end'));
    expect(marker).toBeGreaterThan(0);
    expect(Math.abs((start + end) / 2 - marker)).toBeLessThanOrEqual(1);
    // The editor shows the line marked, with the cursor on it.
    await poll(() => page.locator('[data-testid=editor] .soc-failed-line').count()).toBe(1);
    await poll(() => page.locator('[data-testid=editor] .line-numbers.active-line-number').textContent()).toBe('5');
    await timelineDrawn();
    await shot('1-finding-line');
  });

  it('shows device links, runtime-PM status and attached domains in the device tree (rk3399)', async () => {
    const { page } = rig;
    await page.getByTestId('preset-select').selectOption('rk3399');
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('rk3399');
    await setScript(page, P1);
    await runScript(page, /3 passed, 0 failed/);
    const link = page.locator('[data-testid=tree-link][data-consumer=vopb][data-supplier=vopb_mmu]');
    await poll(() => link.count()).toBe(1);
    expect(await link.textContent()).toMatch(/stateless pm-runtime/);
    await poll(() => page.locator('[data-testid=tree-attached][data-name=vopl]').textContent()).toMatch(/→ domain #\d+ dma/);
    await poll(() => page.locator('[data-testid=tree-device][data-name=vopb] [data-testid=tree-rpm]').textContent()).toMatch(/active|suspended/);
    await page.getByTestId('device-tree').screenshot({ path: `${SHOTS}/replay-2-device-tree.png` });
    await link.scrollIntoViewIfNeeded();
    await page.getByTestId('device-tree').screenshot({ path: `${SHOTS}/replay-2-device-links.png` });
  });

  it('replays an explorer failure step by step; the views follow each step', async () => {
    const { page } = rig;
    await tab('findings');
    const failures = page.getByTestId('explore-failure');
    await poll(() => failures.count()).toBe(2);
    expect(await failures.first().textContent()).toMatch(/before-update: the explorer finds/);
    await shot('3-failures');

    // The TLB of the IOMMU the race runs on: empty for the raced IOVA before the DMA thread's first beat.
    await tab('tlb');
    await page.getByTestId('tlb-iommu').selectOption('vopb_mmu');
    await tab('findings');
    await failures.first().getByTestId('replay-button').click();
    await poll(position).toMatch(/step 0 \/ 8/);
    await tab('tlb');
    const raced = page.locator('[data-testid=tlb-entry][data-iova="268435456"]');
    await poll(() => raced.count()).toBe(0);

    // F10 steps: zap (MMIO) by thread 0 at step 3.
    for (let i = 1; i <= 3; i++) {
      await page.keyboard.press('F10');
      await poll(position).toMatch(new RegExp(`step ${i} / 8`));
    }
    // The step names the register it wrote (register DSL metadata), and the legend says who each thread is.
    await poll(() => page.getByTestId('replay-current').textContent()).toMatch(/thread 0 · mmio-write vopb_mmu\.[A-Z_]+ \(0x[0-9a-f]+\)/);
    expect(await page.getByTestId('replay-legend').textContent()).toMatch(/1 .*vopb.*dma-beat/);
    await shot('4-step3');

    // Two more with the button: the DMA thread's first beat walks and fills the TLB.
    await page.getByTestId('replay-step').click();
    await poll(position).toMatch(/step 4 \/ 8/);
    await page.getByTestId('replay-step').click();
    await poll(position).toMatch(/step 5 \/ 8/);
    expect(await page.getByTestId('replay-current').textContent()).toMatch(/thread 1 · dma-beat 0x10000000 · vopb/);
    await poll(() => raced.count()).toBeGreaterThan(0);
    await shot('5-step5-tlb');

    // Back one step, and the TLB forgets again only if the beat filled it: the views follow both ways.
    await page.keyboard.press('Shift+F10');
    await poll(position).toMatch(/step 4 \/ 8/);
    await poll(() => raced.count()).toBe(0);

    // To the end: the check's DMA to page B faults on the invalid PTE the walk cached.
    await page.keyboard.press('Control+F10');
    await poll(position).toMatch(/step 8 \/ 8/);
    await tab('timeline');
    await poll(() => page.getByTestId('timeline-view').getAttribute('data-marker')).toMatch(/^\d+$/);
    expect(await page.getByTestId('replay-bar').textContent()).toMatch(/the replay fails: check: expected "pte-invalid" to be undefined/);
    await timelineDrawn();
    await shot('6-end-timeline');

    // Esc (outside the editor) leaves the replay.
    await page.locator('[data-testid=device-tree] .pane-header').click();
    await page.keyboard.press('Escape');
    await poll(() => page.getByTestId('replay-bar').count()).toBe(0);
    expect(rig.errors).toEqual([]);
  });

  it('lists the keyboard shortcuts on ?', async () => {
    const { page } = rig;
    await page.locator('[data-testid=device-tree] .pane-header').click();
    await page.keyboard.press('?');
    const help = page.getByTestId('help-popover');
    await help.waitFor();
    for (const k of ['Ctrl+Enter', 'F10', 'Esc', 'Ctrl+S']) expect(await help.textContent()).toContain(k);
    await shot('7-help');
    await page.keyboard.press('Escape');
    await poll(() => help.count()).toBe(0);
  });
});
