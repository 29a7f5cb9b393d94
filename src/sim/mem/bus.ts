import type { CpuCache } from './cpu-cache';
import type { SparseRam } from './ram';

/** A device register window on the bus. Offsets are relative to the window's base. */
export interface MmioTarget {
  readonly name: string;
  read32(offset: number): number;
  write32(offset: number, value: number): void;
}

export interface MmioRegion {
  base: number;
  size: number;
  target: MmioTarget;
}

/** An access to an address nothing decodes: the SError/external abort of real hardware. */
export class BusError extends Error {
  constructor(
    readonly pa: number,
    readonly access: 'read' | 'write',
    readonly agent: string,
  ) {
    super(`bus error: ${agent} ${access} at 0x${pa.toString(16)} decodes to nothing`);
    this.name = 'BusError';
  }
}

/**
 * The physical address map. The CPU's accesses to RAM go through its cache; device accesses
 * (DMA, table walks) use ramRead32/ramWrite, coherent or not as each agent says.
 */
export class Bus {
  private mmio: MmioRegion[] = [];
  /** CPU MMIO stores so far: checkers re-verify cached translations after a register change. */
  mmioWrites = 0;

  constructor(
    readonly ram: SparseRam,
    readonly cache: CpuCache,
  ) {}

  mapMmio(region: MmioRegion): void {
    for (const r of this.mmio) {
      if (region.base < r.base + r.size && r.base < region.base + region.size) {
        throw new Error(`MMIO window of ${region.target.name} overlaps ${r.target.name}`);
      }
    }
    this.mmio.push(region);
  }

  regions(): readonly MmioRegion[] {
    return this.mmio;
  }

  findMmio(pa: number): MmioRegion | undefined {
    for (const r of this.mmio) if (pa >= r.base && pa < r.base + r.size) return r;
    return undefined;
  }

  isRam(pa: number, len = 1): boolean {
    return this.ram.contains(pa, len);
  }

  cpuRead32(pa: number): number {
    if (this.ram.contains(pa, 4)) return this.cache.read32(pa);
    const r = this.findMmio(pa);
    if (!r) throw new BusError(pa, 'read', 'cpu');
    return r.target.read32(pa - r.base) >>> 0;
  }

  cpuWrite32(pa: number, value: number): void {
    if (this.ram.contains(pa, 4)) return this.cache.write32(pa, value >>> 0);
    const r = this.findMmio(pa);
    if (!r) throw new BusError(pa, 'write', 'cpu');
    this.mmioWrites++;
    r.target.write32(pa - r.base, value >>> 0);
  }

  /** A device's 32-bit RAM read (table walker). Coherent agents snoop the CPU cache. */
  devRead32(pa: number, coherent: boolean, agent: string): number {
    if (!this.ram.contains(pa, 4)) throw new BusError(pa, 'read', agent);
    return coherent && this.cache.size() > 0 ? this.cache.snoopRead32(pa) : this.ram.read32(pa);
  }
}
