/**
 * A tiny IOMMU driver and register block for testing the kernel layer end to end: a one-level page
 * table in RAM (4096 32-bit PTEs covering 16 MiB, PTE = pa | prot << 1 | valid), 4 KiB and 64 KiB
 * page sizes (a 64 KiB page is 16 PTEs), TTB/ENABLE/FLUSH registers, runtime-PM callbacks that
 * program the hardware, and (variant `link`) a stateless pm-runtime device link per master.
 */
import { Clock } from '../../core/clock';
import { runOp, type Op } from '../../core/coop';
import { FindingLog } from '../../core/findings';
import { Trace } from '../../core/trace';
import { num, type SocConfig } from '../../config/types';
import { Bus, type MmioTarget } from '../../mem/bus';
import { CpuCache } from '../../mem/cpu-cache';
import { SparseRam } from '../../mem/ram';
import { EEXIST, ENOMEM, ERANGE } from '../errno';
import type { IommuDomain, IommuOps } from '../iommu-core';
import { Kernel, type DriverContext, type KernelDriver, type KernelOptions } from '../kernel';
import { busPort, type KernelPort } from '../port';

export const FAKE_APERTURE = 16 << 20;
const TABLE_ORDER = 2;
const REG_ENABLE = 0x0;
const REG_TTB = 0x4;
const REG_FLUSH = 0x8;

/** The fake IOMMU's registers; counts flushes so tests can see iotlb syncs. */
export class FakeIommuHw implements MmioTarget {
  enable = 0;
  ttb = 0;
  flushes = 0;

  constructor(readonly name: string) {}

  read32(offset: number): number {
    if (offset === REG_ENABLE) return this.enable;
    if (offset === REG_TTB) return this.ttb;
    return 0;
  }

  write32(offset: number, value: number): void {
    if (offset === REG_ENABLE) this.enable = value & 1;
    else if (offset === REG_TTB) this.ttb = value;
    else if (offset === REG_FLUSH && value & 1) this.flushes++;
  }
}

interface FakeDomain {
  table: number;
}

function tableOf(d: IommuDomain): number {
  return (d.priv as FakeDomain).table;
}

export function fakeIommuDriver(model = 'arm-lpae'): KernelDriver {
  return {
    model,
    *probe(ctx: DriverContext): Op<IommuOps | number> {
      const { port, pages, core, pm } = ctx;
      const name = ctx.config.name;
      const base = num(ctx.config.reg[0]!.base);
      let current: IommuDomain | null = null;
      const variant: Record<string, string | number | boolean> = { flushTables: true, link: false, ...ctx.config.options };
      function* program(): Op<number> {
        if (!current || current.type === 'identity') {
          yield* port.writel(0, base + REG_ENABLE);
          return 0;
        }
        yield* port.writel(tableOf(current), base + REG_TTB);
        yield* port.writel(1, base + REG_FLUSH);
        yield* port.writel(1, base + REG_ENABLE);
        return 0;
      }
      pm.setOps(name, {
        runtimeResume: program,
        *runtimeSuspend() {
          yield* port.writel(0, base + REG_ENABLE);
          return 0;
        },
      });
      pm.enable(name);
      const pteAddr = (d: IommuDomain, iova: number): number => tableOf(d) + Math.floor(iova / 4096) * 4;
      const ops: IommuOps = {
        name,
        model,
        variant,
        pgsizeBitmap: 0x1000 | 0x10000,
        groupPolicy: 'single',
        identityDomain: true,
        *probeDevice(dev) {
          if (variant.link) yield* pm.linkAdd(dev, name, ['stateless', 'pm-runtime']);
          return 0;
        },
        *domainAllocPaging(d) {
          const t = pages.allocPages(TABLE_ORDER, { kind: 'pgtable', domain: d.id, level: 1, iommu: name }, { zero: true });
          if (t === null) return -ENOMEM;
          port.cleanDcache(t, 4096 << TABLE_ORDER);
          d.priv = { table: t } satisfies FakeDomain;
          d.geometry = { apertureStart: 0, apertureEnd: FAKE_APERTURE - 1, forceAperture: true };
          return 0;
        },
        *domainFree(d) {
          pages.freePages(tableOf(d), TABLE_ORDER);
        },
        *attachDev(d) {
          if (current === d) return 0;
          current = d;
          if (pm.isActive(name)) yield* program();
          return 0;
        },
        *mapPages(d, iova, pa, pgsize, pgcount, prot, out) {
          const bytes = pgsize * pgcount;
          if (iova + bytes > FAKE_APERTURE) return -ERANGE;
          for (let off = 0; off < bytes; off += 4096) {
            const a = pteAddr(d, iova + off);
            const old = yield* port.read32(a);
            if (old & 1) return -EEXIST;
            yield* port.write32(a, (pa + off + ((prot & 3) << 1) + 1) >>> 0);
            if (variant.flushTables) port.cleanDcache(a, 4);
            out.mapped += 4096;
          }
          return 0;
        },
        *unmapPages(d, iova, pgsize, pgcount, gather) {
          const bytes = pgsize * pgcount;
          let n = 0;
          while (n < bytes && iova + n < FAKE_APERTURE) {
            const a = pteAddr(d, iova + n);
            const pte = yield* port.read32(a);
            if (!(pte & 1)) break;
            yield* port.write32(a, 0);
            if (variant.flushTables) port.cleanDcache(a, 4);
            n += 4096;
          }
          if (n > 0) yield* core.gatherAddPage(d, gather, iova, n);
          return n;
        },
        *iovaToPhys(d, iova) {
          if (iova >= FAKE_APERTURE) return 0;
          const pte = yield* port.read32(pteAddr(d, iova));
          return pte & 1 ? ((pte & 0xfffff000) >>> 0) + (iova % 4096) : 0;
        },
        *iotlbSync(_d, gather) {
          if (!gather.isEmpty()) yield* port.writel(1, base + REG_FLUSH);
        },
        *flushIotlbAll() {
          yield* port.writel(1, base + REG_FLUSH);
        },
      };
      return ops;
    },
  };
}

export const RAM_BASE = 0x40000000;

export function fakeConfig(
  devices: { name: string; coherent?: boolean; iommu?: string | null }[] = [{ name: 'vpu' }, { name: 'de' }],
  options?: Record<string, string | number | boolean>,
): SocConfig {
  return {
    version: 1,
    name: 'fake',
    memory: [{ name: 'dram', base: RAM_BASE, size: 64 << 20 }],
    iommus: [{ name: 'iommu0', model: 'arm-lpae', reg: [{ base: 0x01000000, size: 0x1000 }], options }],
    devices: devices.map((d) => ({ name: d.name, iommu: d.iommu === undefined ? 'iommu0' : d.iommu, coherent: d.coherent })),
  };
}

export interface Rig {
  kernel: Kernel;
  ram: SparseRam;
  cache: CpuCache;
  bus: Bus;
  port: KernelPort;
  clock: Clock;
  trace: Trace;
  findings: FindingLog;
  hw: FakeIommuHw;
}

/** A booted kernel on the fake SoC. */
export function makeRig(opts: { config?: SocConfig; kernel?: Partial<KernelOptions> } = {}): Rig {
  const config = opts.config ?? fakeConfig();
  const clock = new Clock();
  const trace = new Trace(4096);
  const findings = new FindingLog(() => clock.now(), () => ({ seed: 0 }));
  const mem = config.memory[0]!;
  const ram = new SparseRam(num(mem.base), num(mem.size));
  const cache = new CpuCache(ram);
  const bus = new Bus(ram, cache);
  const hw = new FakeIommuHw('iommu0');
  bus.mapMmio({ base: num(config.iommus[0]!.reg[0]!.base), size: 0x1000, target: hw });
  const port = busPort(bus, (c) => clock.tick(c));
  const kernel = new Kernel({
    config,
    port,
    clock,
    trace,
    findings,
    drivers: [fakeIommuDriver()],
    zero: (pa, len) => cache.write(pa, new Uint8Array(len)),
    ...opts.kernel,
  });
  runOp(kernel.boot());
  return { kernel, ram, cache, bus, port, clock, trace, findings, hw };
}
