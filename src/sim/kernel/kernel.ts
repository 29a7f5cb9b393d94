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
import { liveRecord } from '../core/live-record';
import { variantProblem } from './drivers/variant';
import { PageAllocator, type PageAllocatorSnapshot, type PageAllocatorCheckpoint } from './page-alloc';
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
  /** The instance's clocks and reset line (config `clocks`, `resets`), as the clk and reset frameworks give them. */
  readonly clk: ClkBulk;
  readonly reset: ResetControl;
}

/** clk_bulk_prepare_enable / clk_bulk_disable_unprepare over the instance's clocks: refcounted per clock. */
export interface ClkBulk {
  prepareEnable(): number;
  disableUnprepare(): void;
}

/** reset_control_deassert / reset_control_assert over the instance's reset lines. */
export interface ResetControl {
  deassert(): number;
  assert(): number;
}

/** What the SoC lets the kernel drive: clock gates and reset controller lines, by name. */
export interface HardwareLines {
  setClock(name: string, on: boolean): void;
  setReset(name: string, asserted: boolean): void;
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
  /** Default domain type for groups (iommu.passthrough=1 gives 'identity'). */
  defaultDomainType?: 'dma' | 'identity';
  /** Where the current call comes from (script file:line), for findings. */
  callSite?: () => string | undefined;
  /** How an operation runs; default: to completion on the calling thread (single CPU). */
  exec?: <T>(op: Op<T>) => Promise<T>;
  observer?: KernelObserver;
  /** Clock gates and reset lines (absent: the clk and reset calls do nothing). */
  lines?: HardwareLines;
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
  /** Probe the drivers now (a no-op once booted); otherwise the first use of `kernel` does. */
  boot(): Promise<void>;
  domainAlloc(iommu: string, type?: DomainType): Promise<DomainHandle>;
  domainFree(d: DomainHandle): Promise<void>;
  attachDevice(d: DomainHandle, dev: string): Promise<number>;
  detachDevice(d: DomainHandle, dev: string): Promise<void>;
  /** iommu_attach_group: every device of the group at once (the H6 has one group for all masters). */
  attachGroup(d: DomainHandle, group: string): Promise<number>;
  detachGroup(d: DomainHandle, group: string): Promise<void>;
  /** The IOMMU group the device is in. */
  group(dev: string): string;
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
  /** The driver instance; variant is live (an assignment takes effect, checked as setVariant checks). */
  driver(iommu: string): {
    name: string;
    model: string;
    /** The C driver's source file, or null for the built-in TypeScript driver. */
    source: string | null;
    variant: Record<string, string | number | boolean>;
    setVariant(p: Record<string, unknown>): void;
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
  clkCounts: [string, number][];
}

export type KernelCheckpoint = Omit<KernelSnapshot, 'pages'> & { pages: PageAllocatorCheckpoint };

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
  /** The clk framework's enable counts: a gate goes off when its count drops to zero. */
  private clkCounts = new Map<string, number>();
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
    this.core = new IommuCore({ now, trace: opts.trace, findings: opts.findings, pages: this.pages, observer: opts.observer });
    this.dma = new DmaIommu({ core: this.core, pages: this.pages, port, now, trace: opts.trace, findings: opts.findings, callSite: opts.callSite });
    this.api = kernelApi(() => this);
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
        clk: this.clkBulk(i.clocks ?? []),
        reset: this.resetControl(i.resets ?? []),
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

  private clkBulk(names: readonly string[]): ClkBulk {
    return {
      prepareEnable: () => {
        for (const n of names) {
          const c = this.clkCounts.get(n) ?? 0;
          this.clkCounts.set(n, c + 1);
          if (c === 0) this.opts.lines?.setClock(n, true);
        }
        return 0;
      },
      disableUnprepare: () => {
        for (const n of names) {
          const c = this.clkCounts.get(n) ?? 0;
          if (c === 0) {
            this.log.warn(`clk ${n}: disabled more often than enabled`);
            continue;
          }
          this.clkCounts.set(n, c - 1);
          if (c === 1) this.opts.lines?.setClock(n, false);
        }
      },
    };
  }

  private resetControl(names: readonly string[]): ResetControl {
    return {
      deassert: () => {
        for (const n of names) this.opts.lines?.setReset(n, false);
        return 0;
      },
      assert: () => {
        for (const n of names) this.opts.lines?.setReset(n, true);
        return 0;
      },
    };
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

  /** The C driver's source file bound to that IOMMU, or null for the built-in TypeScript driver. */
  driverSource(iommu: string): string | null {
    return this.drivers.get(`instance:${iommu}`)?.source ?? null;
  }

  /** Whether snapshot can run now (no driver call suspended mid-way). */
  snapshotReady(): boolean {
    return this.core.snapshotReady();
  }

  /** The whole kernel state, for explorer checkpoints (drivers through their snapshot hooks). */
  snapshot(): KernelSnapshot {
    return { pages: this.pages.snapshot(), pm: this.pm.snapshot(), core: this.core.snapshot(), dma: this.dma.snapshot(), kprobes: this.kprobes.snapshot(), clkCounts: [...this.clkCounts] };
  }

  /** After the clock was restored: PM timers are re-armed on it. */
  restore(s: KernelSnapshot): void {
    this.pages.restore(s.pages);
    this.restoreRest(s);
  }

  /** The explorer's checkpoint: the page allocator (state per allocated page) copy-on-write, the rest snapshotted. */
  checkpoint(): KernelCheckpoint {
    return { pages: this.pages.checkpoint(), pm: this.pm.snapshot(), core: this.core.snapshot(), dma: this.dma.snapshot(), kprobes: this.kprobes.snapshot(), clkCounts: [...this.clkCounts] };
  }

  /** Back to cp (the latest checkpoint); after the clock was restored, as restore. */
  rollback(cp: KernelCheckpoint): void {
    this.pages.rollback(cp.pages);
    this.restoreRest(cp);
  }

  private restoreRest(s: Omit<KernelSnapshot, 'pages'>): void {
    this.pm.restore(s.pm);
    this.core.restore(s.core);
    this.dma.restore(s.dma);
    this.kprobes.restore(s.kprobes);
    this.clkCounts = new Map(s.clkCounts);
  }

  /** Interrupt lines with a handler: the config's IRQ of every probed IOMMU whose driver has one. */
  irqHandlers(): { line: number; iommu: string }[] {
    return this.opts.config.iommus.flatMap((i) => (i.irq !== undefined && this.core.iommu(i.name)?.irq ? [{ line: i.irq, iommu: i.name }] : []));
  }

  /** The GIC delivers the line: the IOMMU's handler runs to completion now. True for IRQ_HANDLED. */
  deliverIrq(iommu: string): boolean {
    const irq = this.core.iommu(iommu)?.irq;
    if (!irq) return false;
    const handled = this.runNow(irq());
    if (this.pm.hasWork()) this.runNow(this.pm.runWork());
    return handled;
  }

  /** A script's domain handle back to the domain. */
  domain(h: DomainHandle): IommuDomain {
    const d = this.core.domain(h.id);
    if (!d) throw new Error(`no IOMMU domain with id ${h.id}`);
    return d;
  }
}

/**
 * The script API over the kernel get() returns. get() runs at each call, not before: the SoC
 * passes one that boots the kernel on first use, so a script that never touches `kernel` leaves
 * every block as reset left it.
 */
export function kernelApi(get: () => Kernel, boot: () => void = () => undefined): KernelApi {
  const run = <T>(op: () => Op<T>): Promise<T> => {
    const k = get();
    return k.run(op());
  };
  const core = (): IommuCore => get().core;
  const dom = (h: DomainHandle): IommuDomain => get().domain(h);
  const ops = (iommu: string): IommuOps => {
    const o = core().iommu(iommu);
    if (!o) throw new Error(`no probed IOMMU '${iommu}'`);
    return o;
  };
  const pm = (): RuntimePm => get().pm;
  const dma = (): DmaIommu => get().dma;
  return {
    boot: async () => boot(),
    domainAlloc: async (iommu, type = 'unmanaged') => {
      ops(iommu);
      const r = await run(() => core().domainAlloc(iommu, type));
      if (typeof r === 'number') throw new KernelError(`iommu_domain_alloc(${iommu}, ${type})`, r);
      return core().handle(r);
    },
    domainFree: (h) => run(() => core().domainFree(dom(h))),
    attachDevice: (h, dev) => run(() => core().attachDevice(dom(h), dev)),
    detachDevice: (h, dev) => run(() => core().detachDevice(dom(h), dev)),
    attachGroup: (h, group) => run(() => core().attachGroup(dom(h), group)),
    detachGroup: (h, group) => run(() => core().detachGroup(dom(h), group)),
    group: (dev) => core().groupName(dev),
    map: (h, iova, pa, size, prot) => run(() => core().map(dom(h), Number(iova), Number(pa), size, prot)),
    unmap: (h, iova, size) => run(() => core().unmap(dom(h), Number(iova), size)),
    iovaToPhys: (h, iova) => run(() => core().iovaToPhys(dom(h), Number(iova))),
    IOMMU_READ,
    IOMMU_WRITE,
    IOMMU_CACHE,
    IOMMU_NOEXEC,
    IOMMU_MMIO,
    IOMMU_PRIV,
    allocPages: async (count = 1) => {
      if (!Number.isSafeInteger(count) || count < 1) throw new TypeError(`kernel.allocPages: count must be a positive integer, got ${String(count)}`);
      const pa = get().pages.allocExact(count, { kind: 'script' }, { zero: true });
      if (pa === null) throw new KernelError(`alloc_pages(${count})`, -ENOMEM);
      return pa;
    },
    freePages: async (pa) => get().pages.freePages(Number(pa)),
    dma: {
      mapSingle: (dev, pa, size, dir) => run(() => dma().mapSingle(dev, Number(pa), size, dir)),
      unmapSingle: (dev, iova, size, dir) => run(() => dma().unmapSingle(dev, Number(iova), size, dir)),
      allocCoherent: async (dev, size, o) => {
        const b = await run(() => dma().allocCoherent(dev, size, o));
        if (!b) throw new KernelError(`dma_alloc_coherent(${dev}, ${size})`, -ENOMEM);
        return b;
      },
      freeCoherent: (dev, size, iova) => run(() => dma().freeCoherent(dev, size, Number(iova))),
      mapSg: async (dev, segs, dir) => {
        const r = await run(() => dma().mapSg(dev, segs.map((s) => ({ pa: Number(s.pa), len: s.len })), dir));
        return typeof r === 'number' ? [] : r;
      },
      unmapSg: (dev, segs, dir) => run(() => dma().unmapSg(dev, segs, dir)),
      syncSingleForCpu: (dev, iova, size, dir) => run(() => dma().syncSingleForCpu(dev, Number(iova), size, dir)),
      syncSingleForDevice: (dev, iova, size, dir) => run(() => dma().syncSingleForDevice(dev, Number(iova), size, dir)),
    },
    pm: {
      getSync: (dev) => run(() => pm().getSync(dev)),
      put: (dev) => run(() => pm().put(dev)),
      putSync: (dev) => run(() => pm().putSync(dev)),
      putAutosuspend: (dev) => run(() => pm().putAutosuspend(dev)),
      getIfInUse: (dev) => pm().getIfInUse(dev),
      markLastBusy: (dev) => pm().markLastBusy(dev),
      status: (dev) => pm().status(dev),
      state: (dev) => pm().state(dev),
      setControl: (dev, value) => run(() => pm().setControl(dev, value)),
      setEnabled: (on) => pm().setEnabled(on),
      useAutosuspend: (dev, use) => run(() => pm().useAutosuspend(dev, use)),
      setAutosuspendDelay: (dev, ms) => run(() => pm().setAutosuspendDelay(dev, ms)),
    },
    deviceLinkAdd: async (consumer, supplier, flags) => {
      const l = await run(() => pm().linkAdd(consumer, supplier, flags));
      if (!l) throw new Error(`device_link_add(${consumer}, ${supplier}, ${flags.join('|')}) returned NULL`);
    },
    deviceLinkDel: async (consumer, supplier) => {
      await run(() => pm().linkDel(consumer, supplier));
    },
    driver: (iommu) => {
      const o = ops(iommu);
      const setVariant = (p: Record<string, unknown>): void => {
        // Every key is checked before any applies: a bad change leaves the driver as it was.
        for (const [k, v] of Object.entries(p)) {
          const problem = variantProblem(iommu, o.variant, k, v);
          if (problem) throw new TypeError(problem);
        }
        Object.assign(o.variant, p);
        o.variantChanged?.();
      };
      return {
        name: o.name,
        model: o.model,
        source: get().driverSource(iommu),
        variant: liveRecord(`kernel.driver('${iommu}').variant`, { read: () => ({ ...o.variant }), write: (k, v) => setVariant({ [k]: v }) }),
        setVariant,
      };
    },
    kprobe: async (symbol, handler) => get().kprobes.register(symbol, 'entry', () => handler()),
    kretprobe: async (symbol, handler) => get().kprobes.register(symbol, 'return', () => handler()),
    unregisterKprobe: async (id) => get().kprobes.unregister(id),
    kprobeSymbols: () => get().kprobes.known(),
    handleIrq: (iommu) => {
      const o = ops(iommu);
      const irq = o.irq;
      return irq ? run(() => irq()) : Promise.resolve(false);
    },
  };
}
