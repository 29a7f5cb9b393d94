import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runOp, type Op } from '../core/coop';
import { EBUSY, EEXIST, EINVAL, ERANGE } from './errno';
import { IOMMU_READ, IOMMU_WRITE, type IommuDomain } from './iommu-core';
import { FAKE_APERTURE, RAM_BASE, makeRig } from './testing/fake-iommu';

const RW = IOMMU_READ | IOMMU_WRITE;

function setup() {
  const rig = makeRig();
  const core = rig.kernel.core;
  const dom = (type: 'unmanaged' | 'dma' | 'identity' = 'unmanaged'): IommuDomain => {
    const d = runOp(core.domainAlloc('iommu0', type));
    if (typeof d === 'number') throw new Error(`alloc ${d}`);
    return d;
  };
  const run = <T>(op: Op<T>): T => runOp(op);
  return { ...rig, core, dom, run };
}

describe('IOMMU core', () => {
  it('boot: one group for all masters behind the instance, on its default DMA domain', () => {
    const { core } = setup();
    const g = core.groupOf('vpu')!;
    expect(core.groupOf('de')).toBe(g);
    expect(g.devices).toEqual(['vpu', 'de']);
    expect(g.defaultDomain?.type).toBe('dma');
    expect(g.domain).toBe(g.defaultDomain);
    expect(core.dmaDomain('vpu')).toBe(g.defaultDomain);
  });

  it('map, iova_to_phys, unmap; unmap returns bytes and stops at a hole', () => {
    const { core, dom, run } = setup();
    const d = dom();
    expect(run(core.map(d, 0x10000, RAM_BASE + 0x200000, 0x3000, RW))).toBe(0);
    expect(run(core.iovaToPhys(d, 0x11234))).toBe(RAM_BASE + 0x201234);
    expect(run(core.iovaToPhys(d, 0x13000))).toBe(0);
    expect(run(core.map(d, 0x14000, RAM_BASE, 0x1000, RW))).toBe(0);
    expect(run(core.unmap(d, 0x10000, 0x5000))).toBe(0x3000);
    expect(run(core.iovaToPhys(d, 0x10000))).toBe(0);
    expect(run(core.iovaToPhys(d, 0x14000))).toBe(RAM_BASE);
    expect(run(core.unmap(d, 0x10000, 0x1000))).toBe(0);
  });

  it('error codes: -EEXIST leaves the old mapping and unmaps the partial new one; -EINVAL; -ERANGE', () => {
    const { core, dom, run } = setup();
    const d = dom();
    run(core.map(d, 0x3000, RAM_BASE + 0x9000, 0x1000, RW));
    expect(run(core.map(d, 0x1000, RAM_BASE, 0x4000, RW))).toBe(-EEXIST);
    expect(run(core.iovaToPhys(d, 0x1000))).toBe(0);
    expect(run(core.iovaToPhys(d, 0x2000))).toBe(0);
    expect(run(core.iovaToPhys(d, 0x3000))).toBe(RAM_BASE + 0x9000);
    expect(run(core.map(d, 0x1800, RAM_BASE, 0x1000, RW))).toBe(-EINVAL);
    expect(run(core.map(d, 0x1000, RAM_BASE + 4, 0x1000, RW))).toBe(-EINVAL);
    expect(run(core.map(d, 0x1000, RAM_BASE, 0x800, RW))).toBe(-EINVAL);
    expect(run(core.map(d, FAKE_APERTURE, RAM_BASE, 0x1000, RW))).toBe(-ERANGE);
    expect(run(core.unmap(d, 0x3800, 0x1000))).toBe(0);
  });

  it('iommu_pgsize: largest page size the alignment allows, counts stop where a bigger one fits', () => {
    const { core, dom, run } = setup();
    const d = dom();
    const ops = core.iommu('iommu0')!;
    const calls: string[] = [];
    const orig = ops.mapPages;
    ops.mapPages = function (dd, iova, pa, pgsize, count, prot, out) {
      calls.push(`${iova.toString(16)}:${pgsize.toString(16)}x${count}`);
      return orig.call(ops, dd, iova, pa, pgsize, count, prot, out);
    };
    run(core.map(d, 0xf000, RAM_BASE + 0x10f000, 0x22000, RW));
    expect(calls).toEqual(['f000:1000x1', '10000:10000x2', '30000:1000x1']);
    calls.length = 0;
    // IOVA and PA offsets differ modulo 64 KiB: 4 KiB pages only, in one call.
    run(core.map(d, 0x101000, RAM_BASE + 0x300000, 0x20000, RW));
    expect(calls).toEqual(['101000:1000x32']);
    ops.mapPages = orig;
  });

  it('an unmap gathers the range and syncs the IOTLB once', () => {
    const { core, dom, run, hw } = setup();
    const d = dom();
    run(core.map(d, 0x40000, RAM_BASE, 0x8000, RW));
    const before = hw.flushes;
    expect(run(core.unmap(d, 0x40000, 0x8000))).toBe(0x8000);
    // The IOMMU is runtime-suspended here, but the fake still counts flush writes.
    expect(hw.flushes - before).toBe(1);
  });

  it('map_sg coalesces physically contiguous segments and maps the rest separately', () => {
    const { core, dom, run } = setup();
    const d = dom();
    const segs = [
      { pa: RAM_BASE + 0x10000, len: 0x1000 },
      { pa: RAM_BASE + 0x11000, len: 0x2000 },
      { pa: RAM_BASE + 0x50000, len: 0x1000 },
    ];
    expect(run(core.mapSg(d, 0x80000, segs, RW))).toBe(0x4000);
    expect(run(core.iovaToPhys(d, 0x82000))).toBe(RAM_BASE + 0x12000);
    expect(run(core.iovaToPhys(d, 0x83000))).toBe(RAM_BASE + 0x50000);
    // A collision unmaps everything map_sg did.
    expect(run(core.mapSg(d, 0x7e000, [{ pa: RAM_BASE, len: 0x3000 }], RW))).toBe(-EEXIST);
    expect(run(core.iovaToPhys(d, 0x7e000))).toBe(0);
  });

  it('attach: group-wide switch, -EBUSY while on another unmanaged domain, detach back to default', () => {
    const { core, dom, run, findings } = setup();
    const a = dom();
    const b = dom();
    const g = core.groupOf('vpu')!;
    const name = core.groupName('vpu');
    expect(core.groupName('de')).toBe(name);
    expect(run(core.attachGroup(a, name))).toBe(0);
    expect(g.domain).toBe(a);
    expect(run(core.attachGroup(b, name))).toBe(-EBUSY);
    expect(run(core.attachGroup(a, name))).toBe(-EBUSY);
    run(core.detachGroup(b, name));
    expect(findings.take().map((f) => f.kind)).toEqual(['driver-warn']);
    run(core.detachGroup(a, name));
    expect(g.domain).toBe(g.defaultDomain);
    expect(run(core.attachGroup(b, name))).toBe(0);
    expect(() => run(core.attachGroup(a, 'nope'))).toThrow(/no IOMMU group 'nope'/);
    expect(run(core.attachDevice(a, 'nope'))).toBeLessThan(0);
  });

  it('iommu_attach_device refuses a group of several devices (-EINVAL), detach WARNs, as upstream', () => {
    const { core, dom, run, findings } = setup();
    const d = dom();
    expect(run(core.attachDevice(d, 'vpu'))).toBe(-EINVAL);
    expect(core.groupOf('vpu')!.domain).toBe(core.groupOf('vpu')!.defaultDomain);
    run(core.detachDevice(d, 'vpu'));
    expect(findings.take().map((f) => f.kind)).toEqual(['driver-warn']);
  });

  it('identity and blocked domains; paging ops on identity are -EINVAL', () => {
    const { core, dom, run } = setup();
    const id = dom('identity');
    expect(id.isStatic).toBe(true);
    expect(run(core.iovaToPhys(id, 0x1234))).toBe(0x1234);
    expect(run(core.map(id, 0, RAM_BASE, 0x1000, RW))).toBe(-EINVAL);
    expect(run(core.domainAlloc('iommu0', 'blocked'))).toBe(-EINVAL);
    expect(run(core.attachGroup(id, core.groupName('vpu')))).toBe(0);
  });

  it('domain free: recorded when attached, table pages still held are leaks, use after free warns', () => {
    const { core, dom, run, kernel, findings, trace } = setup();
    const d = dom();
    run(core.attachGroup(d, core.groupName('vpu')));
    kernel.pages.allocPages(0, { kind: 'pgtable', domain: d.id, level: 2, iommu: 'iommu0' });
    run(core.domainFree(d));
    expect(trace.events().some((e) => e.name === 'domain_free_attached')).toBe(true);
    const f = findings.take();
    expect(f.map((x) => x.kind)).toEqual(['table-leak']);
    expect(f[0]!.message).toContain(`domain ${d.id}`);
    expect(run(core.map(d, 0, RAM_BASE, 0x1000, RW))).toBe(-EINVAL);
    run(core.domainFree(d));
    expect(findings.take().map((x) => x.kind)).toEqual(['driver-warn', 'driver-warn']);
  });

  it('property: map/unmap/iova_to_phys agree with a reference model', () => {
    const PAGES = 64;
    const op = fc.oneof(
      fc.record({ k: fc.constant('map' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 20 }), pfn: fc.nat(4095) }),
      fc.record({ k: fc.constant('unmap' as const), page: fc.nat(PAGES - 1), n: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ k: fc.constant('phys' as const), page: fc.nat(PAGES + 4), off: fc.nat(4095) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { core, dom, run } = setup();
        const d = dom();
        const ref = new Map<number, number>();
        const base = 0xf0000;
        for (const o of ops) {
          if (o.k === 'map') {
            const pa = RAM_BASE + o.pfn * 0x1000;
            let clash = false;
            for (let i = 0; i < o.n; i++) if (ref.has(o.page + i)) clash = true;
            const r = run(core.map(d, base + o.page * 0x1000, pa, o.n * 0x1000, RW));
            expect(r).toBe(clash ? -EEXIST : 0);
            if (!clash) for (let i = 0; i < o.n; i++) ref.set(o.page + i, pa + i * 0x1000);
          } else if (o.k === 'unmap') {
            let n = 0;
            while (n < o.n && ref.has(o.page + n)) ref.delete(o.page + n++);
            expect(run(core.unmap(d, base + o.page * 0x1000, o.n * 0x1000))).toBe(n * 0x1000);
          } else {
            const want = ref.has(o.page) ? ref.get(o.page)! + o.off : 0;
            expect(run(core.iovaToPhys(d, base + o.page * 0x1000 + o.off))).toBe(want);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
