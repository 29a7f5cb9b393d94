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
});
