import { describe, expect, it } from 'vitest';
import { Rng } from './rng';

describe('Rng', () => {
  it('is a fixed splitmix32 sequence for a seed (replays depend on it)', () => {
    const r = new Rng(1);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([0x96a0f96b, 0x12bc8390, 0x971e9964].map((x) => x >>> 0));
  });

  it('restores its state exactly', () => {
    const r = new Rng(0xdeadbeef);
    r.nextU32();
    const s = r.getState();
    const a = [r.nextU32(), r.nextU32()];
    r.setState(s);
    expect([r.nextU32(), r.nextU32()]).toEqual(a);
    expect(s).toBeGreaterThanOrEqual(0);
  });

  it('below(n) stays in range', () => {
    const r = new Rng(7);
    for (let i = 0; i < 1000; i++) expect(r.below(13)).toBeLessThan(13);
  });
});
