import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config/validate';
import { SparseRam } from './mem/ram';
import { Soc } from './soc';

function soc(preset: string): Soc {
  const file = new URL(`../../resources/socs/${preset}.soc.json`, import.meta.url);
  const r = parseConfig(readFileSync(file, 'utf8'), preset);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return new Soc(r.config);
}

/** Everything observable after a workload: trace, findings, time, IOMMU caches, kernel state, RAM. */
async function workload(s: Soc): Promise<unknown> {
  const k = s.kernel.api;
  const dev = s.device('vopb');
  await k.pm.getSync('vopb');
  const d = await k.domainAlloc('vopb_mmu');
  expect(await k.attachDevice(d, 'vopb')).toBe(0);
  const pa = await k.allocPages(4);
  const maps = [];
  for (let i = 0; i < 4; i++) maps.push(await k.map(d, 0x2000_0000 + i * 0x1000, pa + i * 0x1000, 0x1000, 3));
  const reads = [dev.read(0x2000_0000, 8).ok, dev.read(0x3000_0000, 4).ok];
  const unmapped = await k.unmap(d, 0x2000_1000, 0x1000);
  await k.detachDevice(d, 'vopb');
  await k.domainFree(d);
  await k.pm.put('vopb');
  s.run(5000);
  return {
    maps,
    reads,
    unmapped,
    now: s.clock.now(),
    trace: s.trace.events().slice(-200),
    findings: s.findings.list(),
    tlb: s.iommu('vopb_mmu').tlb(),
    walk: s.iommu('vopb_mmu').walkCache(),
    stats: s.iommu('vopb_mmu').stats(),
    pm: [s.kernel.pm.status('vopb'), s.kernel.pm.status('vopb_mmu')],
    domains: s.kernel.core.domainsOf('vopb_mmu').map((x) => [x.id, x.freed]),
    pages: s.kernel.pages.snapshot(),
    ram: s.ram.touchedAddresses().map((a) => [a, [...s.ram.read(a, 4096)].reduce((h, b) => (h * 31 + b) >>> 0, 7)]),
  };
}

describe('engine checkpoint', () => {
  it('a run after restore behaves exactly as the first run, every time', async () => {
    const s = soc('rk3399');
    void s.kernel;
    s.run(100);
    const cp = s.checkpoint();
    const first = await workload(s);
    for (let i = 0; i < 3; i++) {
      cp.restore();
      expect(await workload(s)).toEqual(first);
    }
  });

  it('restore brings back the state at the checkpoint', async () => {
    const s = soc('rk3399');
    const before = () => ({ now: s.clock.now(), ram: s.ram.touchedAddresses(), pages: s.kernel.pages.snapshot(), trace: s.trace.events().length, pm: s.kernel.pm.snapshot() });
    void s.kernel;
    const cp = s.checkpoint();
    const b = before();
    await workload(s);
    cp.restore();
    expect(before()).toEqual(b);
  });
});

describe('checkpoint before the kernel booted', () => {
  it('restore drops a kernel the run booted: the blocks are at reset again and the next use boots afresh', async () => {
    const s = soc('sun50i-h6');
    const cp = s.checkpoint();
    const regs = () => ['ENABLE', 'TTB', 'INT_ENABLE'].map((r) => s.readReg('iommu0', r));
    expect(regs()).toEqual([0, 0, 0]);
    const k = s.kernel;
    expect(regs()).not.toEqual([0, 0, 0]);
    cp.restore();
    expect(s.bootedKernel).toBeNull();
    expect(regs()).toEqual([0, 0, 0]);
    expect(s.kernel).not.toBe(k);
  });
});

describe('copy-on-write RAM checkpoints', () => {
  it('saves a frame on its first write only and drops frames created after the checkpoint', () => {
    const ram = new SparseRam(0, 1 << 24);
    ram.write32(0x1000, 1);
    const cp = ram.checkpoint();
    ram.write32(0x1000, 2);
    ram.write32(0x1004, 3);
    ram.write32(0x5000, 4);
    expect(cp.saved.size).toBe(2);
    ram.rollback(cp);
    expect([ram.read32(0x1000), ram.read32(0x1004), ram.isTouched(0x5000)]).toEqual([1, 0, false]);
    ram.writeFrom(0x1ffe, new Uint8Array([9, 9, 9, 9]));
    ram.rollback(cp);
    expect([ram.read8(0x1fff), ram.read8(0x2000), ram.touchedFrames()]).toEqual([0, 0, 1]);
    expect(() => ram.rollback({ epoch: 0, saved: new Map() })).toThrow(/not the latest/);
  });
});
