import { describe, expect, it } from 'vitest';
import { runOp } from '../core/coop';
import { DMA_MAPPING_ERROR } from './dma-iommu';
import { PAGE_SIZE } from './page-alloc';
import { FAKE_APERTURE, RAM_BASE, fakeConfig, makeRig } from './testing/fake-iommu';

function setup(devices?: Parameters<typeof fakeConfig>[0]) {
  let line = 0;
  const rig = makeRig({ config: fakeConfig(devices), kernel: { callSite: () => `test.ts:${line}` } });
  const at = (n: number) => {
    line = n;
  };
  const { dma, core } = rig.kernel;
  const dom = core.dmaDomain('vpu')!;
  const phys = (iova: number) => runOp(core.iovaToPhys(dom, iova));
  return { ...rig, dma, core, dom, phys, at };
}

const BUF = RAM_BASE + 0x800000;

describe('dma-iommu', () => {
  it('map_single: IOVA top-down below the aperture, offset kept, translation in the default domain', () => {
    const { dma, phys } = setup();
    const iova = runOp(dma.mapSingle('vpu', BUF + 0x123, 0x1000, 'to-device'));
    expect(iova).toBe(FAKE_APERTURE - 0x2000 + 0x123);
    expect(phys(iova)).toBe(BUF + 0x123);
    expect(phys(iova + 0x1000)).toBe(BUF + 0x1123);
    runOp(dma.unmapSingle('vpu', iova, 0x1000, 'to-device'));
    expect(phys(iova)).toBe(0);
    // The IOVA comes back from the rcache.
    expect(runOp(dma.mapSingle('vpu', BUF + 0x123, 0x1000, 'to-device'))).toBe(iova);
  });

  it('non-coherent devices: clean at map, invalidate at unmap from the device', () => {
    const { dma, cache, ram } = setup();
    cache.write32(BUF, 0xcafe);
    expect(ram.read32(BUF)).toBe(0);
    const iova = runOp(dma.mapSingle('vpu', BUF, 64, 'to-device'));
    expect(ram.read32(BUF)).toBe(0xcafe);
    runOp(dma.unmapSingle('vpu', iova, 64, 'to-device'));
    const rx = runOp(dma.mapSingle('vpu', BUF, 64, 'from-device'));
    ram.write32(BUF, 0xbeef);
    expect(cache.read32(BUF)).toBe(0xcafe);
    runOp(dma.unmapSingle('vpu', rx, 64, 'from-device'));
    expect(cache.read32(BUF)).toBe(0xbeef);
  });

  it('coherent devices: no cache maintenance, IOMMU_CACHE in the mapping', () => {
    const { dma, cache, ram } = setup([{ name: 'vpu', coherent: true }]);
    cache.write32(BUF, 0x1);
    runOp(dma.mapSingle('vpu', BUF, 64, 'bidirectional'));
    expect(ram.read32(BUF)).toBe(0);
  });

  it('devices without an IOMMU use dma-direct', () => {
    const { dma } = setup([{ name: 'vpu' }, { name: 'uart', iommu: null }]);
    expect(dma.path('uart')).toBe('direct');
    expect(runOp(dma.mapSingle('uart', BUF + 8, 16, 'to-device'))).toBe(BUF + 8);
  });

  it('P5: a double unmap warns naming both unmaps, the IOVA and the sizes, and the run goes on', () => {
    const { dma, findings, at } = setup();
    at(10);
    const iova = runOp(dma.mapSingle('vpu', BUF, 0x1000, 'to-device'));
    at(11);
    runOp(dma.unmapSingle('vpu', iova, 0x1000, 'to-device'));
    at(12);
    runOp(dma.unmapSingle('vpu', iova, 0x1000, 'to-device'));
    const f = findings.take();
    expect(f.map((x) => x.kind)).toEqual(['double-unmap']);
    expect(f[0]!.message).toContain('test.ts:11');
    expect(f[0]!.message).toContain('test.ts:12');
    expect(f[0]!.message).toContain('test.ts:10');
    expect(f[0]!.message).toContain(iova.toString(16));
    expect(f[0]!.message).toContain('0x1000');
    expect(f[0]!.where).toMatchObject({ device: 'vpu', iova: `0x${iova.toString(16)}` });
    expect(runOp(dma.mapSingle('vpu', BUF, 0x1000, 'to-device'))).toBe(iova);
  });

  it('P5: an unmap whose size differs from the mapping warns naming the map and the unmap', () => {
    const { dma, findings, at, phys } = setup();
    at(20);
    const iova = runOp(dma.mapSingle('vpu', BUF, 0x3000, 'to-device'));
    at(21);
    runOp(dma.unmapSingle('vpu', iova, 0x1000, 'to-device'));
    const f = findings.take();
    expect(f.map((x) => x.kind)).toEqual(['unmap-mismatch']);
    expect(f[0]!.message).toMatch(/size 0x1000 differs from the mapped size 0x3000 \(the IOVA allocator handed out 0x4000\)/);
    expect(f[0]!.message).toContain('test.ts:20');
    expect(f[0]!.message).toContain('test.ts:21');
    // As in the kernel: only the pages asked for were unmapped; the rest is still there.
    expect(phys(iova)).toBe(0);
    expect(phys(iova + 0x1000)).toBe(BUF + 0x1000);
  });

  it('P5: unmap of something never mapped, and of the middle of a mapping', () => {
    const { dma, findings } = setup();
    runOp(dma.unmapSingle('vpu', 0x5000, 0x1000, 'to-device'));
    const iova = runOp(dma.mapSingle('vpu', BUF, 0x4000, 'to-device'));
    runOp(dma.unmapSingle('vpu', iova + 0x1000, 0x1000, 'to-device'));
    const f = findings.take();
    expect(f.map((x) => x.kind)).toEqual(['double-unmap', 'unmap-mismatch']);
    expect(f[0]!.message).toContain('never mapped');
    expect(f[1]!.message).toContain('inside the mapping');
  });

  it('P5: a double unmap_sg frees the IOVA twice into the rcache; the alias shows up later', () => {
    const { dma, findings } = setup();
    const segs = runOp(dma.mapSg('vpu', [{ pa: BUF, len: 0x1000 }], 'to-device'));
    if (typeof segs === 'number') throw new Error('map_sg failed');
    runOp(dma.unmapSg('vpu', segs, 'to-device'));
    runOp(dma.unmapSg('vpu', segs, 'to-device'));
    expect(findings.take().map((x) => x.kind)).toEqual(['double-unmap']);
    const a = runOp(dma.mapSingle('vpu', BUF, 0x1000, 'to-device'));
    const b = runOp(dma.mapSingle('vpu', BUF + 0x1000, 0x1000, 'to-device'));
    expect(a).toBe(segs[0]!.iova);
    // The same pfn came out of the magazine twice: the second map collides.
    expect(b).toBe(DMA_MAPPING_ERROR);
  });

  it('map_sg: one IOVA range; segments merge unless they start mid-granule or overflow max_seg_size', () => {
    const { dma, phys } = setup();
    const segs = runOp(
      dma.mapSg(
        'vpu',
        [
          { pa: BUF, len: 0x1000 },
          { pa: BUF + 0x10000, len: 0x1000 },
          { pa: BUF + 0x20100, len: 0x200 },
          { pa: BUF + 0x30000, len: 0x1000 },
        ],
        'bidirectional',
      ),
    );
    if (typeof segs === 'number') throw new Error('map_sg failed');
    const base = segs[0]!.iova;
    expect(segs).toEqual([
      { iova: base, len: 0x2000 },
      { iova: base + 0x2100, len: 0x200 },
      { iova: base + 0x3000, len: 0x1000 },
    ]);
    expect(phys(base + 0x1000)).toBe(BUF + 0x10000);
    expect(phys(base + 0x2100)).toBe(BUF + 0x20100);
    expect(phys(base + 0x3000)).toBe(BUF + 0x30000);
    runOp(dma.unmapSg('vpu', segs, 'bidirectional'));
    expect(phys(base)).toBe(0);
  });

  it('map_sg splits at max_seg_size', () => {
    const { dma } = setup();
    const many = Array.from({ length: 20 }, (_, i) => ({ pa: BUF + i * 0x2000, len: 0x1000 }));
    const segs = runOp(dma.mapSg('vpu', many, 'to-device'));
    if (typeof segs === 'number') throw new Error('map_sg failed');
    expect(segs.map((s) => s.len)).toEqual([0x10000, 0x4000]);
  });

  it('alloc_coherent with a page array: zeroed pages, one IOVA range, freed again', () => {
    const { dma, kernel, ram, phys } = setup();
    // Leave stale data where the pages will come from.
    const stale = kernel.pages.allocPages(0, { kind: 'script' })!;
    ram.write32(stale, 0xdead);
    kernel.pages.freePages(stale);
    const buf = runOp(dma.allocCoherent('vpu', 3 * PAGE_SIZE));
    if (!buf) throw new Error('alloc failed');
    expect(buf.pages).toHaveLength(3);
    expect(buf.pages).toContain(stale);
    expect(ram.read32(stale)).toBe(0);
    for (let i = 0; i < 3; i++) expect(phys(buf.iova + i * PAGE_SIZE)).toBe(buf.pages[i]);
    expect(kernel.pages.ownerOf(buf.pa)).toEqual({ kind: 'dma-buffer', dev: 'vpu' });
    runOp(dma.freeCoherent('vpu', 3 * PAGE_SIZE, buf.iova));
    expect(phys(buf.iova)).toBe(0);
    expect(kernel.pages.list((o) => o.kind === 'dma-buffer')).toHaveLength(0);
  });

  it('alloc_coherent uses 64 KiB blocks where the domain supports them, or one contiguous block', () => {
    const { dma, kernel } = setup();
    const big = runOp(dma.allocCoherent('vpu', 17 * PAGE_SIZE))!;
    expect(big.pages[15]! - big.pages[0]!).toBe(15 * PAGE_SIZE);
    expect(big.pages[0]! % 0x10000).toBe(0);
    const c = runOp(dma.allocCoherent('vpu', 5 * PAGE_SIZE, { backing: 'contiguous' }))!;
    expect(c.pages[4]! - c.pa).toBe(4 * PAGE_SIZE);
    runOp(dma.freeCoherent('vpu', 17 * PAGE_SIZE, big.iova));
    runOp(dma.freeCoherent('vpu', 5 * PAGE_SIZE, c.iova));
    expect(kernel.pages.list((o) => o.kind === 'dma-buffer')).toHaveLength(0);
    expect(dma.mappings()).toHaveLength(0);
  });
});
