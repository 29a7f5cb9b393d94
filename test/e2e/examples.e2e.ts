/**
 * Getting started: the loading indicator, the first-run panel, and the Examples menu, which opens a
 * script in the editor and offers the preset its `// soc:` header names. Screenshots go to
 * test-results/examples-*.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConsole, poll, runScript, setScript, SHOTS, type Rig } from './console-kit';

let rig: Rig;
beforeAll(async () => {
  rig = await openConsole();
});
afterAll(async () => {
  await rig?.close();
});

const shot = (name: string) => rig.page.screenshot({ path: `${SHOTS}/examples-${name}.png` });
const editorText = () => rig.page.evaluate(`localStorage.getItem('soc-console.script')`);

describe('getting started', () => {
  it('serves a loading indicator before the console mounts', async () => {
    const html = await (await fetch(rig.server.url)).text();
    expect(html).toMatch(/data-testid="boot-loading"[^>]*>Loading SoC Console…/);
  });

  it('a first visit shows the three-step panel', async () => {
    const { page } = rig;
    await page.goto(rig.server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    await poll(() => page.getByTestId('loading').count()).toBe(0);
    const steps = page.locator('[data-testid=first-run] li');
    expect(await steps.count()).toBe(3);
    expect(await steps.nth(1).textContent()).toContain('Examples');
    await shot('1-first-run');
  });

  it('the Examples menu groups P1–P9, the register-level bring-up scripts and the upstream-behaviour scripts', async () => {
    const groups = await rig.page.locator('[data-testid=examples-menu] optgroup').evaluateAll((gs) =>
      gs.map((g) => ({ label: g.getAttribute('label'), options: Array.from(g.querySelectorAll('option')).map((o) => (o as { textContent: string | null }).textContent?.trim()) })),
    );
    expect(groups.map((g) => g.label)).toEqual(['Problems P1–P9', 'Register-level bring-up', 'Upstream behaviour and hardware fidelity']);
    expect(groups[0]!.options).toContain('p1-rockchip-zap-order');
    expect(groups[0]!.options).toContain('p9-h6-domain-switch');
    expect(groups[1]!.options).toEqual(['h6-registers', 'rockchip-registers']);
    expect(groups[2]!.options).toContain('h6-upstream');
    expect(groups[2]!.options).toContain('v7s-split-upstream');
  });

  it('opens an example, offers its preset, runs it there, and restores the previous script', async () => {
    const { page, host } = rig;
    // A first visit has kept no script yet: the editor holds the starter script.
    expect(await editorText()).toBeNull();
    await page.getByTestId('examples-menu').selectOption('p1-rockchip-zap-order.ts');
    await poll(editorText).toMatch(/^\/\/ soc: rk3399\n\/\/ P1/);
    await poll(() => page.getByTestId('example-banner').textContent()).toMatch(/p1-rockchip-zap-order\.ts, written for rk3399 \(loaded: sun50i-h6\)/);
    await shot('2-opened');
    await page.getByTestId('example-load-soc').click();
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('rk3399');
    expect((await host.configText())?.file).toBe('resources/socs/rk3399.soc.json');
    expect(await page.getByTestId('example-load-soc').count()).toBe(0);
    await runScript(page, /passed/);
    expect(await page.getByTestId('run-summary').textContent()).toMatch(/ 0 failed/);
    await shot('3-ran');
    await page.getByTestId('example-restore').click();
    await poll(editorText).toMatch(/^\/\/ Driver test script/);
    expect(await page.getByTestId('example-banner').count()).toBe(0);
  });

  it('lists type errors as problems; Run warns about them (and runs: the engine strips types)', async () => {
    const { page } = rig;
    await setScript(page, "test('typo', async () => {\n  const n: number = 'not a number';\n  expect(typeof n).toBe('string');\n});\n");
    await poll(() => page.getByTestId('problem').count()).toBeGreaterThan(0);
    expect(await page.getByTestId('problem').first().textContent()).toMatch(/^2:\d+ .*not assignable to type 'number'/);
    await runScript(page, /1 passed/);
    expect(await page.getByTestId('run-type-warning').textContent()).toMatch(/Ran with 1 type error/);
    await page.getByTestId('problems').locator('summary').click();
    await shot('4-problems');
  });

  it('raised no page errors', () => {
    expect(rig.errors).toEqual([]);
  });
});
