/**
 * Shared setup for the console e2e tests: a real session host and web server, the built renderer
 * in Chromium, and helpers that act as a user would. Needs `npm run build` first.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';
import { SessionHost } from '../../src/main/host/host';
import { startWebServer, type WebServer } from '../../src/main/web/server';
import { launchChromium } from '../support/chromium';
import { BUILT_SIM_WORKER } from '../support/cli';

export const RENDERER_DIR = fileURLToPath(new URL('../../out/renderer', import.meta.url));
export const SHOTS = fileURLToPath(new URL('../../test-results', import.meta.url));

export interface Rig {
  host: SessionHost;
  server: WebServer;
  browser: Browser;
  page: Page;
  errors: string[];
  close(): Promise<void>;
}

export async function openConsole(): Promise<Rig> {
  mkdirSync(SHOTS, { recursive: true });
  const host = await SessionHost.create({ worker: BUILT_SIM_WORKER });
  const server = await startWebServer({ host: '127.0.0.1', port: 0, rendererDir: RENDERER_DIR, session: host });
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return {
    host,
    server,
    browser,
    page,
    errors,
    async close() {
      await browser.close();
      await server.close();
      await host.dispose();
    },
  };
}

/** expect.poll with room for the first load on a loaded machine. */
export const poll = <T>(fn: () => Promise<T>) => expect.poll(fn, { timeout: 30_000 });

/** Replace the editor's text by pasting, so Monaco does not re-indent it. */
export async function setScript(page: Page, source: string): Promise<void> {
  await page.locator('[data-testid=editor] .view-lines').click();
  await page.keyboard.press('Control+A');
  await page.evaluate(`(() => {
    const data = new DataTransfer();
    data.setData('text/plain', ${JSON.stringify(source)});
    document.activeElement.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  })()`);
  await poll(() => page.evaluate(`localStorage.getItem('soc-console.script')`)).toBe(source);
}

/** Run the editor's script with Ctrl+Enter and wait for its summary. */
export async function runScript(page: Page, summary: RegExp): Promise<void> {
  await page.locator('[data-testid=editor] .view-lines').click();
  await page.keyboard.press('Control+Enter');
  await poll(() => page.getByTestId('run-summary').textContent()).toMatch(summary);
}

/** Click something that downloads, and return the file's name and text. */
export async function download(page: Page, click: () => Promise<void>): Promise<{ name: string; text: string }> {
  const [d] = await Promise.all([page.waitForEvent('download'), click()]);
  const path = await d.path();
  return { name: d.suggestedFilename(), text: readFileSync(path, 'utf8') };
}
