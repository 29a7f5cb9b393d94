/**
 * A SoC built from a validated config: RAM, the CPU cache, the bus with every MMIO window, the clock,
 * trace and findings, power domains, clocks, interrupt lines, IOMMUs and DMA masters. Everything the
 * engine, the session and the script API need from the hardware goes through this object.
 */
import { Checkers, type CheckersSnapshot } from './check/checkers';
import { Clock } from './core/clock';
import { FindingLog } from './core/findings';
import { Rng } from './core/rng';
import { Trace } from './core/trace';
import { ConfigBuildError } from './config/build-error';
import { num, type IommuConfig, type SocConfig } from './config/types';
import { Bus } from './mem/bus';
import { CpuCache, type CpuCacheSnapshot } from './mem/cpu-cache';
import { SparseRam, type RamSnapshot } from './mem/ram';
import type { BlockMeta, RegisterFile } from './regs/dsl';
import { DmaMaster, type DmaMasterSnapshot } from './hw/dma-master';
import { IrqLines } from './hw/irq';
import { ClockGate, gateMmio, PowerDomain, ResetLine } from './hw/power';
import { createArmSmmu } from './hw/arm-smmu';
import { createMtkV7sIommu } from './hw/mtk-v7s';
import { createIommuRegistry, type IommuFactory } from './hw/registry';
import { createRockchipIommu } from './hw/rockchip';
import { createSun50iH6Iommu } from './hw/sun50i-h6';
import type { HwContext, IommuModel } from './hw/types';
import type { Finding } from './core/findings';
import { runOp, type Op } from './core/coop';
import type { Executor } from './core/scheduler';
import { iommuDrivers } from './kernel/drivers';
import { Kernel, type KernelDriver, type KernelSnapshot } from './kernel/kernel';
import { busPort } from './kernel/port';
import type { BlockInfo, KernelMode } from '../shared/session-api';

/** The IOMMU models the engine can build, by config `model`. */
export const IOMMU_MODELS: ReadonlyMap<string, IommuFactory> = createIommuRegistry({
  'sun50i-h6': createSun50iH6Iommu,
  rockchip: createRockchipIommu,
  'mtk-v7s': createMtkV7sIommu,
  'arm-lpae': createArmSmmu,
});

/**
 * RAM the kernel's page allocator owns: the top half of DRAM. Register-level scripts build tables
 * by hand in the bottom half, so the two never collide.
 */
export function kernelRam(base: number, size: number): { base: number; size: number } {
  const half = Math.floor(size / 2 / 0x400000) * 0x400000;
  return { base: base + size - half, size: half };
}

/** How often a level interrupt the handler leaves asserted is delivered again before it is left alone. */
const IRQ_RETRIES = 4;

/** Cycles a CPU MMIO access costs, so driver poll loops make progress in simulated time. */
const MMIO_CYCLES = 20;

interface RegBlock {
  name: string;
  iommu: IommuModel;
  base: number;
  size: number;
  regs: RegisterFile;
}

/** Everything but RAM, the CPU cache and the kernel, which a snapshot copies and a checkpoint tracks copy-on-write. */
interface SocState {
  now: number;
  rng: number;
  findings: Finding[];
  irqs: ReturnType<IrqLines['snapshot']>;
  domains: [string, boolean][];
  clocks: [string, boolean][];
  resets: [string, boolean][];
  iommus: [string, unknown][];
  devices: [string, DmaMasterSnapshot][];
  checks: CheckersSnapshot;
  trace: number;
}

export interface SocSnapshot extends SocState {
  ram: RamSnapshot;
  cache: CpuCacheSnapshot;
  kernel: KernelSnapshot | null;
}

/** Run one entry's build step; an error it throws names that entry's JSON path. */
function atPath(path: string, build: () => void): void {
  try {
    build();
  } catch (e) {
    if (e instanceof ConfigBuildError) throw e;
    throw new ConfigBuildError(path, e instanceof Error ? e.message : String(e));
  }
}

export class Soc {
  readonly ram: SparseRam;
  readonly cache: CpuCache;
  readonly bus: Bus;
  readonly clock = new Clock();
  readonly trace = new Trace();
  readonly findings: FindingLog;
  readonly rng: Rng;
  readonly irqs: IrqLines;
  readonly ctx: HwContext;
  /** The checkers, always on: they turn what the hardware and the kernel do into findings. */
  readonly checks: Checkers;
  private kernelInstance: Kernel | null = null;
  /** Where preemptible operations go (the explorer's scheduler); null: they run to completion at once. */
  private executor: Executor | null = null;
  private readonly domains = new Map<string, PowerDomain>();
  private readonly gates = new Map<string, ClockGate>();
  private readonly resetLines = new Map<string, ResetLine>();
  /** Block name → its power domain's name, for genpd. */
  private readonly memberDomain = new Map<string, string>();
  private readonly iommuMap = new Map<string, IommuModel>();
  private readonly deviceMap = new Map<string, DmaMaster>();
  private readonly regBlocks = new Map<string, RegBlock>();

  constructor(
    readonly config: SocConfig,
    readonly seed: number = config.seed ?? 1,
    registry: ReadonlyMap<string, IommuFactory> = IOMMU_MODELS,
    private readonly drivers: Iterable<KernelDriver> = iommuDrivers(),
    readonly kernelMode: KernelMode = config.kernel ?? 'lazy',
  ) {
    const [mem, ...more] = config.memory;
    if (!mem) throw new ConfigBuildError('/memory', 'config has no memory');
    if (more.length > 0) throw new ConfigBuildError('/memory/1', 'only one memory region is supported');
    this.ram = new SparseRam(num(mem.base), num(mem.size));
    this.cache = new CpuCache(this.ram);
    this.bus = new Bus(this.ram, this.cache);
    this.rng = new Rng(seed);
    this.findings = new FindingLog(
      () => this.clock.now(),
      () => ({ seed: this.seed, event: this.trace.mark() }),
    );
    this.irqs = new IrqLines(this.clock, this.trace);
    this.ctx = {
      bus: this.bus,
      clock: this.clock,
      trace: this.trace,
      findings: this.findings,
      rng: this.rng,
      setIrq: (line, level) => this.irqs.set(line, level),
      idle: () => this.takeInterrupts(),
    };

    for (const d of config.powerDomains ?? []) {
      this.domains.set(d.name, new PowerDomain(d.name, d.on ?? true, d.offAccess ?? 'reset-values', this.clock, this.trace));
    }
    for (const c of config.clocks ?? []) this.gates.set(c.name, new ClockGate(c.name, c.rateHz ?? 0, c.on ?? true));
    for (const r of config.resets ?? []) this.resetLines.set(r.name, new ResetLine(r.name, r.asserted ?? false));

    config.iommus.forEach((cfg, i) => atPath(`/iommus/${i}`, () => this.addIommu(cfg, i, registry)));
    config.devices.forEach((cfg, i) =>
      atPath(`/devices/${i}`, () => {
        if (this.deviceMap.has(cfg.name) || this.iommuMap.has(cfg.name)) throw new ConfigBuildError(`/devices/${i}/name`, `duplicate block name ${cfg.name}`);
        const iommu = cfg.iommu ? this.iommuMap.get(cfg.iommu) : undefined;
        if (cfg.iommu && !iommu) throw new ConfigBuildError(`/devices/${i}/iommu`, `${cfg.name}: no IOMMU named ${cfg.iommu}`);
        const dev = new DmaMaster(cfg, this.ctx, iommu ?? null);
        this.deviceMap.set(cfg.name, dev);
        if (cfg.powerDomain !== undefined) {
          this.domainNamed(cfg.powerDomain, cfg.name).add(dev);
          this.memberDomain.set(cfg.name, cfg.powerDomain);
        }
      }),
    );
    this.checks = new Checkers({ config, bus: this.bus, clock: this.clock, trace: this.trace, findings: this.findings, iommus: this.iommuMap });
    this.ctx.observer = this.checks;
    for (const dev of this.deviceMap.values()) dev.startTraffic();
  }

  private addIommu(cfg: IommuConfig, i: number, registry: ReadonlyMap<string, IommuFactory>): void {
    const factory = registry.get(cfg.model);
    if (!factory) throw new ConfigBuildError(`/iommus/${i}/model`, `${cfg.name}: no model '${cfg.model}' in this build`);
    const iommu = factory(cfg, this.ctx);
    this.iommuMap.set(cfg.name, iommu);
    const domain = cfg.powerDomain === undefined ? undefined : this.domainNamed(cfg.powerDomain, cfg.name);
    const clocks = (cfg.clocks ?? []).map((c) => this.clockNamed(c, cfg.name));
    const resets = (cfg.resets ?? []).map((r) => this.resetNamed(r, cfg.name));
    for (const r of resets) r.add(iommu);
    domain?.add(iommu);
    if (cfg.powerDomain !== undefined) this.memberDomain.set(cfg.name, cfg.powerDomain);
    if (cfg.irq !== undefined) this.irqs.connect(cfg.irq, cfg.name);
    const windows = iommu.registerFiles();
    iommu.mmio().forEach((region, j) => {
      const w = windows[j];
      if (w) {
        // A window shorter than its register file would make the driver's first access a bus error.
        const need = Math.max(...w.regs.decl.meta.registers.map((r) => r.offset + 4));
        if (region.size < need) {
          throw new ConfigBuildError(`/iommus/${i}/reg/${j}/size`, `${cfg.name}: the ${cfg.model} register file needs a window of at least 0x${need.toString(16)} bytes, not 0x${region.size.toString(16)}`);
        }
      }
      this.bus.mapMmio({ ...region, target: gateMmio(region.target, region.base, iommu.decl, domain, clocks, resets, this.findings) });
      if (w) this.regBlocks.set(w.window, { name: w.window, iommu, base: region.base, size: region.size, regs: w.regs });
    });
  }

  /**
   * The Linux-modelled driver layer on this SoC, booted on first use (IOMMU drivers probed, masters
   * added to their default domains), so a SoC driven only by registers stays as reset left it.
   */
  get kernel(): Kernel {
    if (this.kernelInstance) return this.kernelInstance;
    if (this.kernelMode === 'none') throw new Error("the kernel layer is off (kernel mode 'none'): this run drives the hardware only");
    const mem = this.config.memory[0]!;
    const k = new Kernel({
      config: this.config,
      // Kernel MMIO costs time and lets due timers (background DMA, PM timers) run in between.
      port: busPort(this.bus, (cycles) => this.clock.advance(cycles)),
      clock: this.clock,
      trace: this.trace,
      findings: this.findings,
      drivers: this.drivers,
      zero: (pa, len) => this.cache.zero(pa, len),
      ram: [kernelRam(num(mem.base), num(mem.size))],
      observer: this.checks,
      callSite: () => this.checks.callSite?.(),
      lines: {
        setClock: (name, on) => {
          this.clockNamed(name, 'kernel').on = on;
        },
        setReset: (name, asserted) => this.resetNamed(name, 'kernel').set(asserted),
      },
    });
    this.kernelInstance = k;
    this.checks.attachKernel(k);
    k.pm.onStatus((dev, status) => this.genpd(dev, status));
    runOp(k.boot());
    k.exec = this.executor ?? undefined;
    return k;
  }

  /**
   * genpd: a device's domain powers on as it starts resuming (before its runtime_resume callback)
   * and off once every device in it is runtime-suspended with runtime PM enabled (after the last
   * runtime_suspend callback); off, its blocks lose their register state. A device whose runtime PM
   * is disabled keeps its domain on, as pm_runtime_suspended() is false for it.
   */
  private genpd(dev: string, status: string): void {
    const name = this.memberDomain.get(dev);
    if (name === undefined) return;
    const domain = this.domainNamed(name, dev);
    if (status === 'resuming' && !domain.on) domain.set(true);
    if (status !== 'suspended' || !domain.on) return;
    const pm = this.kernelInstance!.pm;
    const members = [...this.memberDomain].filter(([, d]) => d === name).map(([m]) => m);
    if (members.every((m) => pm.has(m) && pm.status(m) === 'suspended' && pm.state(m).disableDepth === 0)) domain.set(false);
  }

  /** The kernel if something booted it, else null: inspectors use this, so looking never boots one. */
  get bootedKernel(): Kernel | null {
    return this.kernelInstance;
  }

  private domainNamed(name: string, user: string): PowerDomain {
    const d = this.domains.get(name);
    if (!d) throw new Error(`${user}: no power domain named ${name}`);
    return d;
  }

  private clockNamed(name: string, user: string): ClockGate {
    const c = this.gates.get(name);
    if (!c) throw new Error(`${user}: no clock named ${name}`);
    return c;
  }

  private resetNamed(name: string, user: string): ResetLine {
    const r = this.resetLines.get(name);
    if (!r) throw new Error(`${user}: no reset line named ${name}`);
    return r;
  }

  iommus(): string[] {
    return [...this.iommuMap.keys()];
  }

  devices(): string[] {
    return [...this.deviceMap.keys()];
  }

  iommu(name: string): IommuModel {
    const i = this.iommuMap.get(name);
    if (!i) throw new Error(`no IOMMU named '${name}' (have: ${this.iommus().join(', ')})`);
    return i;
  }

  device(name: string): DmaMaster {
    const d = this.deviceMap.get(name);
    if (!d) throw new Error(`no device named '${name}' (have: ${this.devices().join(', ')})`);
    return d;
  }

  powerDomain(name: string): PowerDomain {
    return this.domainNamed(name, 'soc');
  }

  clockGate(name: string): ClockGate {
    return this.clockNamed(name, 'soc');
  }

  resetLine(name: string): ResetLine {
    return this.resetNamed(name, 'soc');
  }

  /** The clock gates and reset lines with their state, for the device tree. */
  lines(): { clocks: { name: string; on: boolean }[]; resets: { name: string; asserted: boolean }[] } {
    return {
      clocks: [...this.gates.values()].map((c) => ({ name: c.name, on: c.on })),
      resets: [...this.resetLines.values()].map((r) => ({ name: r.name, asserted: r.asserted })),
    };
  }

  /** Blocks for the inspector: register windows, masters and power domains. */
  blocks(): BlockInfo[] {
    const out: BlockInfo[] = [];
    for (const b of this.regBlocks.values()) out.push({ name: b.name, kind: 'iommu', model: b.iommu.model, base: b.base, size: b.size, powered: this.windowPowered(b) });
    for (const d of this.deviceMap.values()) out.push({ name: d.name, kind: 'device', model: d.cfg.compatible ?? 'dma-master', base: 0, size: 0, powered: d.isPowered() });
    for (const p of this.domains.values()) out.push({ name: p.name, kind: 'power', model: 'power-domain', base: 0, size: 0, powered: p.on });
    return out;
  }

  private windowPowered(b: RegBlock): boolean {
    const cfg = this.config.iommus.find((c) => c.name === b.iommu.name);
    return b.iommu.isPowered() && (cfg?.powerDomain === undefined || this.domainNamed(cfg.powerDomain, b.name).on);
  }

  /** Register declarations per register block, for generated script types. */
  blockTypes(): { name: string; meta: BlockMeta }[] {
    return [...this.regBlocks.values()].map((b) => ({ name: b.name, meta: b.regs.decl.meta }));
  }

  private regBlock(block: string): RegBlock {
    const b = this.regBlocks.get(block);
    if (!b) throw new Error(`no register block named '${block}' (have: ${[...this.regBlocks.keys()].join(', ')})`);
    return b;
  }

  registerFile(block: string): RegisterFile {
    return this.regBlock(block).regs;
  }

  /** The physical address of a register by name. */
  regAddress(block: string, reg: string): number {
    const b = this.regBlock(block);
    const spec = b.regs.decl.byName.get(reg);
    if (!spec) throw new Error(`${block} has no register '${reg}'`);
    return b.base + spec.offset;
  }

  /** A CPU load of a register by name: power gating and read side effects apply, as for readl. */
  readReg(block: string, reg: string): number {
    return this.readl(this.regAddress(block, reg));
  }

  writeReg(block: string, reg: string, value: number): void {
    this.writel(value, this.regAddress(block, reg));
  }

  /** CPU 32-bit load: RAM through the CPU cache, or MMIO. */
  readl(pa: number): number {
    if (this.ram.contains(pa, 4)) return this.bus.cpuRead32(pa);
    this.clock.tick(MMIO_CYCLES);
    return this.bus.cpuRead32(pa);
  }

  writel(value: number, pa: number): void {
    if (!this.ram.contains(pa, 4)) this.clock.tick(MMIO_CYCLES);
    this.bus.cpuWrite32(pa, value >>> 0);
  }

  /** Advance simulated time: background traffic runs, busy invalidations complete, interrupts are taken. */
  run(cycles: number): void {
    if (!Number.isFinite(cycles) || cycles < 0) throw new Error(`run: bad cycle count ${cycles}`);
    this.takeInterrupts();
    this.clock.advance(cycles);
    this.takeInterrupts();
  }

  /**
   * The GIC and genirq while the CPUs are free: every asserted line with a registered handler runs
   * it (a masked source does not assert its line). A level line the handler leaves asserted is
   * retried a few times, then left, as a real line would storm until genirq disables it. Under the
   * explorer's scheduler nothing is delivered here (kernel.handleIrq is the handler as a thread step).
   */
  takeInterrupts(): void {
    const k = this.kernelInstance;
    if (!k || this.executor) return;
    for (const { line, iommu } of k.irqHandlers()) {
      for (let i = 0; i < IRQ_RETRIES && this.irqs.level(line); i++) if (!k.deliverIrq(iommu)) break;
    }
  }

  /** Route the kernel's and the script API's preemptible operations to exec (null: run them at once). */
  /** Whether a scheduler (the explorer) runs operations now, instead of running each to completion. */
  /**
   * Where the script line of the call in progress comes from: findings, the checkers and the
   * kernel's call records all name it from this one provider.
   */
  setCallSite(site: () => string | undefined): void {
    this.checks.callSite = site;
    this.findings.callSite = site;
  }

  hasExecutor(): boolean {
    return this.executor !== null;
  }

  setExecutor(exec: Executor | null): void {
    this.executor = exec;
    if (this.kernelInstance) this.kernelInstance.exec = exec ?? undefined;
  }

  /** Run a preemptible operation the current way. */
  execOp<T>(op: Op<T>): Promise<T> {
    return this.executor ? this.executor(op) : Promise.resolve(runOp(op));
  }

  private state(): SocState {
    return {
      now: this.clock.now(),
      rng: this.rng.getState(),
      findings: this.findings.snapshot(),
      irqs: this.irqs.snapshot(),
      domains: [...this.domains].map(([n, d]) => [n, d.on]),
      clocks: [...this.gates].map(([n, c]) => [n, c.on]),
      resets: [...this.resetLines].map(([n, r]) => [n, r.asserted]),
      iommus: [...this.iommuMap].map(([n, i]) => [n, i.snapshot()]),
      devices: [...this.deviceMap].map(([n, d]) => [n, d.snapshot()]),
      checks: this.checks.snapshot(),
      trace: this.trace.mark(),
    };
  }

  /** restoreKernel runs last: the kernel re-arms its timers on the restored clock. */
  private setState(s: SocState, restoreKernel: () => void): void {
    // The clock first: it drops timers, which the models re-arm from their own state.
    this.clock.restore({ now: s.now });
    this.rng.setState(s.rng);
    this.findings.restore(s.findings);
    this.irqs.restore(s.irqs);
    for (const [n, on] of s.domains) this.domains.get(n)?.restoreLevel(on);
    for (const [n, on] of s.clocks) {
      const c = this.gates.get(n);
      if (c) c.on = on;
    }
    for (const [n, asserted] of s.resets) this.resetLines.get(n)?.restoreLevel(asserted);
    for (const [n, snap] of s.iommus) this.iommuMap.get(n)?.restore(snap);
    for (const [n, snap] of s.devices) this.deviceMap.get(n)?.restore(snap);
    this.checks.restore(s.checks);
    this.trace.rewind(s.trace);
    restoreKernel();
  }

  /** Whether snapshot can run now: a C driver cannot be copied while one of its calls is suspended. */
  snapshotReady(): boolean {
    return this.kernelInstance?.snapshotReady() ?? true;
  }

  snapshot(): SocSnapshot {
    return { ...this.state(), ram: this.ram.snapshot(), cache: this.cache.snapshot(), kernel: this.kernelInstance?.snapshot() ?? null };
  }

  restore(s: SocSnapshot): void {
    this.ram.restore(s.ram);
    this.cache.restore(s.cache);
    this.setState(s, () => {
      if (s.kernel) this.kernelInstance?.restore(s.kernel);
    });
  }

  /**
   * The whole engine (hardware, checkers, kernel) as it is now, for the explorer: restore() puts it
   * back as often as needed. RAM, the CPU cache and the page allocator are tracked copy-on-write
   * (Checkpointable), so restoring them costs what the run changed. A kernel that a run booted
   * after an unbooted checkpoint is dropped at restore, so every run starts as the checkpoint did:
   * with the blocks at reset if nothing had booted the kernel.
   */
  checkpoint(): { restore(): void } {
    const kernel = this.kernelInstance;
    const state = this.state();
    const ram = this.ram.checkpoint();
    const cache = this.cache.checkpoint();
    const kcp = kernel?.checkpoint();
    return {
      restore: () => {
        this.ram.rollback(ram);
        this.cache.rollback(cache);
        if (!kernel && this.kernelInstance) {
          this.kernelInstance = null;
          this.checks.detachKernel();
        }
        this.setState(state, () => {
          if (kernel && kcp) kernel.rollback(kcp);
        });
      },
    };
  }
}
