import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FindingLog } from '../core/findings';
import { PAGE_SIZE, PageAllocator } from './page-alloc';

const BASE = 0x40000000;
const mk = (size = 16 << 20) => {
  const findings = new FindingLog(() => 0, () => undefined);
  const zeroed: [number, number][] = [];
  const pages = new PageAllocator([{ base: BASE, size }], { findings, zero: (pa, len) => zeroed.push([pa, len]) });
  return { pages, findings, zeroed };
};

describe('page allocator', () => {
  it('hands out naturally aligned blocks, lowest addresses first', () => {
    const { pages } = mk();
    const a = pages.allocPages(0, { kind: 'script' })!;
    const b = pages.allocPages(2, { kind: 'script' })!;
    expect(a).toBe(BASE);
    expect(b % (PAGE_SIZE << 2)).toBe(0);
    expect(b).toBeGreaterThan(a);
  });

  it('reuses the last freed single page first (a freed table really gets reused)', () => {
    const { pages } = mk();
    const t = pages.allocPages(0, { kind: 'pgtable', domain: 1, level: 2 })!;
    pages.allocPages(0, { kind: 'script' });
    pages.freePages(t);
    expect(pages.lastFreed(t)?.owner).toEqual({ kind: 'pgtable', domain: 1, level: 2 });
    const again = pages.allocPages(0, { kind: 'dma-buffer', dev: 'vpu' });
    expect(again).toBe(t);
    expect(pages.ownerOf(t + 100)).toEqual({ kind: 'dma-buffer', dev: 'vpu' });
    expect(pages.lastFreed(t)).toBeUndefined();
  });

  it('reports a double free and a free of the middle of a block, and continues', () => {
    const { pages, findings } = mk();
    const p = pages.allocPages(1, { kind: 'script' })!;
    pages.freePages(p + PAGE_SIZE);
    pages.freePages(p);
    pages.freePages(p);
    const f = findings.take();
    expect(f).toHaveLength(2);
    expect(f[0]!.message).toContain('not the start');
    expect(f[1]!.message).toContain('double free');
    expect(f[1]!.message).toContain('script pages');
  });

  it('zeroes on request through the zero hook, and tracks owners for leak lists', () => {
    const { pages, zeroed } = mk();
    const a = pages.allocPages(0, { kind: 'pgtable', domain: 7, level: 1 }, { zero: true })!;
    pages.allocPages(0, { kind: 'pgtable', domain: 8, level: 1 });
    expect(zeroed).toEqual([[a, PAGE_SIZE]]);
    expect(pages.tablesOf(7).map((x) => x.pa)).toEqual([a]);
    expect(pages.isAllocated(a + 4095)).toBe(true);
  });

  it('exact allocations give the tail back and free as a whole', () => {
    const { pages } = mk();
    const before = pages.freeBytes();
    const p = pages.allocExact(3, { kind: 'script' })!;
    expect(pages.freeBytes()).toBe(before - 3 * PAGE_SIZE);
    expect(pages.isAllocated(p + 3 * PAGE_SIZE)).toBe(false);
    pages.freePages(p);
    expect(pages.freeBytes()).toBe(before);
  });

  it('split pages free one by one', () => {
    const { pages } = mk();
    const p = pages.allocPages(2, { kind: 'dma-buffer', dev: 'x' })!;
    pages.splitPage(p);
    for (let i = 0; i < 4; i++) pages.freePages(p + i * PAGE_SIZE, 0);
    expect(pages.list()).toHaveLength(0);
  });

  it('kmem_cache: 1 KiB objects, LIFO reuse, object owners, double free reported, empty pages returned', () => {
    const { pages, findings } = mk();
    const c = pages.createCache('l2', 1024);
    const objs = [0, 1, 2, 3, 4].map((i) => c.alloc({ kind: 'pgtable', domain: 1, level: 2 + i })!);
    expect(new Set(objs.map((o) => o - (o % PAGE_SIZE))).size).toBe(2);
    for (const o of objs) expect(o % 1024).toBe(0);
    expect(pages.ownerOf(objs[2]! + 8)).toEqual({ kind: 'pgtable', domain: 1, level: 4 });
    c.free(objs[1]!);
    expect(pages.isAllocated(objs[1]!)).toBe(false);
    expect(pages.lastFreed(objs[1]!)?.owner).toEqual({ kind: 'pgtable', domain: 1, level: 3 });
    expect(c.alloc({ kind: 'pgtable', domain: 2, level: 2 })).toBe(objs[1]);
    c.free(objs[4]!);
    c.free(objs[4]!);
    expect(findings.take().map((f) => f.message)).toEqual([expect.stringContaining('double free')]);
    // objs[4] was alone on its page: the page went back and remembers the object's holder.
    expect(pages.isAllocated(objs[4]!)).toBe(false);
    expect(pages.lastFreed(objs[4]!)?.owner).toEqual({ kind: 'pgtable', domain: 1, level: 6 });
    expect(pages.list((o) => o.kind === 'pgtable')).toHaveLength(4);
  });

  it('snapshot and restore', () => {
    const { pages } = mk();
    const a = pages.allocPages(0, { kind: 'script' })!;
    const s = pages.snapshot();
    pages.freePages(a);
    pages.allocPages(3, { kind: 'script' });
    pages.restore(s);
    expect(pages.list().map((x) => x.pa)).toEqual([a]);
    expect(pages.allocPages(0, { kind: 'script' })).toBe(a + PAGE_SIZE);
  });

  it('property: live allocations never overlap, are aligned, and all memory comes back', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 4 }), fc.nat(50)), { maxLength: 200 }), (ops) => {
        const { pages, findings } = mk(4 << 20);
        const total = pages.freeBytes();
        const live: { pa: number; bytes: number }[] = [];
        for (const [alloc, order, pick] of ops) {
          if (alloc || live.length === 0) {
            const pa = pages.allocPages(order, { kind: 'script' });
            if (pa === null) continue;
            expect(pa % (PAGE_SIZE << order)).toBe(0);
            for (const l of live) expect(pa + (PAGE_SIZE << order) <= l.pa || l.pa + l.bytes <= pa).toBe(true);
            live.push({ pa, bytes: PAGE_SIZE << order });
          } else {
            const [l] = live.splice(pick % live.length, 1);
            pages.freePages(l!.pa);
          }
        }
        for (const l of live) pages.freePages(l.pa);
        expect(pages.freeBytes()).toBe(total);
        expect(findings.list()).toHaveLength(0);
        // Everything merges back: the largest block is available again.
        expect(pages.allocPages(10, { kind: 'script' })).not.toBeNull();
      }),
    );
  });
});

describe('snapshot and restore of slab caches', () => {
  it('empties a cache created after the snapshot, so its objects cannot outlive their pages', () => {
    const { pages: pa, findings } = mk();
    const snap = pa.snapshot();
    const cache = pa.createCache('late', 1024);
    const obj = cache.alloc({ kind: 'pgtable', domain: 1, level: 2, iommu: 'iommu0' })!;
    pa.restore(snap);
    expect(cache.objectAt(obj)).toBeUndefined();
    const again = cache.alloc({ kind: 'pgtable', domain: 1, level: 2, iommu: 'iommu0' })!;
    expect(pa.ownerOf(again)).toMatchObject({ kind: 'pgtable', domain: 1 });
    cache.free(again);
    expect(pa.isAllocated(again)).toBe(false);
    expect(findings.list()).toEqual([]);
  });
});
