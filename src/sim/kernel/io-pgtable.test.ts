import { describe, expect, it } from 'vitest';
import { runOp, type Op } from '../core/coop';
import { SparseRam } from '../mem/ram';
import { IommuIotlbGather, SZ_16M, SZ_1M, SZ_2M, SZ_4K, SZ_64K, iommuIotlbSync, warnOp, type IoPgtableCfg } from './io-pgtable';
import { allocIoPgtableOps } from './io-pgtable-alloc';
import { benchIoPgtable } from './io-pgtable-bench';
import { RefModel, TestTableAllocator, interleave, normalizeExtents, ramPort } from './io-pgtable-testkit';

describe('iommu_iotlb_gather', () => {
  it('widens over adjacent pages and syncs on a disjoint range or a new page size', () => {
    const g = new IommuIotlbGather();
    const synced: string[] = [];
    const sync = function* (x: IommuIotlbGather): Op<void> {
      synced.push(`${x.start.toString(16)}-${x.end.toString(16)}/${x.pgsize.toString(16)}`);
    };
    expect(g.isEmpty()).toBe(true);
    runOp(g.addPage(0x2000, SZ_4K, sync));
    runOp(g.addPage(0x1000, SZ_4K, sync));
    runOp(g.addPage(0x3000, SZ_4K, sync));
    expect(synced).toEqual([]);
    expect([g.start, g.end]).toEqual([0x1000, 0x3fff]);
    runOp(g.addPage(0x9000, SZ_4K, sync));
    expect(synced).toEqual(['1000-3fff/1000']);
    runOp(g.addPage(0xa000, SZ_64K, sync));
    expect(synced).toEqual(['1000-3fff/1000', '9000-9fff/1000']);
    g.freelist.push(0x1234000);
    runOp(iommuIotlbSync(g, sync));
    expect(synced.at(-1)).toBe('a000-19fff/10000');
    expect([g.isEmpty(), g.pgsize, g.freelist]).toEqual([true, 0, []]);
  });

  it('warnOp warns when stepped, not when created', () => {
    const warned: string[] = [];
    const op = warnOp((m) => warned.push(m), 'bad', 7);
    expect(warned).toEqual([]);
    expect(runOp(op)).toBe(7);
    expect(warned).toEqual(['bad']);
  });
});

describe('alloc_io_pgtable_ops', () => {
  it('dispatches by format and returns null for a config the format refuses', () => {
    const ram = new SparseRam(0x40000000, 0x1000000);
    const alloc = new TestTableAllocator(0x40000000, 0x41000000, () => {});
    const env = { port: ramPort(ram), alloc };
    const cfg = (bm: number): IoPgtableCfg => ({ quirks: 0, pgsizeBitmap: bm, ias: 32, oas: 32, coherentWalk: true, tlb: null });
    expect(allocIoPgtableOps('arm-v7s', cfg(SZ_4K | SZ_1M), env)?.fmt).toBe('arm-v7s');
    expect(allocIoPgtableOps('arm-64-lpae-s1', cfg(SZ_4K | SZ_2M), env)?.fmt).toBe('arm-64-lpae-s1');
    expect(allocIoPgtableOps('arm-64-lpae-s1', cfg(SZ_16M), env)).toBeNull();
  });
});

describe('test kit', () => {
  it('the reference splits leaves the way the formats do', () => {
    const ref = new RefModel({ levelOf: (s) => (s >= SZ_1M ? 1 : 2), lastLevel: 2, splitTo: (l, u) => (l === SZ_16M ? SZ_1M : l === SZ_1M && u === SZ_64K ? SZ_64K : SZ_4K) });
    ref.add(0, SZ_16M, 0x80000000, 1, SZ_16M);
    ref.remove(0x230000, SZ_64K);
    const leaves = ref.ext.map((e) => [e.iova, e.size, e.leaf]).sort((a, b) => a[0]! - b[0]!);
    expect(leaves).toEqual([
      [0, 0x200000, SZ_1M],
      [0x200000, 0x30000, SZ_64K],
      [0x240000, 0xc0000, SZ_64K],
      [0x300000, 0xd00000, SZ_1M],
    ]);
    expect(ref.lookup(0x230000)).toBeNull();
    expect(ref.lookup(0x240010)).toEqual({ pa: 0x80240010, prot: 1 });
    expect(normalizeExtents(ref.extents())).toEqual([
      { iova: 0, size: 0x230000, pa: 0x80000000, prot: 1 },
      { iova: 0x240000, size: 0xdc0000, pa: 0x80240000, prot: 1 },
    ]);
  });

  it('the interleaver is deterministic per seed and runs every operation to its end', () => {
    const trace: string[] = [];
    const op = function* (name: string, n: number): Op<string> {
      for (let i = 0; i < n; i++) {
        trace.push(name + i);
        yield { kind: 'yield' };
      }
      return name;
    };
    expect(interleave([op('a', 5), op('b', 5)], 42)).toEqual(['a', 'b']);
    const first = trace.join();
    trace.length = 0;
    interleave([op('a', 5), op('b', 5)], 42);
    expect(trace.join()).toBe(first);
  });

  it('the bench runs both formats', () => {
    const r = benchIoPgtable(2000);
    expect(r.map((x) => x.name)).toEqual(['v7s 4K map+unmap', 'v7s 1M map+unmap', 'lpae 4K map+unmap', 'lpae 2M map+unmap']);
    expect(r.every((x) => x.ops === 4000 && x.opsPerSec > 0)).toBe(true);
  });
});
