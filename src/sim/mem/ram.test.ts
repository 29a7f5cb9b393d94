import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { SparseRam } from './ram';

describe('SparseRam', () => {
  it('a 4 GiB space with 64 MiB touched costs well under 100 MB', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage();
    const ram = new SparseRam(0, 2 ** 32);
    const chunk = new Uint8Array(1 << 20).fill(0xa5);
    // 64 MiB spread over the whole space, one MiB every 64 MiB.
    for (let i = 0; i < 64; i++) ram.writeFrom(i * 64 * (1 << 20), chunk);
    gc();
    const after = process.memoryUsage();
    const cost = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    expect(ram.touchedFrames()).toBe(64 * 256);
    // The 64 MiB of data itself, plus a small per-frame overhead.
    expect(cost).toBeGreaterThan(64 * 1024 * 1024);
    expect(cost).toBeLessThan(100 * 1024 * 1024);
    expect(ram.read8(63 * 64 * (1 << 20) + 12345)).toBe(0xa5);
    expect(ram.read32(0xffff_fffc)).toBe(0);
  });

  /** Reference result of page-sized copy beats issued one after another. */
  function beatByBeat(init: (r: SparseRam) => void, dst: number, src: number, len: number, beat: number): SparseRam {
    const r = new SparseRam(0, 1 << 24);
    init(r);
    for (let o = 0; o < len; o += beat) r.copy(dst + o, src + o, Math.min(beat, len - o));
    return r;
  }

  const fill = (r: SparseRam): void => {
    for (let p = 0; p < 64; p++) r.writeFrom(p * 4096, new Uint8Array(4096).fill(p + 1));
  };

  it('queued copy beats read back as if each beat had been done when issued', () => {
    for (const [dst, src, len, beat] of [
      [0x80_000, 0, 32 * 4096, 4096],
      [0x80_010, 0x10, 20 * 4096, 4096],
      // Overlapping source and destination: forwards, beat by beat, is not one memmove.
      [4096, 0, 16 * 4096, 4096],
      [0, 4096, 16 * 4096, 4096],
      [0x80_000, 0x100, 8 * 4096, 256],
    ] as const) {
      const r = new SparseRam(0, 1 << 24);
      fill(r);
      for (let o = 0; o < len; o += beat) r.queueCopy(dst + o, src + o, Math.min(beat, len - o));
      const want = beatByBeat(fill, dst, src, len, beat);
      expect(r.read(0, 0x100_000)).toEqual(want.read(0, 0x100_000));
    }
  });

  it('an access to a queued range sees every earlier beat, and a rollback undoes a queued copy', () => {
    const r = new SparseRam(0, 1 << 24);
    fill(r);
    r.queueCopy(0x80_000, 0, 4096);
    r.queueCopy(0x81_000, 0x1000, 4096);
    expect(r.read8(0x81_fff)).toBe(2);
    r.queueCopy(0x82_000, 0x2000, 4096);
    // A write into the queued source lands after the beat that read it.
    r.write8(0x2000, 0xee);
    expect(r.read8(0x82_000)).toBe(3);
    const cp = r.checkpoint();
    r.queueCopy(0x90_000, 0x3000, 4096);
    r.rollback(cp);
    expect(r.isTouched(0x90_000)).toBe(false);
    expect(r.read8(0x90_000)).toBe(0);
  });
});
