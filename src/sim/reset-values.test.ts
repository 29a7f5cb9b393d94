/**
 * Every block starts at reset: a script that touches only `soc` reads every IOMMU register of every
 * preset at the reset value its register declaration gives, because the kernel layer boots only at
 * the first use of `kernel` (or with kernel mode 'eager').
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { KernelMode } from '../shared/session-api';
import { Session } from './session';

const PRESETS = ['sun50i-h6', 'rk3399', 'mt8183', 'arm64-smmu'];

function load(preset: string): Session {
  const s = new Session({ emit: () => undefined, heartbeat: () => undefined });
  const file = `resources/socs/${preset}.soc.json`;
  const r = s.loadConfig(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return s;
}

/** A register-only script reading every register of every IOMMU window, checked against the declared resets. */
function resetScript(s: Session): string {
  const expected = s
    .listBlocks()
    .filter((b) => b.kind === 'iommu')
    .flatMap((b) => s.describeBlock(b.name).registers.filter((r) => r.access !== 'wo').map((r) => ({ block: b.name, reg: r.name, reset: r.reset })));
  return [
    `const expected = ${JSON.stringify(expected)};`,
    "test('every IOMMU register at reset', async () => {",
    '  const wrong = [];',
    '  for (const e of expected) {',
    '    const v = await soc.reg(e.block, e.reg);',
    '    if (v !== e.reset) wrong.push(`${e.block}.${e.reg} = 0x${v.toString(16)}, reset 0x${e.reset.toString(16)}`);',
    '  }',
    '  expect(wrong).toEqual([]);',
    '  expect(expected.length).toBeGreaterThan(10);',
    '});',
  ].join('\n');
}

async function run(preset: string, kernel?: KernelMode): Promise<{ ok: boolean; error: string }> {
  const s = load(preset);
  const r = await s.runScript({ source: resetScript(s), fileName: `reset-${preset}.ts`, ...(kernel ? { kernel } : {}) }, 1);
  return { ok: r.ok, error: r.error?.message ?? r.tests.map((t) => t.error?.message ?? '').join('\n') };
}

describe('blocks at reset until something programs them', () => {
  for (const preset of PRESETS) {
    it(`${preset}: a register-only script reads every IOMMU register at its reset value`, async () => {
      const r = await run(preset);
      expect(r.error).toBe('');
      expect(r.ok).toBe(true);
    });
  }

  it("kernel mode 'eager' probes the drivers before the script (the H6 is enabled), 'none' refuses `kernel`", async () => {
    const eager = await run('sun50i-h6', 'eager');
    expect(eager.ok).toBe(false);
    expect(eager.error).toMatch(/iommu0\.\w+ = 0x/);
    const s = load('sun50i-h6');
    const r = await s.runScript({ source: "test('k', async () => { await kernel.allocPages(1); });", fileName: 'none.ts', kernel: 'none' }, 1);
    expect(r.tests[0]?.error?.message).toMatch(/kernel layer is off/);
  });

  it('kernel.boot() probes at once; the first kernel call does otherwise', async () => {
    const s = load('sun50i-h6');
    const source = [
      "test('boot', async () => {",
      "  expect(await soc.reg('iommu0', 'INT_ENABLE')).toBe(0);",
      '  await kernel.boot();',
      "  expect(await soc.reg('iommu0', 'INT_ENABLE')).not.toBe(0);",
      '});',
    ].join('\n');
    const r = await s.runScript({ source, fileName: 'boot.ts' }, 1);
    expect(r.tests[0]?.error?.message).toBeUndefined();
  });
});
