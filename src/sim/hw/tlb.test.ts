import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/rng';
import { KeyedCache, MAX_CACHE_ENTRIES } from './keyed-cache';
import { Tlb, type TlbLine } from './tlb';
import { PERM_READ, PERM_WRITE } from './types';

const line = (iova: number, size = 4096, master = -1, pa = 0x4000_0000 + iova): TlbLine => ({ iova, size, pa, perms: PERM_READ | PERM_WRITE, master, aux: 0 });

describe('Tlb', () => {
  it('refuses capacities it cannot index (2^29 used to loop forever)', () => {
    for (const bad of [0, 2.5, MAX_CACHE_ENTRIES + 1, 2 ** 29, 2 ** 31]) {
      expect(() => new Tlb({ level: 'iotlb', capacity: bad, rng: new Rng(1) })).toThrow(/capacity must be an integer from 1 to 65536/);
    }
  });

  it('looks up any address inside an entry, for several page sizes', () => {
    const t = new Tlb({ level: 'iotlb', capacity: 8, rng: new Rng(1) });
    t.insert(line(0x1000));
    t.insert(line(0x10_0000, 0x10_0000));
    t.insert(line(0xfff0_0000, 0x10_0000));
    expect(t.lookup(0x1fff)?.iova).toBe(0x1000);
    expect(t.lookup(0x2000)).toBeUndefined();
    expect(t.lookup(0x1f_ffff)?.size).toBe(0x10_0000);
    expect(t.lookup(0xffff_ffff)?.iova).toBe(0xfff0_0000);
  });

  it('address+mask invalidation drops exactly the entries it covers', () => {
    const t = new Tlb({ level: 'iotlb', capacity: 16, rng: new Rng(1) });
    for (const v of [0x1000, 0x2000, 0x10_1000]) t.insert(line(v));
    t.insert(line(0x20_0000, 0x10_0000));
    expect(t.invalidateMasked(0x1abc, 0xfffff000)).toBe(1);
    expect(t.lookup(0x1000)).toBeUndefined();
    expect(t.lookup(0x2000)).toBeDefined();
    // A page-granular invalidation inside a 1 MiB entry covers it.
    expect(t.invalidateMasked(0x23_4000, 0xfffff000)).toBe(1);
    expect(t.invalidateMasked(0x10_0000, 0xfff00000)).toBe(1);
    expect(t.lines().map((l) => l.iova)).toEqual([0x2000]);
  });

  it('never leaves an entry a masked invalidation covers, nor drops one it does not (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 0xfffff }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 20 }), (pages, addr, bits) => {
        const t = new Tlb({ level: 'iotlb', capacity: 64, rng: new Rng(2) });
        for (const p of pages) t.insert(line(p * 4096));
        // A shift by 32 is a shift by 0 in JavaScript: 20 bits means a mask that covers everything.
        const mask = bits === 20 ? 0 : (0xffffffff << (12 + bits)) >>> 0;
        t.invalidateMasked(addr, mask);
        for (const p of pages) {
          const covered = ((((p * 4096) ^ addr) & mask) >>> 0) === 0;
          expect(t.lookup(p * 4096) === undefined).toBe(covered);
        }
      }),
    );
  });

  it('master-tagged entries are separate per master and flushed per master', () => {
    const t = new Tlb({ level: 'iotlb', capacity: 8, rng: new Rng(1), tagMaster: true });
    t.insert(line(0x1000, 4096, 0, 0x5000_0000));
    t.insert(line(0x1000, 4096, 1, 0x6000_0000));
    expect(t.lookup(0x1000, 0)?.pa).toBe(0x5000_0000);
    expect(t.lookup(0x1000, 1)?.pa).toBe(0x6000_0000);
    expect(t.lookup(0x1000, 2)).toBeUndefined();
    expect(t.invalidateAll(0)).toBe(1);
    expect(t.lookup(0x1000, 0)).toBeUndefined();
    expect(t.invalidateMasked(0x1000, 0xfffff000, 2)).toBe(0);
    expect(t.invalidateRange(0, 0x2000, 1)).toBe(1);
  });

  it('evicts a seeded random victim at capacity and tells the owner', () => {
    const run = (seed: number): number[] => {
      const evicted: number[] = [];
      const t = new Tlb({ level: 'micro0', capacity: 4, rng: new Rng(seed), evictions: { note: (iova) => evicted.push(iova) } });
      for (let i = 0; i < 10; i++) t.insert(line(i * 4096));
      expect(t.size).toBe(4);
      return evicted;
    };
    expect(run(7)).toHaveLength(6);
    expect(run(7)).toEqual(run(7));
  });

  it('picks victims as KeyedCache does (order[rng.below(n)], swap-removal), through invalidations too', () => {
    for (const capacity of [4, 7, 16]) {
      const got: number[] = [];
      const want: number[] = [];
      const t = new Tlb({ level: 'macro', capacity, rng: new Rng(9), evictions: { note: (iova) => got.push(iova) } });
      const c = new KeyedCache<number>(capacity, new Rng(9), (k) => want.push(k));
      for (let i = 0; i < 200; i++) {
        const page = (i * 37) % 61;
        t.insert(line(page * 4096));
        c.set(page * 4096, i);
        if (i % 23 === 0) {
          t.invalidateMasked(0, 0x3000);
          c.deleteWhere((k) => (k & 0x3000) === 0);
        }
      }
      expect(got).toEqual(want);
      expect(t.lines().map((l) => l.iova)).toEqual(c.entries().map(([k]) => k));
    }
  });

  it('stores a copy of the inserted line, so a caller may reuse its object', () => {
    const t = new Tlb({ level: 'macro', capacity: 2, rng: new Rng(1) });
    const l = line(0x1000);
    t.insert(l);
    l.iova = 0x2000;
    l.pa = 0x9000_0000;
    t.insert(l);
    expect(t.lookup(0x1000)?.pa).toBe(0x4000_1000);
    expect(t.lookup(0x2000)?.pa).toBe(0x9000_0000);
    // Capacity evictions reuse the evicted entry's storage; contents stay per entry.
    for (let i = 3; i < 10; i++) t.insert(line(i * 4096));
    expect(t.lines().map((x) => x.pa - x.iova)).toEqual([0x4000_0000, 0x4000_0000]);
  });

  it('lists entries for the script API and survives snapshot/restore', () => {
    const t = new Tlb({ level: 'macro', capacity: 4, rng: new Rng(1) });
    t.insert({ ...line(0x3000), perms: PERM_READ, aux: 2 });
    expect(t.list({ attrs: (l) => ({ aci: l.aux }) })).toEqual([{ iova: 0x3000, pa: 0x4000_3000, size: 4096, perms: ['read'], valid: true, level: 'macro', attrs: { aci: 2 } }]);
    const s = t.snapshot();
    t.invalidateAll();
    t.restore(s);
    expect(t.lookup(0x3004)?.aux).toBe(2);
  });

  it('finds exactly the entries it holds through inserts, evictions and invalidations (property)', () => {
    // Few buckets and clustered pages: chains collide, so unlinking from a chain's middle is exercised.
    const op = fc.oneof(
      fc.record({ put: fc.integer({ min: 0, max: 63 }), big: fc.boolean(), master: fc.integer({ min: -1, max: 2 }) }),
      fc.record({ range: fc.integer({ min: 0, max: 63 }), pages: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ masked: fc.integer({ min: 0, max: 63 }), bits: fc.integer({ min: 12, max: 18 }) }),
      fc.record({ all: fc.integer({ min: -1, max: 2 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.boolean(), fc.array(op, { maxLength: 60 }), fc.integer(), (capacity, tagMaster, ops, seed) => {
        const t = new Tlb({ level: 'iotlb', capacity, rng: new Rng(seed), tagMaster });
        for (const o of ops) {
          if ('put' in o) t.insert(line(o.big ? (o.put * 4096) & ~0xffff : o.put * 4096, o.big ? 0x10000 : 4096, o.master));
          else if ('range' in o) t.invalidateRange(o.range * 4096, o.pages * 4096);
          else if ('masked' in o) t.invalidateMasked(o.masked * 4096, (0xffffffff << o.bits) >>> 0);
          else t.invalidateAll(o.all < 0 ? undefined : o.all);
          const held = t.lines();
          expect(held.length).toBeLessThanOrEqual(capacity);
          for (let page = 0; page < 64; page++) {
            for (const master of tagMaster ? [-1, 0, 1, 2] : [-1]) {
              const iova = page * 4096;
              const want = held.filter((l) => iova >= l.iova && iova < l.iova + l.size && (!tagMaster || l.master === master));
              const got = t.lookup(iova, master);
              if (want.length === 0) expect(got).toBeUndefined();
              else expect(want).toContainEqual(got);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the rest of a hash chain when an entry in its middle goes', () => {
    // Pages whose keys share a bucket of an 8-entry TLB (32 buckets), found by the TLB's own hash:
    // Fibonacci hashing of page * 512 (untagged 4 KiB key), top 5 bits.
    const bucket = (page: number): number => Math.imul(page * 512, 0x9e3779b1) >>> 27;
    const same = Array.from({ length: 1 << 16 }, (_, p) => p).filter((p) => bucket(p) === bucket(1)).slice(0, 5);
    expect(same).toHaveLength(5);
    const t = new Tlb({ level: 'iotlb', capacity: 8, rng: new Rng(1) });
    for (const p of same) t.insert(line(p * 4096));
    for (const victim of [same[2]!, same[1]!, same[4]!]) {
      t.invalidateRange(victim * 4096, 4096);
      for (const p of same) expect(t.lookup(p * 4096)?.iova, `page ${p} after dropping ${victim}`).toBe(t.lines().some((l) => l.iova === p * 4096) ? p * 4096 : undefined);
    }
    expect(t.lines().map((l) => l.iova / 4096).sort((a, b) => a - b)).toEqual([same[0]!, same[3]!]);
  });
});

