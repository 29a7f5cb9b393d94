/**
 * Nothing stale: the console always shows the selected SoC and the current run. Preset switches
 * (the Registers view checked against describeBlock each time), Stop in the middle of a run, the
 * server going away and coming back, and a second window changing the preset under the first.
 * Screenshots go to test-results/correctness-*.png.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionHost } from '../../src/main/host/host';
import { startWebServer } from '../../src/main/web/server';
import { openConsole, poll, RENDERER_DIR, runScript, setScript, SHOTS, type Rig } from './console-kit';

let rig: Rig;
beforeAll(async () => {
  rig = await openConsole();
});
afterAll(async () => {
  await rig?.close();
});

const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}/correctness-${name}.png` });

/** The register names the Registers view lists, in order. */
const shownRegisters = (page: Page): Promise<string[]> =>
  page.locator('[data-testid=register-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-register') ?? ''));

/**
 * The Registers view shows the block it names, with that block's layout from the host
 * (describeBlock), and the top bar names the SoC the host runs.
 */
async function expectRegistersMatchHost(page: Page, host: SessionHost): Promise<void> {
  await page.getByTestId('tab-registers').click();
  const tree = await host.deviceTree();
  await poll(() => page.getByTestId('soc-name').textContent()).toBe(tree.name);
  const blocks = await host.listBlocks();
  // 'ok', or what is wrong: polled, because the view may still be on its way to the new SoC.
  const mismatch = async (): Promise<string> => {
    const block = (await page.getByTestId('register-block').textContent({ timeout: 1000 }).catch(() => null))?.trim() ?? '';
    const info = blocks.find((b) => b.name === block);
    if (!info) return `the view shows block "${block}", which ${tree.name} does not have`;
    const want = (await host.describeBlock(block)).registers.map((r) => r.name);
    const shown = await shownRegisters(page);
    if (shown.join() !== want.join()) return `${block} listed as [${shown.slice(0, 4).join(', ')}…], describeBlock says [${want.slice(0, 4).join(', ')}…]`;
    // Values are read: a register without read side effects of a powered block is never "not read".
    const readable = (await host.readRegisters(block)).find((v) => v.value !== null);
    if (readable && info.powered) {
      const cell = page.locator(`[data-testid=register-row][data-register="${readable.name}"] [data-testid=register-value]`);
      if (/not read/.test((await cell.textContent()) ?? '')) return `${block}.${readable.name} shows "not read"`;
    }
    return 'ok';
  };
  await poll(mismatch).toBe('ok');
}

const LONG_RUN = `test('a long run', async () => {
  for (let i = 0; i < 1_000_000; i++) await soc.writel(i, 0x4100_0000);
});
`;

describe('nothing stale', () => {
  it('20 preset switches: the Registers view always shows the new SoC’s block layout', async () => {
    const { page, host } = rig;
    await page.goto(rig.server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    await page.locator('[data-testid=register-row]').first().waitFor();
    const presets = await host.listPresets();
    expect(presets.length).toBeGreaterThan(2);
    for (let i = 0; i < 20; i++) {
      const preset = presets[(i + 1) % presets.length]!;
      await page.getByTestId('preset-select').selectOption(preset);
      // A refresh racing the switch (F5, a periodic one) must not keep the old layout.
      if (i % 2 === 0) await page.getByTestId('refresh-button').click();
      await poll(async () => (await host.configText())?.file).toBe(`resources/socs/${preset}.soc.json`);
      await expectRegistersMatchHost(page, host);
    }
    await shot(page, '1-after-20-switches');
  });

  it('a switch clears the old SoC’s output, status, IOVA walk and config errors', async () => {
    const { page, host } = rig;
    await page.getByTestId('preset-select').selectOption('rk3399');
    await expectRegistersMatchHost(page, host);
    // kernel.boot(): the Page tables view has domains to walk only once the kernel layer is up.
    await setScript(page, `test('rk3399 only', async () => { await kernel.boot(); expect(soc.device('vopb')).toBeTruthy(); console.log('rk3399 output'); });\n`);
    await runScript(page, /1 passed/);
    await expect.poll(() => page.getByTestId('output-pane').textContent()).toContain('rk3399 output');
    await page.getByTestId('tab-pagetables').click();
    await page.getByTestId('pt-walk-input').fill('0x12345000');
    await page.getByTestId('pt-walk-input').press('Enter');
    await page.getByTestId('pt-walk-result').waitFor();
    await page.getByTestId('tab-config').click();
    await page.locator('[data-testid=config-editor] .view-lines').waitFor();
    const bad = join(tmpdir(), `correctness-e2e-${process.pid}.soc.json`);
    writeFileSync(bad, '{ "name": "broken" }');
    await page.getByTestId('config-open').setInputFiles(bad);
    await page.getByTestId('config-apply').click();
    await page.getByTestId('config-errors').waitFor();

    await page.getByTestId('preset-select').selectOption('sun50i-h6');
    await expectRegistersMatchHost(page, host);
    await poll(() => page.getByTestId('output-pane').textContent()).not.toContain('rk3399 output');
    expect(await page.getByTestId('run-summary').count()).toBe(0);
    expect(await page.getByTestId('status-run').textContent()).toContain('idle');
    await page.getByTestId('tab-config').click();
    expect(await page.getByTestId('config-errors').count()).toBe(0);
    expect(await page.getByTestId('status-message').count()).toBe(0);
    await page.getByTestId('tab-pagetables').click();
    await page.getByTestId('pagetables-view').waitFor();
    expect(await page.getByTestId('pt-walk-result').count()).toBe(0);
    if (await page.getByTestId('pt-walk-input').count()) expect(await page.getByTestId('pt-walk-input').inputValue()).toBe('');
    await page.getByTestId('tab-registers').click();
    await shot(page, '2-after-switch');
  });

  it('Stop in the middle of a run leaves the views on the reloaded SoC', async () => {
    const { page, host } = rig;
    await setScript(page, LONG_RUN);
    await page.getByTestId('run-button').click();
    await poll(() => page.getByTestId('status-run').textContent()).toMatch(/running/);
    await page.getByTestId('stop-button').click();
    await poll(() => page.getByTestId('run-error').textContent()).toMatch(/stopped by the user/);
    await expectRegistersMatchHost(page, host);
    await page.getByTestId('preset-select').selectOption('mt8183');
    await expectRegistersMatchHost(page, host);
    await shot(page, '3-after-stop');
  });

  it('server gone: Run is refused with a banner; back: the preset is reloaded and nothing queued runs', async () => {
    const { page } = rig;
    const port = rig.server.port;
    await rig.server.close();
    await rig.host.dispose();
    await poll(() => page.getByTestId('connection-status').textContent()).toContain('reconnecting');
    await page.getByTestId('run-button').click();
    await poll(() => page.getByTestId('run-refused').textContent()).toMatch(/Run is refused/);
    await shot(page, '4-disconnected');

    const host = await SessionHost.create();
    const server = await startWebServer({ host: '127.0.0.1', port, rendererDir: RENDERER_DIR, session: host });
    rig.host = host;
    rig.server = server;
    const runs: unknown[] = [];
    host.onEvent((e) => {
      if (e.type === 'run-end') runs.push(e);
    });
    await poll(() => page.getByTestId('connection-status').textContent()).toContain('connected');
    await poll(async () => (await host.configText())?.file).toBe('resources/socs/mt8183.soc.json');
    await expectRegistersMatchHost(page, host);
    await poll(() => page.getByTestId('run-refused').count()).toBe(0);
    // The refused run was not queued for the new host.
    await new Promise((r) => setTimeout(r, 1000));
    expect(runs).toEqual([]);
    await shot(page, '5-reconnected');
  });

  it('a second window that changes the preset updates the first one’s top bar and views', async () => {
    const { page } = rig;
    const second = await page.context().newPage();
    await second.goto(rig.server.url);
    await poll(() => second.getByTestId('soc-name').textContent()).toBe('mt8183');
    await second.getByTestId('preset-select').selectOption('arm64-smmu');
    await expectRegistersMatchHost(second, rig.host);
    await expectRegistersMatchHost(page, rig.host);
    expect(await page.getByTestId('preset-select').inputValue()).toBe('arm64-smmu');
    await shot(page, '6-first-window');
    await second.close();
  });

  it('raised no page errors', () => {
    // Refused calls while disconnected are reported in the top bar, not as page errors.
    expect(rig.errors.filter((e) => !/session host|WebSocket|ERR_CONNECTION_REFUSED/.test(e))).toEqual([]);
  });
});
