/**
 * The kernel's only way to the hardware: CPU loads and stores (through the CPU cache), atomics, MMIO
 * and cache maintenance. Every access is a preemption point, so the scheduler and the interleaving
 * explorer can run other CPUs and DMA between any two accesses, exactly where real concurrency
 * would let them in.
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

/** What a port's accesses reach: the CPU's view of memory and MMIO, its cache, and simulated time. */
export interface PortTarget {
  read32(pa: number): number;
  write32(pa: number, value: number): void;
  clean(pa: number, len: number): void;
  invalidate(pa: number, len: number): void;
  tick(cycles: number): void;
}

/** Cycles an MMIO access costs: polls make progress in simulated time. */
const MMIO_CYCLES = 20;

/**
 * Two 32-bit halves, little-endian. Each BigInt made costs an allocation, so an empty descriptor (the
 * commonest value) is the constant 0n, and anything that fits a double takes one conversion.
 */
function load64(t: PortTarget, pa: number): bigint {
  const hi = t.read32(pa + 4);
  const lo = t.read32(pa);
  if (hi === 0 && lo === 0) return 0n;
  return hi < 0x200000 ? BigInt(hi * 0x100000000 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

function store64(t: PortTarget, pa: number, v: bigint): void {
  if (v >= 0n && v < 0x20000000000000n) {
    const n = Number(v);
    t.write32(pa, n % 0x100000000);
    t.write32(pa + 4, Math.floor(n / 0x100000000));
  } else {
    t.write32(pa, Number(v & 0xffffffffn));
    t.write32(pa + 4, Number((v >> 32n) & 0xffffffffn));
  }
}

/** What an access does once its thread is let past the preemption point. */
const LOAD32 = 0;
const STORE32 = 1;
const CMPXCHG32 = 2;
const LOAD64 = 3;
const STORE64 = 4;
const CMPXCHG64 = 5;
const MMIO_READ = 6;
const MMIO_WRITE = 7;
const DELAY = 8;
type AccessKind = typeof LOAD32 | typeof STORE32 | typeof CMPXCHG32 | typeof LOAD64 | typeof STORE64 | typeof CMPXCHG64 | typeof MMIO_READ | typeof MMIO_WRITE | typeof DELAY;

/**
 * One access as an operation: its preemption point, then the load, store or atomic. A plain
 * iterator rather than a generator, and one class for every kind (V8 keeps it monomorphic): kernel
 * code runs one per access, and a generator frame each cost a sixth of an io-pgtable map + unmap.
 */
class PortAccess<T> implements Op<T> {
  /** 0: not started, 1: standing at the point, 2: done. */
  private state = 0;

  constructor(
    private readonly point: PreemptPoint,
    private readonly t: PortTarget,
    private readonly kind: AccessKind,
    private readonly pa: number,
    /** 32-bit value, or cycles for a delay. */
    private readonly n: number,
    private readonly nExpected: number,
    private readonly b: bigint,
    private readonly bExpected: bigint,
  ) {}

  next(): IteratorResult<PreemptPoint, T> {
    if (this.state === 0) {
      this.state = 1;
      return { value: this.point, done: false };
    }
    if (this.state === 1) {
      this.state = 2;
      return { value: this.complete() as T, done: true };
    }
    return { value: undefined as T, done: true };
  }

  return(value: T): IteratorResult<PreemptPoint, T> {
    this.state = 2;
    return { value, done: true };
  }

  throw(e: unknown): IteratorResult<PreemptPoint, T> {
    this.state = 2;
    throw e;
  }

  [Symbol.iterator](): this {
    return this;
  }

  private complete(): number | bigint | undefined {
    const t = this.t;
    switch (this.kind) {
      case LOAD32:
        return t.read32(this.pa);
      case STORE32:
        t.write32(this.pa, this.n >>> 0);
        return undefined;
      case CMPXCHG32: {
        const cur = t.read32(this.pa);
        if (cur === this.nExpected >>> 0) t.write32(this.pa, this.n >>> 0);
        return cur;
      }
      case LOAD64:
        return load64(t, this.pa);
      case STORE64:
        store64(t, this.pa, this.b);
        return undefined;
      case CMPXCHG64: {
        const cur = load64(t, this.pa);
        if (cur === this.bExpected) store64(t, this.pa, this.b);
        return cur;
      }
      case MMIO_READ:
        t.tick(MMIO_CYCLES);
        return t.read32(this.pa);
      case MMIO_WRITE:
        t.tick(MMIO_CYCLES);
        t.write32(this.pa, this.n >>> 0);
        return undefined;
      case DELAY:
        t.tick(this.n);
        return undefined;
    }
  }
}

/** A port over a target. `who` names the CPU thread in schedules. */
export function targetPort(t: PortTarget, who = 'cpu0'): KernelPort {
  const access = <T>(kind: AccessKind, point: PreemptPoint['kind'], pa: number, n = 0, nExpected = 0, b = 0n, bExpected = 0n): Op<T> =>
    new PortAccess<T>({ kind: point, pa, who }, t, kind, pa, n, nExpected, b, bExpected);
  return {
    read32: (pa) => access(LOAD32, 'mem-read', pa),
    write32: (pa, value) => access(STORE32, 'mem-write', pa, value),
    cmpxchg32: (pa, expected, value) => access(CMPXCHG32, 'mem-write', pa, value, expected),
    read64: (pa) => access(LOAD64, 'mem-read', pa),
    write64: (pa, value) => access(STORE64, 'mem-write', pa, 0, 0, value),
    cmpxchg64: (pa, expected, value) => access(CMPXCHG64, 'mem-write', pa, 0, 0, value, expected),
    readl: (pa) => access(MMIO_READ, 'mmio-read', pa),
    writel: (value, pa) => access(MMIO_WRITE, 'mmio-write', pa, value),
    cleanDcache: (pa, len) => t.clean(pa, len),
    invalidateDcache: (pa, len) => t.invalidate(pa, len),
    delay: (cycles) => new PortAccess<void>({ kind: 'yield', who }, t, DELAY, 0, cycles, 0, 0n, 0n),
  };
}

/** The port over the SoC bus: loads and stores through the CPU cache, MMIO to the devices. */
export function busPort(bus: Bus, tick: (cycles: number) => void, who = 'cpu0'): KernelPort {
  return targetPort(
    {
      read32: (pa) => bus.cpuRead32(pa),
      write32: (pa, value) => bus.cpuWrite32(pa, value),
      clean: (pa, len) => bus.cache.clean(pa, len),
      invalidate: (pa, len) => bus.cache.invalidate(pa, len),
      tick,
    },
    who,
  );
}
