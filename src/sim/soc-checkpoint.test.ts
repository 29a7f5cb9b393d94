import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config/validate';
import { CpuCache } from './mem/cpu-cache';
import { SparseRam } from './mem/ram';
import { PageAllocator } from './kernel/page-alloc';
import { UndoMap } from './core/undo-map';
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

describe('copy-on-write CPU cache checkpoints', () => {
  it('rolls back stores, fills, cleans and invalidates, saving only the pages they touched', () => {
    const ram = new SparseRam(0, 1 << 24);
    const cache = new CpuCache(ram);
    ram.write32(0x1000, 0x11);
    cache.write32(0x2000, 0x22);
    const cp = cache.checkpoint();
    const view = () => ({ lines: cache.size(), dirty: cache.dirtyLines(), at1000: cache.peek(0x1000, 4), at2000: cache.peek(0x2000, 4), ram2000: ram.read32(0x2000) });
    const before = view();
    cache.read32(0x1000);
    cache.write(0x4000, new Uint8Array(0x2000).fill(7));
    cache.clean(0x2000, 64);
    cache.invalidate(0x2000, 64);
    expect(cp.saved.size).toBe(4);
    expect(cache.size()).toBe(1 + 128);
    cache.rollback(cp);
    const after = view();
    // RAM is rolled back by its own checkpoint; the cache only puts its lines back.
    expect({ ...after, ram2000: 0 }).toEqual({ ...before, ram2000: 0 });
    expect(cache.isDirty(0x2000)).toBe(true);
    expect(cache.isDirty(0x4000)).toBe(false);
    cache.write32(0x2000, 0x33);
    cache.rollback(cp);
    expect(cache.read32(0x2000)).toBe(0x22);
    expect(() => cache.rollback({ saved: new Map(), lines: 0, dirty: 0 })).toThrow(/not the latest/);
  });

  it('a whole-page store makes every line of the page dirty, as line by line', () => {
    const ram = new SparseRam(0, 1 << 24);
    const a = new CpuCache(ram);
    const b = new CpuCache(ram);
    const bytes = new Uint8Array(0x1800).map((_, i) => i & 0xff);
    a.write(0x3000, bytes);
    for (let i = 0; i < bytes.length; i += 16) b.write(0x3000 + i, bytes.subarray(i, i + 16));
    expect(a.snapshot()).toEqual(b.snapshot());
    expect(a.size()).toBe(0x1800 / 64);
  });
});

describe('page allocator checkpoints', () => {
  it('rolls back allocations, frees and slab objects to the same state', () => {
    const pages = new PageAllocator([{ base: 0x8000_0000, size: 16 << 20 }]);
    const held = Array.from({ length: 2 }, () => pages.allocPages(8, { kind: 'script' })!);
    const slab = pages.createCache('tables', 1024);
    const obj = slab.alloc({ kind: 'script' })!;
    const cp = pages.checkpoint();
    const before = pages.snapshot();
    pages.freePages(held[1]!);
    slab.free(obj);
    const late = pages.createCache('late', 512);
    late.alloc({ kind: 'script' });
    for (let i = 0; i < 70; i++) pages.freePages(pages.allocPages(0, { kind: 'script' })!);
    // A cache created after the checkpoint stays, empty.
    const expected = { ...before, caches: [...before.caches, ['late', { objects: [], freelist: [] }]] };
    pages.rollback(cp);
    expect(pages.snapshot()).toEqual(expected);
    expect(pages.allocPages(0, { kind: 'script' })).toBe(pages.allocPages(0, { kind: 'script' })! - 0x1000);
    pages.rollback(cp);
    expect(pages.snapshot()).toEqual(expected);
    expect(late.alloc({ kind: 'script' })).not.toBeNull();
  });
});

describe('UndoMap', () => {
  it('rolls back sets and deletes to the checkpoint, as often as asked', () => {
    const m = new UndoMap<number, string>([[1, 'a'], [2, 'b']]);
    m.checkpoint();
    m.set(1, 'x').set(3, 'c');
    m.delete(2);
    m.delete(2);
    m.rollback();
    expect([...m].sort()).toEqual([[1, 'a'], [2, 'b']]);
    m.delete(1);
    m.rollback();
    expect(m.get(1)).toBe('a');
    expect(m.size).toBe(2);
  });
});
