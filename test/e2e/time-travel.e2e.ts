/**
 * Time travel end to end: a long run with a finding in the middle; selecting the finding opens the
 * SoC at its moment, every view reads that moment (checked against a fresh host re-executed to the
 * same event), the script line is marked, and stepping by event moves through the kept moments.
 * Prints the time-to-moment figures. Screenshots go to test-results/time-travel-*.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionHost } from '../../src/main/host/host';
import { openConsole, poll, runScript, setScript, SHOTS, type Rig } from './console-kit';

/** Thousands of DMA transfers, a double unmap (the finding) half way, then as many again. */
const ROUNDS = 1500;
const SCRIPT = `const ROUNDS = ${ROUNDS};
async function traffic(iova: number): Promise<void> {
  const ve = soc.device('ve');
  for (let i = 0; i < ROUNDS; i++) await ve.dma.write(iova + (i % 4) * 64, new Uint8Array(64).fill(i & 0xff));
}
test('a long run with a double unmap half way', async () => {
  const pa = await kernel.allocPages(2);
  const iova = await kernel.dma.mapSingle('ve', pa, 8192, 'bidirectional');
  await traffic(iova);
  await kernel.dma.unmapSingle('ve', iova, 8192, 'bidirectional');
  await kernel.dma.unmapSingle('ve', iova, 8192, 'bidirectional');
  const again = await kernel.dma.mapSingle('ve', pa, 8192, 'bidirectional');
  await traffic(again);
});
`;

let rig: Rig;
let fresh: SessionHost;
beforeAll(async () => {
  rig = await openConsole();
  fresh = await SessionHost.create();
});
afterAll(async () => {
  await fresh?.dispose();
  await rig?.close();
});

const shot = (name: string) => rig.page.screenshot({ path: `${SHOTS}/time-travel-${name}.png` });
const regValue = (name: string) => rig.page.locator(`[data-testid=register-row][data-register="${name}"] [data-testid=register-value]`).textContent();
const hex = (v: number | null): string => (v === null ? 'not read' : `0x${v.toString(16).padStart(8, '0')}`);

describe('time travel', () => {
  let runMs = 0;

  it('runs a long script that leaves a finding in the middle', async () => {
    const { page } = rig;
    await page.goto(rig.server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    await setScript(page, SCRIPT);
    await runScript(page, /failed/);
    runMs = Number(/· (\d+) ms/.exec((await page.getByTestId('run-summary').textContent()) ?? '')?.[1] ?? 0);
    expect(await page.getByTestId('findings-badge').textContent()).toMatch(/\d/);
    // The untaken finding fails the test at the line that raised it (the second unmap, line 11).
    expect(await page.getByTestId('error-location').first().textContent()).toMatch(/script\.ts:11:/);
  });

  it('selecting the finding opens its moment: every view shows the SoC then, as a fresh re-execution does', async () => {
    const { page, host } = rig;
    await page.getByTestId('tab-findings').click();
    const row = page.locator('[data-testid=finding-row][data-kind=double-unmap]');
    await row.click();
    await poll(() => page.getByTestId('moment-position').textContent()).toMatch(/event \d+/);
    const event = Number(/event (\d+)/.exec((await page.getByTestId('moment-position').textContent()) ?? '')![1]);
    const openMs = (await page.getByTestId('moment-ms').textContent())?.trim();
    // A finding opens right after the last trace event before it was raised: here the end of the
    // first unmap (line 10), the state the second one (line 11, marked by the finding) found.
    expect(await page.getByTestId('moment-site').textContent()).toMatch(/^script\.ts:1[01]:\d+$/);
    // The row stays in place, selected, with its whole message and a structured where.
    expect(await row.getAttribute('data-selected')).toBe('true');
    expect(await row.getByTestId('finding-message').textContent()).toMatch(/unmap/);
    expect(await row.getByTestId('finding-where').textContent()).toMatch(/script\.ts:11:\d+/);
    await shot('1-finding-moment');

    // A fresh host, re-executed to the same event, is the reference.
    const text = (await host.configText())!;
    expect((await fresh.loadConfig(text.text, text.file)).ok).toBe(true);
    const ref = await fresh.openMoment({ source: SCRIPT, fileName: 'script.ts', event });
    expect(ref).toMatchObject({ ok: true, event });
    expect(await host.simTime()).toBe(await fresh.simTime());
    expect(await host.readRegisters('iommu0')).toEqual(await fresh.readRegisters('iommu0'));
    expect(await host.inspectIommu('iommu0')).toEqual(await fresh.inspectIommu('iommu0'));
    expect(await host.domains()).toEqual(await fresh.domains());
    expect(await host.findings()).toEqual(await fresh.findings());
    expect(await host.traceEvents()).toEqual(await fresh.traceEvents());

    // And the views show what the host holds at the moment.
    await page.getByTestId('tab-registers').click();
    for (const r of (await fresh.readRegisters('iommu0')).filter((x) => ['ENABLE', 'TTB', 'BYPASS'].includes(x.name))) {
      await poll(async () => (await regValue(r.name))?.trim()).toBe(hex(r.value));
    }
    await poll(async () => (await page.getByTestId('status-time').textContent())?.replace(/\D/g, '')).toBe(String(await fresh.simTime()));
    await page.getByTestId('tab-pagetables').click();
    await page.getByTestId('pagetables-view').waitFor();
    await shot('2-page-tables-at-moment');
    console.log(`time travel: run ${runMs} ms, ${event} events to the finding; opening its moment took ${openMs} (under load)`);
  });

  it('steps by event: one on, one back, from the moments kept around it', async () => {
    const { page } = rig;
    const at = Number(/event (\d+)/.exec((await page.getByTestId('moment-position').textContent()) ?? '')![1]);
    await page.getByTestId('moment-next').click();
    await poll(() => page.getByTestId('moment-position').textContent()).toBe(`event ${at + 1}`);
    await poll(() => page.getByTestId('moment-ms').textContent()).toMatch(/kept/);
    const stepMs = Number(/(\d+) ms/.exec((await page.getByTestId('moment-ms').textContent()) ?? '')![1]);
    await page.getByTestId('moment-back').click();
    await poll(() => page.getByTestId('moment-position').textContent()).toBe(`event ${at}`);
    expect(await rig.host.traceEvents()).toHaveLength(at);
    console.log(`time travel: a step to a kept moment took ${stepMs} ms (under load)`);
    await shot('3-stepped');
  });

  it('opens a moment late in the run from the timeline’s event details', async () => {
    const { page } = rig;
    await page.getByTestId('moment-close').click();
    // Run again, so the timeline holds the whole run, then pick an event near its end.
    await runScript(page, /failed/);
    const total = (await rig.host.traceEvents()).length;
    await page.getByTestId('tab-timeline').click();
    const canvas = page.getByTestId('timeline-canvas');
    await canvas.waitFor();
    const box = (await canvas.boundingBox())!;
    // Click along the first track until an event is under the pointer.
    for (let x = box.width - 10; x > 130 && !(await page.getByTestId('timeline-details').count()); x -= 7) {
      await canvas.click({ position: { x, y: 22 + 11 } });
    }
    await page.getByTestId('timeline-details').waitFor();
    await shot('4-timeline-details');
    await page.getByTestId('timeline-open').click();
    await poll(() => page.getByTestId('moment-position').textContent()).toMatch(/event \d+/);
    const ms = (await page.getByTestId('moment-ms').textContent())?.trim();
    const pos = await page.getByTestId('moment-position').textContent();
    console.log(`time travel: opening a timeline event's moment (${pos} of ${total}) took ${ms} (under load)`);
  });

  it('raised no page errors', () => {
    expect(rig.errors).toEqual([]);
  });
});
