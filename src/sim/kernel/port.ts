/**
 * The kernel's only way to the hardware: CPU loads and stores (through the CPU cache), atomics, MMIO
 * and cache maintenance. Every access is a preemption point (a yield of the generator), so the
 * scheduler and the interleaving explorer can run other CPUs and DMA between any two accesses,
 * exactly where real concurrency would let them in.
 */
import type { Op, PreemptPoint } from '../core/coop';
import type { Bus } from '../mem/bus';

export interface KernelPort {
  read32(pa: number): Op<number>;
  write32(pa: number, value: number): Op<void>;
  /** Atomic compare-and-swap; returns the value found (== expected on success). */
  cmpxchg32(pa: number, expected: number, value: number): Op<number>;
  read64(pa: number): Op<bigint>;
  write64(pa: number, value: bigint): Op<void>;
  cmpxchg64(pa: number, expected: bigint, value: bigint): Op<bigint>;
  readl(pa: number): Op<number>;
  writel(value: number, pa: number): Op<void>;
  /** dma_sync_single_for_device(DMA_TO_DEVICE): write CPU-cache lines back to RAM. */
  cleanDcache(pa: number, len: number): void;
  /** dma_sync_single_for_cpu(DMA_FROM_DEVICE): drop CPU-cache lines. */
  invalidateDcache(pa: number, len: number): void;
  /** Let simulated time pass (udelay in a poll loop). */
  delay(cycles: number): Op<void>;
}

/** Cycles an MMIO access costs: polls make progress in simulated time. */
const MMIO_CYCLES = 20;

/** The port over the SoC bus. `who` names the CPU thread in schedules. */
export function busPort(bus: Bus, tick: (cycles: number) => void, who = 'cpu0'): KernelPort {
  const pt = (kind: PreemptPoint['kind'], pa: number): PreemptPoint => ({ kind, pa, who });
  const lo = (v: bigint): number => Number(v & 0xffffffffn);
  const hi = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);
  const get64 = (pa: number): bigint => (BigInt(bus.cpuRead32(pa + 4)) << 32n) | BigInt(bus.cpuRead32(pa));
  const set64 = (pa: number, v: bigint): void => {
    bus.cpuWrite32(pa, lo(v));
    bus.cpuWrite32(pa + 4, hi(v));
  };
  return {
    *read32(pa) {
      yield pt('mem-read', pa);
      return bus.cpuRead32(pa);
    },
    *write32(pa, value) {
      yield pt('mem-write', pa);
      bus.cpuWrite32(pa, value >>> 0);
    },
    *cmpxchg32(pa, expected, value) {
      yield pt('mem-write', pa);
      const cur = bus.cpuRead32(pa);
      if (cur === expected >>> 0) bus.cpuWrite32(pa, value >>> 0);
      return cur;
    },
    *read64(pa) {
      yield pt('mem-read', pa);
      return get64(pa);
    },
    *write64(pa, value) {
      yield pt('mem-write', pa);
      set64(pa, value);
    },
    *cmpxchg64(pa, expected, value) {
      yield pt('mem-write', pa);
      const cur = get64(pa);
      if (cur === expected) set64(pa, value);
      return cur;
    },
    *readl(pa) {
      yield pt('mmio-read', pa);
      tick(MMIO_CYCLES);
      return bus.cpuRead32(pa);
    },
    *writel(value, pa) {
      yield pt('mmio-write', pa);
      tick(MMIO_CYCLES);
      bus.cpuWrite32(pa, value >>> 0);
    },
    cleanDcache(pa, len) {
      bus.cache.clean(pa, len);
    },
    invalidateDcache(pa, len) {
      bus.cache.invalidate(pa, len);
    },
    *delay(cycles) {
      yield { kind: 'yield', who };
      tick(cycles);
    },
  };
}
