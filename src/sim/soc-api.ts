/**
 * The script API's `soc` object (script-api.md): plain functions returning plain data, since it is
 * copied into the QuickJS sandbox. Calls that may one day be preempted by the scheduler return
 * Promises; pure views return values (scripts await everything anyway).
 */
import type { SocConfig } from './config/types';
import type { Op } from './core/coop';
import type { Finding } from './core/findings';
import type { DmaResult } from './hw/dma-master';
import type { IrqLineState } from './hw/irq';
import type { Fault, IommuStats, TlbEntry, WalkCacheEntry } from './hw/types';
import type { BlockInfo } from '../shared/session-api';
import type { Soc } from './soc';

export type { DmaResult };

export interface IommuBinding {
  name: string;
  model: string;
  tlb(): TlbEntry[];
  walkCache(): WalkCacheEntry[];
  faults(): Fault[];
  stats(): IommuStats;
}

export interface DeviceBinding {
  name: string;
  iommu: string | null;
  dma: {
    read(iova: number | bigint, len: number): Promise<DmaResult>;
    write(iova: number | bigint, bytes: Uint8Array | number[]): Promise<DmaResult>;
    copy(srcIova: number | bigint, dstIova: number | bigint, len: number): Promise<DmaResult>;
  };
}

export interface SocBindings {
  config: SocConfig;
  iommus(): string[];
  devices(): string[];
  now(): number;
  run(cycles: number): Promise<void>;
  readl(pa: number | bigint): Promise<number>;
  writel(value: number, pa: number | bigint): Promise<void>;
  reg(block: string, reg: string): Promise<number>;
  setReg(block: string, reg: string, value: number): Promise<void>;
  mem: {
    read(pa: number | bigint, len: number): Promise<Uint8Array>;
    write(pa: number | bigint, bytes: Uint8Array | number[]): Promise<void>;
    clean(pa: number | bigint, len: number): Promise<void>;
    invalidate(pa: number | bigint, len: number): Promise<void>;
  };
  iommu(name: string): IommuBinding;
  device(name: string): DeviceBinding;
  findings(): Finding[];
  takeFindings(): Finding[];
  /** Beyond script-api.md: blocks, interrupt lines and power domains. */
  blocks(): BlockInfo[];
  irqs(): IrqLineState[];
  irq(line: number): boolean;
  setPower(domain: string, on: boolean): Promise<void>;
  /** A reset controller line: asserted holds its blocks in reset. */
  reset(line: string, asserted: boolean): Promise<void>;
  /** A clock gate on or off. */
  clock(line: string, on: boolean): Promise<void>;
}

function addr(v: number | bigint, what: string): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new TypeError(`${what}: bad address ${String(v)}`);
  return n;
}

function length(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`${what}: bad length ${String(v)}`);
  return v;
}

const bytesOf = (b: Uint8Array | number[]): Uint8Array => (b instanceof Uint8Array ? b : Uint8Array.from(b));

const plainResult = (r: DmaResult): DmaResult => {
  const out: DmaResult = { ok: r.ok };
  if (r.data) out.data = r.data;
  if (r.fault) out.fault = { ...r.fault };
  return out;
};

export function createSocBindings(soc: Soc): SocBindings {
  const ram = (pa: number | bigint, len: number, what: string): number => {
    const a = addr(pa, what);
    if (!soc.ram.contains(a, length(len, what))) throw new RangeError(`${what}: [0x${a.toString(16)}, +0x${len.toString(16)}) is not RAM`);
    return a;
  };
  const iommuBinding = (name: string): IommuBinding => {
    const i = soc.iommu(name);
    return {
      name: i.name,
      model: i.model,
      tlb: () => i.tlb(),
      walkCache: () => i.walkCache(),
      faults: () => i.faults(),
      stats: () => i.stats(),
    };
  };
  const deviceBinding = (name: string): DeviceBinding => {
    const d = soc.device(name);
    return {
      name: d.name,
      iommu: d.iommu?.name ?? null,
      // Transfers go through the SoC's executor: beat by beat under the explorer's scheduler.
      dma: {
        read: async (iova, len) => plainResult(await soc.execOp(d.readOp(addr(iova, 'dma.read'), length(len, 'dma.read')))),
        write: async (iova, bytes) => plainResult(await soc.execOp(d.writeOp(addr(iova, 'dma.write'), bytesOf(bytes)))),
        copy: async (src, dst, len) => plainResult(await soc.execOp(d.copyOp(addr(src, 'dma.copy'), addr(dst, 'dma.copy'), length(len, 'dma.copy')))),
      },
    };
  };
  /** A CPU register or memory access as one preemptible step (an explorer thread may poke registers). */
  function* access<T>(pa: number, write: boolean, run: () => T): Op<T> {
    const ram = soc.ram.contains(pa, 4);
    yield { kind: ram ? (write ? 'mem-write' : 'mem-read') : write ? 'mmio-write' : 'mmio-read', pa, who: 'script' };
    return run();
  }
  return {
    config: structuredClone(soc.config),
    iommus: () => soc.iommus(),
    devices: () => soc.devices(),
    now: () => soc.clock.now(),
    run: async (cycles) => soc.run(cycles),
    readl: async (pa) => {
      const a = addr(pa, 'readl');
      return soc.execOp(access(a, false, () => soc.readl(a)));
    },
    writel: async (value, pa) => {
      const a = addr(pa, 'writel');
      return soc.execOp(access(a, true, () => soc.writel(value, a)));
    },
    reg: async (block, reg) => soc.execOp(access(soc.regAddress(block, reg), false, () => soc.readReg(block, reg))),
    setReg: async (block, reg, value) => soc.execOp(access(soc.regAddress(block, reg), true, () => soc.writeReg(block, reg, value))),
    mem: {
      read: async (pa, len) => soc.cache.read(ram(pa, len, 'mem.read'), len),
      write: async (pa, bytes) => {
        const b = bytesOf(bytes);
        soc.cache.write(ram(pa, b.length, 'mem.write'), b);
      },
      clean: async (pa, len) => soc.cache.clean(ram(pa, len, 'mem.clean'), len),
      invalidate: async (pa, len) => soc.cache.invalidate(ram(pa, len, 'mem.invalidate'), len),
    },
    iommu: iommuBinding,
    device: deviceBinding,
    findings: () => soc.findings.list(),
    takeFindings: () => soc.findings.take(),
    blocks: () => soc.blocks(),
    irqs: () => soc.irqs.list(),
    irq: (line) => soc.irqs.level(line),
    setPower: async (domain, on) => soc.powerDomain(domain).set(on),
    reset: async (line, asserted) => {
      if (typeof asserted !== 'boolean') throw new TypeError(`reset(${line}): asserted must be a boolean, not ${String(asserted)}`);
      soc.resetLine(line).set(asserted);
    },
    clock: async (line, on) => {
      if (typeof on !== 'boolean') throw new TypeError(`clock(${line}): on must be a boolean, not ${String(on)}`);
      soc.clockGate(line).on = on;
    },
  };
}
