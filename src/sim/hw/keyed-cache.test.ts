import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../core/rng';
import { KeyedCache, MAX_CACHE_ENTRIES } from './keyed-cache';

type Cmd = { op: 'set'; k: number; v: number } | { op: 'get' | 'delete'; k: number } | { op: 'where'; mod: number } | { op: 'clear' };

const key = fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 2 ** 40 }));
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), k: key, v: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('get' as const), k: key }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), k: key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('where' as const), mod: fc.integer({ min: 2, max: 5 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

describe('KeyedCache', () => {
  it('refuses capacities it cannot index (2^29 used to loop forever)', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, MAX_CACHE_ENTRIES + 1, 2 ** 29, 2 ** 40]) {
      expect(() => new KeyedCache<number>(bad, new Rng(1))).toThrow(/capacity must be an integer from 1 to 65536/);
    }
    expect(new KeyedCache<number>(MAX_CACHE_ENTRIES, new Rng(1)).capacity).toBe(MAX_CACHE_ENTRIES);
  });

  it('behaves as a bounded map whose evictions are all reported (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 24 }), fc.array(cmd, { maxLength: 300 }), (capacity, cmds) => {
        const model = new Map<number, number>();
        const c = new KeyedCache<number>(capacity, new Rng(3), (k, v) => {
          expect(model.get(k)).toBe(v);
          model.delete(k);
        });
        for (const x of cmds) {
          if (x.op === 'set') {
            c.set(x.k, x.v);
            model.set(x.k, x.v);
          } else if (x.op === 'get') expect(c.get(x.k)).toBe(model.get(x.k));
          else if (x.op === 'delete') expect(c.delete(x.k)).toBe(model.delete(x.k));
          else if (x.op === 'where') {
            const n = c.deleteWhere((k) => k % x.mod === 0);
            const gone = [...model.keys()].filter((k) => k % x.mod === 0);
            gone.forEach((k) => model.delete(k));
            expect(n).toBe(gone.length);
          } else {
            c.clear();
            model.clear();
          }
          expect(c.size).toBe(model.size);
          expect(c.size).toBeLessThanOrEqual(capacity);
        }
        expect(new Map(c.entries())).toEqual(model);
      }),
    );
  });

  it('picks the victim as dense[rng.below(n)] with swap-removal, for small and large capacities', () => {
    for (const capacity of [1, 7, 64, 0x8000, 0x8001]) {
      const ref = new Rng(5);
      const dense: number[] = [];
      const expected: number[] = [];
      const got: number[] = [];
      const c = new KeyedCache<number>(capacity, new Rng(5), (k) => got.push(k));
      for (let k = 0; k < capacity + 200; k++) {
        if (dense.length === capacity) {
          const i = ref.below(dense.length);
          expected.push(dense[i]!);
          dense[i] = dense[dense.length - 1]!;
          dense.pop();
        }
        dense.push(k);
        c.set(k * 4096, k);
      }
      expect(got.map((k) => k / 4096)).toEqual(expected);
    }
  });

  it('replays the same evictions for the same seed, also after snapshot/restore', () => {
    const run = (): number[] => {
      const ev: number[] = [];
      const c = new KeyedCache<{ v: number }>(4, new Rng(9), (k) => ev.push(k));
      for (let i = 0; i < 6; i++) c.set(i, { v: i });
      const s = c.snapshot();
      for (let i = 6; i < 12; i++) c.set(i, { v: i });
      c.restore(s);
      for (let i = 6; i < 12; i++) c.set(i, { v: i });
      return ev;
    };
    expect(run()).toEqual(run());
  });
});
