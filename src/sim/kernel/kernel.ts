/**
 * The kernel aggregate: page allocator, runtime PM, IOMMU core, dma-iommu and the IOMMU drivers
 * (registered by config model name), booted from a SoC config, and the script-api `kernel` object
 * over them (plain async functions taking and returning plain data).
 */
import { runOp, type Op } from '../core/coop';
import type { FindingSink } from '../core/findings';
import type { Trace } from '../core/trace';
import { num, type DeviceConfig, type IommuConfig, type SocConfig } from '../config/types';
import { DmaIommu, type CoherentBacking, type CoherentBuffer, type DmaDirection, type DmaSegment } from './dma-iommu';
import { ENOMEM, errname } from './errno';
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuCore,
  type IommuCoreObserver,
  type DomainHandle,
  type DomainType,
  type IommuDomain,
  type IommuCoreSnapshot,
  type IommuOps,
} from './iommu-core';
import { KernelLog } from './klog';
import { Kprobes } from './kprobes';
import { PageAllocator, type PageAllocatorSnapshot } from './page-alloc';
import { RuntimePm, type LinkFlag, type PmClock, type PmDeviceState, type PmSnapshot, type RpmStatus } from './pm';
import type { KernelPort } from './port';

/** What a driver's probe gets: the kernel services, as a platform driver would reach them. */
export interface DriverContext {
  /** The instance's name and config entry (registers, IRQ, options). */
  readonly config: IommuConfig;
  /** The masters behind this instance. */
  readonly devices: readonly DeviceConfig[];
  readonly port: KernelPort;
  readonly pages: PageAllocator;
  readonly pm: RuntimePm;
  readonly core: IommuCore;
  readonly log: KernelLog;
  readonly findings?: FindingSink;
  readonly now: () => number;
  /** Simulated cycles per microsecond, for poll intervals and timeouts. */
  readonly cyclesPerUs: number;
  /** Where the driver declares its probe-able functions and fires their probes. */
  readonly kprobes: Kprobes;
}

/**
 * An IOMMU driver (sun50i-iommu, rockchip-iommu, mtk_iommu, arm-smmu...): registered by the config
 * model it drives; probe builds one instance from its config entry and returns its ops (with its
 * variant object) or -errno. Probe may register runtime-PM callbacks and enable runtime PM for the
 * instance (ctx.pm, device name = config name); probeDevice may add device links.
 */
export interface KernelDriver {
  readonly model: string;
  /** Bound to one IOMMU instance (a C driver from the config's "driver"), overriding the model's driver there. */
  readonly instance?: string;
  /** The C source a compiled driver came from (kernel.driver(name).source). */
  readonly source?: string;
  probe(ctx: DriverContext): Op<IommuOps | number>;
}

export interface KernelOptions {
  config: SocConfig;
  port: KernelPort;
  clock: PmClock;
  trace?: Trace;
  findings?: FindingSink;
  drivers: Iterable<KernelDriver>;
  /** memset(0) through the CPU cache; default: 32-bit CPU stores through the port, not preemptible. */
  zero?: (pa: number, len: number) => void;
  /** RAM the page allocator manages (default: every config memory range). */
  ram?: { base: number; size: number }[];
  cyclesPerMs?: number;
  attachPolicy?: 'strict' | 'group';
  /** Default domain type for groups (iommu.passthrough=1 gives 'identity'). */
  defaultDomainType?: 'dma' | 'identity';
  /** Where the current call comes from (script file:line), for findings. */
  callSite?: () => string | undefined;
  /** How an operation runs; default: to completion on the calling thread (single CPU). */
  exec?: <T>(op: Op<T>) => Promise<T>;
  observer?: KernelObserver;
}

/** What the checkers are told of the kernel: the core's work, and where each kernel call starts and ends. */
export interface KernelObserver extends IommuCoreObserver {
  /** A kernel call (or the PM work it queued) starts running; calls of several threads may overlap. */
  opBegin(): void;
  /** It ended (returned or threw). */
  opEnd(): void;
}

/** A kernel call that failed where the C API would return NULL / ERR_PTR. */
export class KernelError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call} failed: ${errname(errno)}`);
    this.name = 'KernelError';
  }
}

type Addr = number | bigint;

/** The script-api.md `kernel` object. */
export interface KernelApi {
  domainAlloc(iommu: string, type?: DomainType): Promise<DomainHandle>;
  domainFree(d: DomainHandle): Promise<void>;
  attachDevice(d: DomainHandle, dev: string): Promise<number>;
  detachDevice(d: DomainHandle, dev: string): Promise<void>;
  map(d: DomainHandle, iova: Addr, pa: Addr, size: number, prot: number): Promise<number>;
  unmap(d: DomainHandle, iova: Addr, size: number): Promise<number>;
  iovaToPhys(d: DomainHandle, iova: Addr): Promise<number>;
  readonly IOMMU_READ: number;
  readonly IOMMU_WRITE: number;
  readonly IOMMU_CACHE: number;
  readonly IOMMU_NOEXEC: number;
  readonly IOMMU_MMIO: number;
  readonly IOMMU_PRIV: number;
  allocPages(count?: number): Promise<number>;
  freePages(pa: Addr): Promise<void>;
  dma: {
    mapSingle(dev: string, pa: Addr, size: number, dir: DmaDirection): Promise<number>;
    unmapSingle(dev: string, iova: Addr, size: number, dir: DmaDirection): Promise<void>;
    allocCoherent(dev: string, size: number, opts?: { backing?: CoherentBacking }): Promise<CoherentBuffer>;
    freeCoherent(dev: string, size: number, iova: Addr): Promise<void>;
    mapSg(dev: string, segments: { pa: Addr; len: number }[], dir: DmaDirection): Promise<DmaSegment[]>;
    unmapSg(dev: string, segments: DmaSegment[], dir: DmaDirection): Promise<void>;
    syncSingleForCpu(dev: string, iova: Addr, size: number, dir: DmaDirection): Promise<void>;
    syncSingleForDevice(dev: string, iova: Addr, size: number, dir: DmaDirection): Promise<void>;
  };
  pm: {
    getSync(dev: string): Promise<number>;
    put(dev: string): Promise<number>;
    putSync(dev: string): Promise<number>;
    putAutosuspend(dev: string): Promise<number>;
    getIfInUse(dev: string): number;
    markLastBusy(dev: string): void;
    status(dev: string): RpmStatus;
    state(dev: string): PmDeviceState;
    setControl(dev: string, value: 'on' | 'auto'): Promise<number>;
    setEnabled(enabled: boolean): void;
    useAutosuspend(dev: string, use: boolean): Promise<void>;
    setAutosuspendDelay(dev: string, ms: number): Promise<void>;
  };
  deviceLinkAdd(consumer: string, supplier: string, flags: LinkFlag[]): Promise<void>;
  deviceLinkDel(consumer: string, supplier: string): Promise<void>;
  /** The driver instance; variant is a snapshot, changed through setVariant. */
  driver(iommu: string): {
    name: string;
    model: string;
    /** The C driver's source file, or null for the built-in TypeScript driver. */
    source: string | null;
    variant: Record<string, string | number | boolean>;
    setVariant(p: Record<string, string | number | boolean>): void;
  };
  /** register_kprobe: handler runs when kernel code enters symbol. Returns the probe id. */
  kprobe(symbol: string, handler: () => unknown): Promise<number>;
  /** register_kretprobe: handler runs when the function returns. */
  kretprobe(symbol: string, handler: () => unknown): Promise<number>;
  unregisterKprobe(id: number): Promise<void>;
  /** The probe-able symbols of the probed drivers. */
  kprobeSymbols(): string[];
  /** Run the IOMMU driver's interrupt handler, as the GIC would on its line: true if handled. */
  handleIrq(iommu: string): Promise<boolean>;
}

export interface KernelSnapshot {
  pages: PageAllocatorSnapshot;
  pm: PmSnapshot;
  core: IommuCoreSnapshot;
  dma: ReturnType<DmaIommu['snapshot']>;
  kprobes: ReturnType<Kprobes['snapshot']>;
}

export class Kernel {
  /** How operations run (the explorer swaps in its scheduler); default: to completion, at once. */
  exec: (<T>(op: Op<T>) => Promise<T>) | undefined;
  readonly pages: PageAllocator;
  readonly pm: RuntimePm;
  readonly core: IommuCore;
  readonly dma: DmaIommu;
  readonly log: KernelLog;
  readonly kprobes = new Kprobes();
  readonly api: KernelApi;
  private readonly drivers = new Map<string, KernelDriver>();
  private readonly now: () => number;

  constructor(private readonly opts: KernelOptions) {
    const now = (): number => opts.clock.now();
    this.now = now;
    this.exec = opts.exec;
    for (const d of opts.drivers) this.drivers.set(d.instance === undefined ? d.model : `instance:${d.instance}`, d);
    const port = opts.port;
    const zero =
      opts.zero ??
      ((pa: number, len: number): void => {
        for (let a = pa; a < pa + len; a += 4) runOp(port.write32(a, 0));
      });
    this.log = new KernelLog(now, opts.trace, opts.findings);
    this.pages = new PageAllocator(opts.ram ?? opts.config.memory.map((m) => ({ base: num(m.base), size: num(m.size) })), {
      now,
      findings: opts.findings,
      trace: opts.trace,
      zero,
    });
    this.pm = new RuntimePm({ clock: opts.clock, trace: opts.trace, findings: opts.findings, cyclesPerMs: opts.cyclesPerMs });
    this.core = new IommuCore({ now, trace: opts.trace, findings: opts.findings, pages: this.pages, attachPolicy: opts.attachPolicy, observer: opts.observer });
    this.dma = new DmaIommu({ core: this.core, pages: this.pages, port, now, trace: opts.trace, findings: opts.findings, callSite: opts.callSite });
    this.api = this.makeApi();
  }

  /**
   * Boot: probe every IOMMU whose model has a driver, then add every master (iommu_probe_device for
   * those behind a probed IOMMU) and enable its runtime PM, as its driver would at probe.
   */
  *boot(): Op<void> {
    const cfg = this.opts.config;
    for (const i of cfg.iommus) this.pm.addDevice(i.name);
    for (const d of cfg.devices) this.pm.addDevice(d.name);
    for (const i of cfg.iommus) {
      const drv = this.drivers.get(`instance:${i.name}`) ?? this.drivers.get(i.model);
      if (!drv) {
        this.log.printk('warn', `${i.name}: no driver for model '${i.model}'`, i.name);
        continue;
      }
      const ctx: DriverContext = {
        config: i,
        devices: cfg.devices.filter((d) => d.iommu === i.name),
        port: this.opts.port,
        pages: this.pages,
        pm: this.pm,
        core: this.core,
        log: this.log,
        findings: this.opts.findings,
        now: this.now,
        cyclesPerUs: (this.opts.cyclesPerMs ?? 1000) / 1000,
        kprobes: this.kprobes,
      };
      const r = yield* drv.probe(ctx);
      if (typeof r === 'number') {
        this.log.printk('err', `${i.name}: probe failed: ${errname(r)}`, i.name);
        continue;
      }
      this.core.registerIommu(r);
    }
    for (const d of cfg.devices) {
      this.dma.addDevice({ name: d.name, coherent: d.coherent ?? false });
      if (d.iommu && this.core.iommu(d.iommu)) {
        const r = yield* this.core.probeDevice(d.name, d.iommu, this.opts.defaultDomainType);
        if (r < 0) this.log.printk('err', `${d.name}: iommu_probe_device failed: ${errname(r)}`, d.name);
      }
      this.pm.enable(d.name);
    }
    yield* this.pm.runWork();
  }

  /** Run an operation (and then the PM work it queued) the way the options say. */
  run<T>(op: Op<T>): Promise<T> {
    const exec = this.exec;
    if (exec) return exec(this.observed(op)).then((v) => (this.pm.hasWork() ? exec(this.observed(this.pm.runWork())).then(() => v) : v));
    const v = this.runNow(op);
    if (this.pm.hasWork()) this.runNow(this.pm.runWork());
    return Promise.resolve(v);
  }

  /** op to completion on this thread, bracketed like observed() but without its generator layer. */
  private runNow<T>(op: Op<T>): T {
    const o = this.opts.observer;
    if (!o) return runOp(op);
    o.opBegin();
    try {
      return runOp(op);
    } finally {
      o.opEnd();
    }
  }

  /** op, bracketed by the observer's opBegin and opEnd. */
  private *observed<T>(op: Op<T>): Op<T> {
    const o = this.opts.observer;
    if (!o) return yield* op;
    o.opBegin();
    try {
      return yield* op;
    } finally {
      o.opEnd();
    }
  }

  /** The whole kernel state, for explorer checkpoints (drivers through their snapshot hooks). */
  snapshot(): KernelSnapshot {
    return { pages: this.pages.snapshot(), pm: this.pm.snapshot(), core: this.core.snapshot(), dma: this.dma.snapshot(), kprobes: this.kprobes.snapshot() };
  }

  /** After the clock was restored: PM timers are re-armed on it. */
  restore(s: KernelSnapshot): void {
    this.pages.restore(s.pages);
    this.pm.restore(s.pm);
    this.core.restore(s.core);
    this.dma.restore(s.dma);
    this.kprobes.restore(s.kprobes);
  }

  /** A script's domain handle back to the domain. */
  domain(h: DomainHandle): IommuDomain {
    const d = this.core.domain(h.id);
    if (!d) throw new Error(`no IOMMU domain with id ${h.id}`);
    return d;
  }

  private makeApi(): KernelApi {
    const core = this.core;
    const dma = this.dma;
    const pm = this.pm;
    const pages = this.pages;
    const run = <T>(op: Op<T>): Promise<T> => this.run(op);
    const dom = (h: DomainHandle): IommuDomain => this.domain(h);
    const ops = (iommu: string): IommuOps => {
      const o = core.iommu(iommu);
      if (!o) throw new Error(`no probed IOMMU '${iommu}'`);
      return o;
    };
    return {
      domainAlloc: async (iommu, type = 'unmanaged') => {
        ops(iommu);
        const r = await run(core.domainAlloc(iommu, type));
        if (typeof r === 'number') throw new KernelError(`iommu_domain_alloc(${iommu}, ${type})`, r);
        return core.handle(r);
      },
      domainFree: (h) => run(core.domainFree(dom(h))),
      attachDevice: (h, dev) => run(core.attachDevice(dom(h), dev)),
      detachDevice: (h, dev) => run(core.detachDevice(dom(h), dev)),
      map: (h, iova, pa, size, prot) => run(core.map(dom(h), Number(iova), Number(pa), size, prot)),
      unmap: (h, iova, size) => run(core.unmap(dom(h), Number(iova), size)),
      iovaToPhys: (h, iova) => run(core.iovaToPhys(dom(h), Number(iova))),
      IOMMU_READ,
      IOMMU_WRITE,
      IOMMU_CACHE,
      IOMMU_NOEXEC,
      IOMMU_MMIO,
      IOMMU_PRIV,
      allocPages: async (count = 1) => {
        const pa = pages.allocExact(Math.max(1, Math.ceil(count)), { kind: 'script' }, { zero: true });
        if (pa === null) throw new KernelError(`alloc_pages(${count})`, -ENOMEM);
        return pa;
      },
      freePages: async (pa) => pages.freePages(Number(pa)),
      dma: {
        mapSingle: (dev, pa, size, dir) => run(dma.mapSingle(dev, Number(pa), size, dir)),
        unmapSingle: (dev, iova, size, dir) => run(dma.unmapSingle(dev, Number(iova), size, dir)),
        allocCoherent: async (dev, size, o) => {
          const b = await run(dma.allocCoherent(dev, size, o));
          if (!b) throw new KernelError(`dma_alloc_coherent(${dev}, ${size})`, -ENOMEM);
          return b;
        },
        freeCoherent: (dev, size, iova) => run(dma.freeCoherent(dev, size, Number(iova))),
        mapSg: async (dev, segs, dir) => {
          const r = await run(dma.mapSg(dev, segs.map((s) => ({ pa: Number(s.pa), len: s.len })), dir));
          return typeof r === 'number' ? [] : r;
        },
        unmapSg: (dev, segs, dir) => run(dma.unmapSg(dev, segs, dir)),
        syncSingleForCpu: (dev, iova, size, dir) => run(dma.syncSingleForCpu(dev, Number(iova), size, dir)),
        syncSingleForDevice: (dev, iova, size, dir) => run(dma.syncSingleForDevice(dev, Number(iova), size, dir)),
      },
      pm: {
        getSync: (dev) => run(pm.getSync(dev)),
        put: (dev) => run(pm.put(dev)),
        putSync: (dev) => run(pm.putSync(dev)),
        putAutosuspend: (dev) => run(pm.putAutosuspend(dev)),
        getIfInUse: (dev) => pm.getIfInUse(dev),
        markLastBusy: (dev) => pm.markLastBusy(dev),
        status: (dev) => pm.status(dev),
        state: (dev) => pm.state(dev),
        setControl: (dev, value) => run(pm.setControl(dev, value)),
        setEnabled: (on) => pm.setEnabled(on),
        useAutosuspend: (dev, use) => run(pm.useAutosuspend(dev, use)),
        setAutosuspendDelay: (dev, ms) => run(pm.setAutosuspendDelay(dev, ms)),
      },
      deviceLinkAdd: async (consumer, supplier, flags) => {
        const l = await run(pm.linkAdd(consumer, supplier, flags));
        if (!l) throw new Error(`device_link_add(${consumer}, ${supplier}, ${flags.join('|')}) returned NULL`);
      },
      deviceLinkDel: async (consumer, supplier) => {
        await run(pm.linkDel(consumer, supplier));
      },
      driver: (iommu) => {
        const o = ops(iommu);
        return {
          name: o.name,
          model: o.model,
          source: this.drivers.get(`instance:${iommu}`)?.source ?? null,
          variant: { ...o.variant },
          setVariant: (p) => {
            for (const [k, v] of Object.entries(p)) {
              const cur = o.variant[k];
              if (cur !== undefined && typeof cur !== typeof v) throw new TypeError(`${iommu}: variant ${k} is a ${typeof cur}, not ${JSON.stringify(v)}`);
            }
            Object.assign(o.variant, p);
            o.variantChanged?.();
          },
        };
      },
      kprobe: async (symbol, handler) => this.kprobes.register(symbol, 'entry', () => handler()),
      kretprobe: async (symbol, handler) => this.kprobes.register(symbol, 'return', () => handler()),
      unregisterKprobe: async (id) => this.kprobes.unregister(id),
      kprobeSymbols: () => this.kprobes.known(),
      handleIrq: (iommu) => {
        const o = ops(iommu);
        return o.irq ? run(o.irq()) : Promise.resolve(false);
      },
    };
  }
}

