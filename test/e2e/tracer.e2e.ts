/**
 * The tracer bullet, end to end: web server + real session host + built renderer in Chromium.
 * Needs `npm run build` first (out/renderer). Screenshots go to test-results/ for a human look.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium';
import { BUILT_SIM_WORKER } from '../support/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionHost } from '../../src/main/host/host';
import { startWebServer, type WebServer } from '../../src/main/web/server';

const RENDERER_DIR = fileURLToPath(new URL('../../out/renderer', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../test-results', import.meta.url));

const PASSING = `test('TTB holds the directory table address', async () => {
  const [iommu] = await soc.iommus();
  await soc.setReg(iommu, 'TTB', 0x4000_0000);
  expect(await soc.reg(iommu, 'TTB')).toBe(0x4000_0000);
});
`;

// The failing expectation is on line 3, column 3.
const FAILING = `test('fails on purpose', async () => {
  console.log('about to fail');
  expect(1).toBe(2);
});
`;

/** expect.poll with room for the first load on a loaded machine. */
const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: 30_000 });

let host: SessionHost;
let server: WebServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  host = await SessionHost.create({ worker: BUILT_SIM_WORKER });
  server = await startWebServer({ host: '127.0.0.1', port: 0, rendererDir: RENDERER_DIR, session: host });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await host?.dispose();
});

/**
 * Replace the editor's text the way a user would: click, select all, paste. Pasting (unlike typed
 * keystrokes) is not re-indented or bracket-completed by Monaco, so the text, and its line
 * numbers, arrive exactly as written.
 */
async function setScript(source: string): Promise<void> {
  await page.locator('[data-testid=editor] .view-lines').click();
  await page.keyboard.press('Control+A');
  // A string, not a function: this project's Node typings have no DOM, and this runs in the page.
  await page.evaluate(`(() => {
    const data = new DataTransfer();
    data.setData('text/plain', ${JSON.stringify(source)});
    document.activeElement.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  })()`);
  await poll(() => page.evaluate(`localStorage.getItem('soc-console.script')`)).toBe(source);
}

describe('tracer bullet (web mode)', () => {
  it('loads the default preset and shows the IOMMU registers', async () => {
    await page.goto(server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).not.toBe('—');
    await page.getByTestId('block-item').first().waitFor();
    expect(await page.getByTestId('preset-select').inputValue()).toBe('sun50i-h6');
    const ttb = page.locator('[data-testid=register-row][data-register=TTB]');
    await ttb.waitFor();
    expect(await ttb.getByTestId('register-value').textContent()).toMatch(/^0x[0-9a-f]{8}$/);
    await page.locator('[data-testid=editor] .monaco-editor .view-lines').waitFor();
    await ttb.click();
    expect(await page.getByTestId('register-fields').textContent()).toContain('[31:14]');
    await page.screenshot({ path: `${SHOTS}/tracer-1-loaded.png` });
  });

  it('runs a passing script with Ctrl+Enter and refreshes the registers', async () => {
    await setScript(PASSING);
    await page.keyboard.press('Control+Enter');
    const result = page.getByTestId('test-result');
    await result.first().waitFor();
    await poll(() => page.getByTestId('run-summary').textContent()).toMatch(/1 passed, 0 failed/);
    expect(await result.first().getAttribute('data-status')).toBe('passed');
    expect(await result.first().getByTestId('test-status').textContent()).toBe('✓');
    const ttb = page.locator('[data-testid=register-row][data-register=TTB] [data-testid=register-value]');
    await poll(() => ttb.textContent()).toBe('0x40000000');
    await page.screenshot({ path: `${SHOTS}/tracer-2-passed.png` });
  });

  it('shows a failing test with its line and reveals it in the editor', async () => {
    await setScript(FAILING);
    await page.keyboard.press('Control+Enter');
    await poll(() => page.getByTestId('run-summary').textContent()).toMatch(/0 passed, 1 failed/);
    const failed = page.getByTestId('test-result').first();
    expect(await failed.getAttribute('data-status')).toBe('failed');
    expect(await failed.getByTestId('test-status').textContent()).toBe('✗');
    expect(await failed.getByTestId('error-location').textContent()).toMatch(/^script\.ts:3:\d+$/);
    expect(await page.getByTestId('output-pane').textContent()).toContain('about to fail');
    await failed.getByTestId('error-location').click();
    await page.locator('.soc-failed-line').waitFor();
    await page.screenshot({ path: `${SHOTS}/tracer-3-failed.png` });
  });

  it('keeps the unsaved script across a reload', async () => {
    await page.reload();
    await page.locator('[data-testid=editor] .view-lines').waitFor();
    // Monaco renders spaces as no-break spaces.
    const text = async (): Promise<string> => ((await page.locator('[data-testid=editor] .view-lines').textContent()) ?? '').replace(/\u00a0/g, ' ');
    await poll(text).toContain('fails on purpose');
    expect(pageErrors).toEqual([]);
  });

  it('completes the script API from the generated declarations', async () => {
    await page.locator('[data-testid=editor] .view-lines').click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('soc.');
    const suggest = page.locator('.suggest-widget');
    await poll(() => suggest.textContent()).toContain('iommus');
    await page.screenshot({ path: `${SHOTS}/tracer-4-completion.png` });
  });
});
