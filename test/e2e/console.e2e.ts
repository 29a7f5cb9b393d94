/**
 * The console, end to end in web mode: workspace, register inspector, memory, TLB, timeline,
 * findings, config and session files. Screenshots of every view go to test-results/console-*.png.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { download, openConsole, poll, runScript, setScript, SHOTS, type Rig } from './console-kit';

/** One run that leaves something for every view: bytes in memory, a stale TLB entry, a fault. */
const SCENARIO = `const IOMMU = 'iommu0';
const DT = 0x4000_0000;
const PT = 0x4000_4000;
const IOVA = 0x1000_0000;
const PAGE = 0x4800_0000;
const OTHER = 0x4900_0000;
const ascii = (s: string): number[] => Array.from(s).map((c) => c.charCodeAt(0));
const pte = (pa: number): number => (pa | (4 << 4) | 2) >>> 0;

async function store(pa: number, value: number): Promise<void> {
  await soc.writel(value, pa);
  await soc.mem.clean(pa, 4);
}

test('bytes in memory: one line left dirty, one cleaned', async () => {
  await soc.mem.write(0x4100_0000, ascii('Hello, dirty line!'));
  await soc.mem.write(0x4100_1000, ascii('Cleaned to RAM.'));
  await soc.mem.clean(0x4100_1000, 64);
});

test('a PTE changed in RAM without invalidation leaves the TLB stale', async () => {
  await store(DT + (IOVA >>> 20) * 4, PT | 1);
  await store(PT, pte(PAGE));
  await soc.setReg(IOMMU, 'TTB', DT);
  await soc.setReg(IOMMU, 'TLB_FLUSH', 0x0003_003f);
  await soc.setReg(IOMMU, 'ENABLE', 1);
  const de = soc.device('de');
  expect((await de.dma.write(IOVA, new Uint8Array(256).fill(0x5a))).ok).toBe(true);
  await store(PT, pte(OTHER));
  expect((await de.dma.read(IOVA, 64)).ok).toBe(true);
  // The bug is on purpose here: a stale-translation checker, where present, has reported it.
  soc.takeFindings();
});

test('DMA to an unmapped IOVA faults', async () => {
  const r = await soc.device('ve').dma.read(0x2000_0000, 64);
  expect(r.ok).toBe(false);
});
`;

let rig: Rig;
beforeAll(async () => {
  rig = await openConsole();
});
afterAll(async () => {
  await rig?.close();
});

const shot = (name: string) => rig.page.screenshot({ path: `${SHOTS}/console-${name}.png` });
const tab = (id: string) => rig.page.getByTestId(`tab-${id}`).click();

describe('the console (web mode)', () => {
  it('shows the workspace: device tree with power state, tabs and status bar', async () => {
    const { page } = rig;
    await page.goto(rig.server.url);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    await page.locator('[data-testid=tree-iommu][data-name=iommu0]').waitFor();
    expect(await page.locator('[data-testid=tree-device][data-name=ve]').textContent()).toContain('master 3');
    expect(await page.locator('[data-testid=tree-domain][data-name=pd_iommu]').getAttribute('data-on')).toBe('true');
    expect(await page.getByTestId('connection-status').textContent()).toContain('connected');
    await page.locator('[data-testid=register-row][data-register=TTB]').waitFor();
    await page.locator('[data-testid=editor] .view-lines').waitFor();
    await shot('1-workspace');
  });

  it('edits a register field (read-modify-write) and the simulated register changes', async () => {
    const { page, host } = rig;
    await tab('registers');
    await page.getByTestId('register-search').fill('bypass');
    const row = page.locator('[data-testid=register-row][data-register=BYPASS]');
    await row.click();
    const field = page.locator('[data-testid=field-row][data-field=MASTER2] [data-testid=field-edit]');
    await field.fill('1');
    await field.press('Enter');
    await poll(() => host.readRegister('iommu0', 'BYPASS')).toBe(1 << 2);
    await poll(() => row.getByTestId('register-value').textContent()).toBe('0x00000004');
    expect(await row.getAttribute('class')).toContain('changed');

    // A whole-register write to a register with self-clearing fields asks first.
    await page.getByTestId('register-search').fill('PTW_CACHE');
    const flush = page.locator('[data-testid=register-row][data-register=TLB_FLUSH]');
    await page.locator('[data-testid=field-row][data-field=PTW_CACHE]').waitFor();
    await flush.getByTestId('register-value').dblclick();
    await page.getByTestId('register-edit').fill('0x20000');
    await page.getByTestId('register-edit').press('Enter');
    expect(await page.getByTestId('write-confirm').textContent()).toMatch(/starts PTW_CACHE \(SC\)/);
    await shot('2-registers');
    await page.getByTestId('write-confirm-yes').click();
    await poll(() => page.getByTestId('register-message').textContent()).toContain('wrote 0x00020000 to TLB_FLUSH');
    await page.getByTestId('register-search').fill('');
  });

  it('exports a register dump and diffs it against later values', async () => {
    const { page, host } = rig;
    const dump = await download(page, () => page.getByTestId('dump-button').click());
    expect(dump.name).toMatch(/^iommu0-\d+\.regdump\.json$/);
    const parsed = JSON.parse(dump.text) as { block: string; time: number; values: { name: string; value: number | null }[] };
    expect(parsed.block).toBe('iommu0');
    expect(parsed.values.find((v) => v.name === 'BYPASS')?.value).toBe(4);

    // A register nothing else programs (stored, no effect), changed behind the console's back.
    await host.writeRegister('iommu0', 'WBUF_CTRL', 0x1234);
    await page.keyboard.press('F5');
    await poll(() => page.locator('[data-testid=register-row][data-register=WBUF_CTRL] [data-testid=register-value]').textContent()).toBe('0x00001234');
    await page.getByTestId('diff-button').click();
    const file = join(tmpdir(), `console-e2e-${process.pid}.regdump.json`);
    writeFileSync(file, dump.text);
    await page.getByTestId('diff-file').setInputFiles(file);
    const diff = page.locator('[data-testid=diff-row][data-register=WBUF_CTRL]');
    await diff.waitFor();
    expect(await diff.textContent()).toMatch(/VALUE 0→4660/);
    await shot('3-register-diff');
    await page.getByTestId('diff-button').click();
  });

  it('runs the scenario and shows memory: bytes at their address, untouched frames, dirty lines', async () => {
    const { page } = rig;
    await setScript(page, SCENARIO);
    await runScript(page, /2 passed, 1 failed/);
    await tab('memory');
    await page.getByTestId('memory-mode-both').click();
    await page.getByTestId('memory-goto').fill('0x41000000');
    await page.getByTestId('memory-goto').press('Enter');
    const row = page.locator('[data-testid=memory-row][data-addr="1090519040"]');
    await poll(() => row.getByTestId('memory-cpu').textContent()).toMatch(/^48 ?65 ?6c ?6c ?6f/);
    // Written by the CPU, not cleaned: the line is dirty and RAM was never written.
    expect(await row.locator('[data-testid=memory-cpu] .b').first().getAttribute('class')).toContain('dirty');
    expect(await row.getByTestId('memory-ram').textContent()).toMatch(/^--/);
    await shot('4-memory');
    await page.getByTestId('memory-mode-cpu').click();
    await poll(() => row.getByTestId('memory-ascii').textContent()).toContain('Hello, d');
    await page.getByTestId('memory-mode-both').click();
    const cleaned = page.locator('[data-testid=memory-row][data-addr="1090523136"]');
    await page.getByTestId('memory-goto').fill('0x41001000');
    await page.getByTestId('memory-goto').press('Enter');
    await poll(() => cleaned.getByTestId('memory-ram').textContent()).toMatch(/^43 ?6c ?65/);
    expect(await cleaned.locator('[data-testid=memory-cpu] .b').first().getAttribute('class')).not.toContain('dirty');
  });

  it('scrolls the whole 4 GiB space by wheel and scrollbar', async () => {
    const { page } = rig;
    await page.getByTestId('memory-goto').fill('0xfffffff0');
    await page.getByTestId('memory-goto').press('Enter');
    await page.locator('[data-testid=memory-row][data-addr="4294967280"]').waitFor();
    const first = async (): Promise<number> => Number(await page.getByTestId('memory-row').first().getAttribute('data-addr'));
    await page.getByTestId('memory-goto').fill('0x40000000');
    await page.getByTestId('memory-goto').press('Enter');
    const before = await first();
    await page.getByTestId('memory-viewport').hover();
    await page.mouse.wheel(0, 180);
    await poll(first).toBe(before + 10 * 16);
    await page.evaluate(`document.querySelector('[data-testid=memory-scroller]').scrollTop = 0`);
    await poll(first).toBe(0);
  });

  it('shows the stale TLB entry on the H6', async () => {
    const { page } = rig;
    await tab('tlb');
    const stale = page.locator('[data-testid=tlb-entry][data-iova="268435456"][data-stale=true]');
    await stale.first().waitFor();
    expect(await stale.first().textContent()).toContain('0x49000000');
    expect(await page.getByTestId('stale-count').textContent()).toMatch(/[1-9]\d* stale/);
    expect(await page.getByTestId('tlb-stats').textContent()).toMatch(/walks \d+/);
    await shot('5-tlb');
  });

  it('shows DMA and fault events on the timeline and exports a Perfetto trace', async () => {
    const { page } = rig;
    await tab('timeline');
    await page.getByTestId('timeline-cat-dma').waitFor();
    await page.getByTestId('timeline-cat-fault').waitFor();
    await shot('6-timeline');
    const canvas = page.getByTestId('timeline-canvas');
    await canvas.hover();
    await page.mouse.wheel(0, -300);
    await page.mouse.down();
    await page.mouse.move(700, 400);
    await page.mouse.up();
    await poll(() => page.getByTestId('timeline-count').textContent()).toMatch(/\d+ events/);
    const trace = await download(page, () => page.getByTestId('perfetto-export').click());
    const json = JSON.parse(trace.text) as { traceEvents: { ph: string; cat: string; ts: number }[] };
    expect(json.traceEvents.some((e) => e.ph === 'X' && e.cat === 'dma')).toBe(true);
    expect(json.traceEvents.some((e) => e.ph === 'i' && e.cat === 'fault')).toBe(true);
  });

  it('lists findings; selecting one opens its moment in place, its Timeline button the timeline at it', async () => {
    const { page } = rig;
    await tab('findings');
    const fault = page.locator('[data-testid=finding-row][data-kind=fault]').first();
    await fault.waitFor();
    await shot('7-findings');
    await fault.click();
    await poll(() => page.getByTestId('moment-position').textContent()).toMatch(/event \d+/);
    expect(await fault.getAttribute('data-selected')).toBe('true');
    await fault.getByTestId('finding-timeline').click();
    await page.getByTestId('timeline-view').waitFor();
    expect(await page.getByTestId('timeline-view').getAttribute('data-marker')).toMatch(/^\d+$/);
  });

  it('edits a config in the form, saves it, loads it back, and applies it', async () => {
    const { page } = rig;
    await tab('config');
    await page.locator('[data-testid=config-editor] .view-lines').waitFor();
    await poll(() => page.getByTestId('form-name').inputValue()).toBe('sun50i-h6');
    await page.getByTestId('form-name').fill('h6-edited');
    await page.getByTestId('form-name').press('Tab');
    await poll(() => page.locator('[data-testid=config-editor] .view-lines').textContent()).toContain('h6-edited');
    await shot('8-config');
    const saved = await download(page, () => page.getByTestId('config-save').click());
    expect(saved.name).toBe('sun50i-h6.soc.json');
    expect((JSON.parse(saved.text) as { name: string }).name).toBe('h6-edited');
    await page.getByTestId('config-apply').click();
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('h6-edited');

    const file = join(tmpdir(), `console-e2e-${process.pid}.soc.json`);
    writeFileSync(file, saved.text.replace('h6-edited', 'h6-roundtrip'));
    await page.getByTestId('config-open').setInputFiles(file);
    await poll(() => page.getByTestId('form-name').inputValue()).toBe('h6-roundtrip');
    await page.getByTestId('config-apply').click();
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('h6-roundtrip');
    expect(await page.getByTestId('config-recent').textContent()).toContain(`console-e2e-${process.pid}.soc.json`);
  });

  it('saves the session with Ctrl+S and loads it back', async () => {
    const { page } = rig;
    await tab('registers');
    const saved = await download(page, () => page.keyboard.press('Control+S'));
    expect(saved.name).toMatch(/\.socsession\.json$/);
    const s = JSON.parse(saved.text) as { config: { text: string }; scripts: { source: string }[]; layout: { tab: string } };
    expect(s.config.text).toContain('h6-roundtrip');
    expect(s.scripts[0]!.source).toBe(SCENARIO);

    await setScript(page, '// something else\n');
    await page.getByTestId('preset-select').selectOption('sun50i-h6');
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('sun50i-h6');
    const file = join(tmpdir(), `console-e2e-${process.pid}.socsession.json`);
    writeFileSync(file, saved.text);
    await page.getByTestId('session-open').setInputFiles(file);
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('h6-roundtrip');
    await poll(() => page.evaluate(`localStorage.getItem('soc-console.script')`)).toBe(SCENARIO);
  });

  it('keeps pane sizes across a reload', async () => {
    const { page } = rig;
    const handle = page.getByTestId('splitter-left');
    const box = (await handle.boundingBox())!;
    await page.mouse.move(box.x + 2, box.y + 200);
    await page.mouse.down();
    await page.mouse.move(box.x + 62, box.y + 200, { steps: 4 });
    await page.mouse.up();
    const left = (await page.evaluate(`JSON.parse(localStorage.getItem('soc-console.layout')).left`)) as number;
    expect(left).toBeGreaterThan(270);
    await page.reload();
    await page.getByTestId('device-tree').waitFor();
    const width = (await page.getByTestId('device-tree').boundingBox())!.width;
    expect(Math.abs(width - left)).toBeLessThan(2);
  });

  it('keeps the unsaved script when Esc stops a run (the worker restarts)', async () => {
    const { page, host } = rig;
    const spin = `test('spins', async () => {\n  for (;;) await soc.run(1000);\n}, { timeoutMs: 60000 });\n`;
    await setScript(page, spin);
    await page.locator('[data-testid=editor] .view-lines').click();
    await page.keyboard.press('Control+Enter');
    await poll(() => page.getByTestId('status-run').textContent()).toContain('running');
    const restarts = host.restartCount;
    await page.keyboard.press('Escape');
    await poll(() => page.getByTestId('run-error').textContent()).toContain('stopped by the user');
    expect(host.restartCount).toBe(restarts + 1);
    // The new worker got the last config back; the views follow it.
    await poll(() => page.getByTestId('soc-name').textContent()).toBe('h6-roundtrip');
    await page.reload();
    await page.locator('[data-testid=editor] .view-lines').waitFor();
    const text = async (): Promise<string> => ((await page.locator('[data-testid=editor] .view-lines').textContent()) ?? '').replace(/\u00a0/g, ' ');
    await poll(text).toContain('for (;;) await soc.run(1000);');
    expect(rig.errors).toEqual([]);
  });
});
