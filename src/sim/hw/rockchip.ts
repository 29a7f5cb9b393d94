/**
 * Rockchip IOMMU model ('rockchip', hardware-facts.md §2). One IOMMU serves one master device and
 * may own several MMU instances (register windows, e.g. RK3399 ISP and VDEC have two); every
 * instance has its own registers, IOTLB and page-table cache, and walks the tables its own DTE_ADDR
 * names. Model choices where the sources are silent:
 *
 * - Which instance translates a beat: reads go through the first instance, writes through the last
 *   (with one instance both use it). A driver that programs or zaps only one instance therefore
 *   shows up on the traffic that uses the other.
 * - Caches are strict: the IOTLB holds valid translations per 4 KiB page; the page-table cache holds
 *   whole 64-byte table lines (16 DTEs or 16 PTEs) as read, invalid entries included, tagged by the
 *   IOVA range they cover. Only ZAP_ONE_LINE (the IOTLB entry plus the DTE and PTE lines covering
 *   the IOVA), ZAP_CACHE, FORCE_RESET, power-off and capacity eviction remove anything; a CPU write
 *   to a table never does. That is what lets a zap issued before a PTE update leave a stale invalid
 *   line behind (problems.md P1).
 * - Paging disabled: beats pass through untranslated (pa = iova).
 * - Stall is a stall: while STALL_ACTIVE, the master's beats wait (stallOf), as on silicon; they go on
 *   at DISABLE_STALL. A page fault stalls the faulting master too: its faulting transfer ends with
 *   the fault, and its next beats wait until PAGE_FAULT_DONE (which the IRQ handler writes). A
 *   master that waits too long is named as stuck (dma-master.ts). PAGE_FAULT_ADDR and
 *   PAGE_FAULT_IS_WRITE keep the first unacknowledged fault until PAGE_FAULT_DONE.
 * - FORCE_RESET resets the registers and drops both caches.
 */
import { BusError } from '../mem/bus';
import type { MmioRegion, MmioTarget } from '../mem/bus';
import { num, type IommuConfig } from '../config/types';
import { RegisterFile, type BlockDecl, type RegSpec, type WriteEvent } from '../regs/dsl';
import { KeyedCache } from './keyed-cache';
import type { IommuFactory } from './registry';
import { Tlb } from './tlb';
import {
  PERM_READ,
  PERM_WRITE,
  type AccessKind,
  type Fault,
  type FaultReason,
  type HwContext,
  type IommuModel,
  type IommuStats,
  type MasterPort,
  type TlbEntry,
  type Translation,
  type WalkCacheEntry,
} from './types';
import {
  RK_PAGE_SHIFT,
  RK_PAGE_SIZE,
  RK_PTE_READABLE,
  RK_PTE_WRITABLE,
  RK_RESERVED,
  RK_VALID,
  rkDecodeAddr,
  rkDteIndex,
  rkPteIndex,
  type RkVersion,
} from './rockchip-format';
import { RK_CMD, RK_INT, RK_STATUS, RK_STATUS_STORED, rockchipDecl } from './rockchip-regs';
import { walkRead32 } from './walker';

/** Entries per cached table line (64 bytes). */
export const RK_LINE_ENTRIES = 16;
const LINE_BYTES = RK_LINE_ENTRIES * 4;
/** IOVA covered by one cached PTE line (64 KiB) and one cached DTE line (64 MiB). */
const PTE_LINE_SHIFT = RK_PAGE_SHIFT + 4;
const DTE_LINE_SHIFT = 22 + 4;
/** Page-table cache keys: PTE lines use iova >>> 16 (below this), DTE lines sit above it. */
const DTE_KEY_BASE = 1 << (32 - PTE_LINE_SHIFT);

const DEFAULT_TLB_ENTRIES = 32;
const DEFAULT_PTC_LINES = 16;
/** Cycles one table-line fetch costs the walker. */
const LINE_FETCH_CYCLES = 32;

interface TableLine {
  kind: 'dte' | 'pte';
  tablePa: number;
  words: number[];
}

interface Instance {
  window: string;
  base: number;
  size: number;
  regs: RegisterFile;
  iotlb: Tlb;
  ptc: KeyedCache<TableLine>;
  /** The master whose page fault is unacknowledged (PAGE_FAULT_ACTIVE), stalled until PAGE_FAULT_DONE. */
  faultMaster: number | null;
}

export interface RockchipSnapshot {
  powered: boolean;
  irqLevel: boolean;
  faults: Fault[];
  stats: IommuStats;
  instances: { regs: Uint32Array; iotlb: ReturnType<Tlb['snapshot']>; ptc: [number, TableLine][]; faultMaster: number | null }[];
}

const hex = (v: number): string => `0x${v.toString(16)}`;

const CMD_NAMES = new Map<number, string>(Object.entries(RK_CMD).map(([k, v]) => [v, k]));

class RockchipIommu implements IommuModel {
  readonly model = 'rockchip';
  readonly name: string;
  readonly decl: BlockDecl;
  private readonly version: RkVersion;
  private readonly coherent: boolean;
  private readonly instances: Instance[];
  private powered = true;
  private irqLevel = false;
  private faultLog: Fault[] = [];
  private counters: IommuStats = { hits: 0, misses: 0, walks: 0, faults: 0 };
  /** Device names of the master IDs seen, for TLB listings. */
  private masterNames = new Map<number, string>();
  /** Reused for every successful translation (types.ts Translation: read at once). */
  private readonly okResult = { ok: true as const, pa: 0, coherent: false };

  constructor(
    private readonly cfg: IommuConfig,
    private readonly ctx: HwContext,
  ) {
    this.name = cfg.name;
    const v = cfg.options?.version ?? 'v1';
    if (v !== 'v1' && v !== 'v2') throw new Error(`${cfg.name}: options.version must be 'v1' or 'v2', not ${JSON.stringify(v)}`);
    if (cfg.reg.length === 0) throw new Error(`${cfg.name}: a Rockchip IOMMU needs at least one register window`);
    this.version = v;
    this.decl = rockchipDecl(v);
    this.coherent = cfg.coherentWalk ?? false;
    this.instances = cfg.reg.map((w, index) => this.makeInstance(index, num(w.base), num(w.size)));
  }

  private makeInstance(index: number, base: number, size: number): Instance {
    const window = index === 0 ? this.name : `${this.name}.${index}`;
    const evicted = (what: string, iova: number): void =>
      this.ctx.trace.emit({ time: this.ctx.clock.now(), cat: 'inval', name: `${what}-evict`, track: this.name, args: { mmu: window, iova: hex(iova) } });
    const inst: Instance = {
      window,
      base,
      size,
      regs: new RegisterFile(this.decl, {
        onWrite: (e) => this.onWrite(inst, e),
        onRead: (reg, stored) => this.onRead(inst, reg, stored),
        onReservedWrite: (reg, written, bits) => this.onReservedWrite(inst, reg, written, bits),
      }),
      iotlb: new Tlb({
        level: this.cfg.reg.length === 1 ? 'iotlb' : `iotlb${index}`,
        capacity: this.cfg.tlb?.entries ?? DEFAULT_TLB_ENTRIES,
        rng: this.ctx.rng,
        evictions: { note: (iova) => evicted('iotlb', iova) },
      }),
      ptc: new KeyedCache<TableLine>(this.cfg.walkCache?.entries ?? DEFAULT_PTC_LINES, this.ctx.rng, (k) => evicted('ptc', lineIova(k))),
      faultMaster: null,
    };
    return inst;
  }

  // ---- registers ---------------------------------------------------------------------------

  private onRead(inst: Instance, reg: RegSpec, stored: number): number {
    if (reg.name === 'STATUS') {
      const stall = (stored & RK_STATUS.STALL_ACTIVE) !== 0;
      return ((stored & RK_STATUS_STORED) | RK_STATUS.IDLE | RK_STATUS.REPLAY_BUFFER_EMPTY | (stall ? 0 : RK_STATUS.STALL_NOT_ACTIVE)) >>> 0;
    }
    if (reg.name === 'INT_STATUS') return inst.regs.get('INT_RAWSTAT') & inst.regs.get('INT_MASK');
    return stored;
  }

  private onWrite(inst: Instance, e: WriteEvent): void {
    switch (e.reg.name) {
      case 'COMMAND':
        this.command(inst, e.written);
        break;
      case 'ZAP_ONE_LINE':
        this.zapOneLine(inst, e.written);
        break;
      case 'INT_CLEAR':
        inst.regs.set('INT_RAWSTAT', inst.regs.get('INT_RAWSTAT') & ~e.written);
        this.updateIrq();
        break;
      case 'INT_MASK':
        this.updateIrq();
        break;
    }
  }

  private onReservedWrite(inst: Instance, reg: RegSpec, written: number, bits: number): void {
    const misaligned = reg.name === 'DTE_ADDR' && this.version === 'v1' && (bits & 0xffe) !== 0;
    this.ctx.findings.report({
      kind: misaligned ? 'misaligned-table' : 'reserved-bits',
      severity: 'warning',
      message: misaligned
        ? `${inst.window}: DTE_ADDR written with ${hex(written)}, not 4 KiB aligned (bits ${hex(bits)} ignored)`
        : `${inst.window}: ${reg.name} written with ${hex(written)}, reserved or read-only bits ${hex(bits)} ignored`,
      where: { iommu: this.name, mmu: inst.window, register: reg.name },
    });
  }

  private setStatus(inst: Instance, set: number, clear: number): void {
    inst.regs.set('STATUS', (inst.regs.get('STATUS') & ~clear) | set);
  }

  private command(inst: Instance, value: number): void {
    const cmd = value & 7;
    const name = CMD_NAMES.get(cmd);
    const now = this.ctx.clock.now();
    if (name === undefined) {
      this.ctx.findings.report({
        kind: 'reserved-bits',
        severity: 'warning',
        message: `${inst.window}: COMMAND ${cmd} is not a command; ignored`,
        where: { iommu: this.name, mmu: inst.window, register: 'COMMAND' },
      });
      return;
    }
    const isInval = cmd === RK_CMD.ZAP_CACHE || cmd === RK_CMD.FORCE_RESET;
    this.ctx.trace.emit({ time: now, cat: isInval ? 'inval' : 'mmio', name, track: this.name, args: { mmu: inst.window } });
    const st = inst.regs.get('STATUS');
    switch (cmd) {
      case RK_CMD.ENABLE_PAGING:
        this.setStatus(inst, RK_STATUS.PAGING_ENABLED, 0);
        break;
      case RK_CMD.DISABLE_PAGING:
        this.setStatus(inst, 0, RK_STATUS.PAGING_ENABLED);
        break;
      case RK_CMD.ENABLE_STALL:
        // The MMU can only stall traffic it is translating.
        if (st & RK_STATUS.PAGING_ENABLED) this.setStatus(inst, RK_STATUS.STALL_ACTIVE, 0);
        break;
      case RK_CMD.DISABLE_STALL:
        this.setStatus(inst, 0, RK_STATUS.STALL_ACTIVE);
        break;
      case RK_CMD.ZAP_CACHE:
        inst.iotlb.invalidateAll();
        inst.ptc.clear();
        break;
      case RK_CMD.PAGE_FAULT_DONE:
        this.setStatus(inst, 0, RK_STATUS.PAGE_FAULT_ACTIVE | RK_STATUS.PAGE_FAULT_IS_WRITE);
        inst.faultMaster = null;
        break;
      case RK_CMD.FORCE_RESET:
        inst.regs.reset();
        inst.faultMaster = null;
        inst.iotlb.invalidateAll();
        inst.ptc.clear();
        this.updateIrq();
        break;
    }
  }

  /** Drops the IOTLB entry for iova and the cached DTE and PTE lines covering it. */
  private zapOneLine(inst: Instance, iova: number): void {
    const tlb = inst.iotlb.invalidateRange(iova - (iova % RK_PAGE_SIZE), RK_PAGE_SIZE);
    const pte = inst.ptc.delete(iova >>> PTE_LINE_SHIFT);
    const dte = inst.ptc.delete(DTE_KEY_BASE + (iova >>> DTE_LINE_SHIFT));
    this.ctx.trace.emit({
      time: this.ctx.clock.now(),
      cat: 'inval',
      name: 'ZAP_ONE_LINE',
      track: this.name,
      args: { mmu: inst.window, iova: hex(iova), tlb, pteLine: pte, dteLine: dte },
    });
  }

  private updateIrq(): void {
    const level = this.instances.some((i) => (i.regs.get('INT_RAWSTAT') & i.regs.get('INT_MASK')) !== 0);
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (this.cfg.irq !== undefined) this.ctx.setIrq(this.cfg.irq, level);
    this.ctx.trace.emit({ time: this.ctx.clock.now(), cat: 'irq', name: level ? 'irq-raise' : 'irq-lower', track: this.name, args: { line: this.cfg.irq ?? -1 } });
  }

  // ---- translation -------------------------------------------------------------------------

  private instanceFor(access: AccessKind): Instance {
    return this.instances[access === 'write' ? this.instances.length - 1 : 0]!;
  }

  stallOf(master: MasterPort, access: AccessKind): string | null {
    if (!this.powered) return null;
    const inst = this.instanceFor(access);
    const st = inst.regs.get('STATUS');
    if (st & RK_STATUS.STALL_ACTIVE) return `${inst.window} is stalled (ENABLE_STALL, no DISABLE_STALL since)`;
    if (inst.faultMaster === master.id && st & RK_STATUS.PAGE_FAULT_ACTIVE) {
      return `${inst.window} stalls it on its page fault at IOVA ${hex(inst.regs.get('PAGE_FAULT_ADDR'))}, never acknowledged (no PAGE_FAULT_DONE)`;
    }
    return null;
  }

  translate(master: MasterPort, iova: number, access: AccessKind): Translation {
    const inst = this.instanceFor(access);
    if (!this.powered) return { ok: false, fault: this.record(inst, master, iova, access, 'powered-off') };
    const st = inst.regs.get('STATUS');
    // Only traffic that does not wait (background scanout) gets here while stalled: it is dropped.
    if (st & RK_STATUS.STALL_ACTIVE) return { ok: false, fault: this.record(inst, master, iova, access, 'stalled') };
    if (!(st & RK_STATUS.PAGING_ENABLED)) return { ok: true, pa: iova, coherent: false };
    if (!Number.isInteger(iova) || iova < 0 || iova >= 2 ** 32) return { ok: false, fault: this.record(inst, master, iova, access, 'address-size') };

    const need = access === 'write' ? PERM_WRITE : PERM_READ;
    const cached = inst.iotlb.lookup(iova);
    if (cached) {
      this.counters.hits++;
      if (!(cached.perms & need)) return this.pageFault(inst, master, iova, access, 'permission');
      return this.ok(cached.pa + (iova & (RK_PAGE_SIZE - 1)));
    }
    this.counters.misses++;
    this.counters.walks++;
    try {
      const dtBase = rkDecodeAddr(this.version, inst.regs.get('DTE_ADDR'));
      const di = rkDteIndex(iova);
      const dte = this.fetch(inst, 'dte', DTE_KEY_BASE + (iova >>> DTE_LINE_SHIFT), dtBase, di);
      this.checkReserved(inst, 'DTE', dte, RK_RESERVED[this.version].dte, dtBase + di * 4);
      if (!(dte & RK_VALID)) return this.pageFault(inst, master, iova, access, 'dte-invalid');
      const ptBase = rkDecodeAddr(this.version, dte);
      const pi = rkPteIndex(iova);
      const pte = this.fetch(inst, 'pte', iova >>> PTE_LINE_SHIFT, ptBase, pi);
      this.checkReserved(inst, 'PTE', pte, RK_RESERVED[this.version].pte, ptBase + pi * 4);
      if (!(pte & RK_VALID)) return this.pageFault(inst, master, iova, access, 'pte-invalid');
      const perms = (pte & RK_PTE_READABLE ? PERM_READ : 0) | (pte & RK_PTE_WRITABLE ? PERM_WRITE : 0);
      const pa = rkDecodeAddr(this.version, pte);
      inst.iotlb.insert({ iova: iova - (iova % RK_PAGE_SIZE), size: RK_PAGE_SIZE, pa, perms, master: master.id, aux: 0 });
      this.masterNames.set(master.id, master.name);
      if (!(perms & need)) return this.pageFault(inst, master, iova, access, 'permission');
      return this.ok(pa + (iova & (RK_PAGE_SIZE - 1)));
    } catch (err) {
      if (!(err instanceof BusError)) throw err;
      return this.busFault(inst, master, iova, access, err);
    }
  }

  private ok(pa: number): Translation {
    this.okResult.pa = pa;
    return this.okResult;
  }

  /**
   * Entry idx of the table at tableBase, through the page-table cache (whole lines, as read). Only the
   * entry the walk uses is checked for un-cleaned CPU writes: its line neighbours may be mid-update by
   * a correct driver, and a stale neighbour only matters once a walk uses it (then it is a cache hit,
   * which is the stale-line problem, not an unflushed walk).
   */
  private fetch(inst: Instance, kind: 'dte' | 'pte', key: number, tableBase: number, idx: number): number {
    let line = inst.ptc.get(key);
    if (!line) {
      const tablePa = tableBase + (idx & ~(RK_LINE_ENTRIES - 1)) * 4;
      const used = idx & (RK_LINE_ENTRIES - 1);
      const words: number[] = [];
      for (let i = 0; i < RK_LINE_ENTRIES; i++) {
        const pa = tablePa + i * 4;
        words.push(
          i === used
            ? walkRead32(this.ctx, pa, this.coherent, inst.window, `${kind.toUpperCase()} ${idx}`)
            : this.ctx.bus.devRead32(pa, this.coherent, inst.window),
        );
      }
      this.ctx.clock.tick(LINE_FETCH_CYCLES);
      line = { kind, tablePa, words };
      inst.ptc.set(key, line);
      this.ctx.trace.emit({
        time: this.ctx.clock.now(),
        cat: 'dma',
        name: `${kind}-line-fetch`,
        track: this.name,
        args: { mmu: inst.window, pa: hex(tablePa), bytes: LINE_BYTES, coherent: this.coherent },
      });
    }
    return line.words[idx & (RK_LINE_ENTRIES - 1)]!;
  }

  private checkReserved(inst: Instance, what: 'DTE' | 'PTE', entry: number, reserved: number, pa: number): void {
    if ((entry & reserved) === 0) return;
    this.ctx.findings.report({
      kind: 'reserved-bits',
      severity: 'warning',
      message: `${inst.window}: ${what} ${hex(entry)} at ${hex(pa)} has reserved bits ${hex((entry & reserved) >>> 0)} set`,
      where: { iommu: this.name, mmu: inst.window, pa: hex(pa) },
    });
  }

  private pageFault(inst: Instance, master: MasterPort, iova: number, access: AccessKind, reason: FaultReason): Translation {
    const st = inst.regs.get('STATUS');
    if (!(st & RK_STATUS.PAGE_FAULT_ACTIVE)) {
      inst.regs.set('PAGE_FAULT_ADDR', iova);
      this.setStatus(inst, RK_STATUS.PAGE_FAULT_ACTIVE | (access === 'write' ? RK_STATUS.PAGE_FAULT_IS_WRITE : 0), 0);
      inst.faultMaster = master.id;
    }
    inst.regs.set('INT_RAWSTAT', inst.regs.get('INT_RAWSTAT') | RK_INT.PAGE_FAULT);
    const fault = this.record(inst, master, iova, access, reason);
    this.updateIrq();
    this.ctx.findings.report({
      kind: 'fault',
      severity: 'error',
      message: `${inst.window}: ${access} fault at IOVA ${hex(iova)} by ${master.name}: ${reason}${this.cfg.irq === undefined ? '' : ` (IRQ ${this.cfg.irq})`}`,
      where: { iommu: this.name, mmu: inst.window, iova: hex(iova), master: master.name, access, reason, ...(this.cfg.irq === undefined ? {} : { irq: this.cfg.irq }) },
    });
    return { ok: false, fault };
  }

  private busFault(inst: Instance, master: MasterPort, iova: number, access: AccessKind, err: BusError): Translation {
    inst.regs.set('INT_RAWSTAT', inst.regs.get('INT_RAWSTAT') | RK_INT.BUS_ERROR);
    this.ctx.findings.report({
      kind: 'bus-error',
      severity: 'error',
      message: `${inst.window}: table walk for IOVA ${hex(iova)} read ${hex(err.pa)}, which is not RAM`,
      where: { iommu: this.name, mmu: inst.window, iova: hex(iova), pa: hex(err.pa) },
    });
    const fault = this.record(inst, master, iova, access, 'bus-error');
    this.updateIrq();
    return { ok: false, fault };
  }

  private record(inst: Instance, master: MasterPort, iova: number, access: AccessKind, reason: FaultReason): Fault {
    const fault: Fault = { iova, master: master.name, access, reason, time: this.ctx.clock.now(), iommu: this.name };
    this.faultLog.push(fault);
    this.counters.faults++;
    this.ctx.trace.emit({
      time: fault.time,
      cat: 'fault',
      name: reason,
      track: this.name,
      args: { mmu: inst.window, iova: hex(iova), master: master.name, access },
    });
    return fault;
  }

  // ---- IommuModel --------------------------------------------------------------------------

  mmio(): MmioRegion[] {
    return this.instances.map((inst) => {
      const target: MmioTarget = {
        name: inst.window,
        read32: (off) => inst.regs.read(off),
        write32: (off, value) => {
          if (this.powered) inst.regs.write(off, value);
        },
      };
      return { base: inst.base, size: inst.size, target };
    });
  }

  registerFiles(): { window: string; base: number; regs: RegisterFile }[] {
    return this.instances.map((i) => ({ window: i.window, base: i.base, regs: i.regs }));
  }

  tlb(): TlbEntry[] {
    const masterName = (id: number): string | undefined => this.masterNames.get(id);
    return this.instances.flatMap((inst) => inst.iotlb.list({ masterName }));
  }

  /** Cached table lines; valid is false for a line holding no valid entry at all. */
  walkCache(): WalkCacheEntry[] {
    return this.instances.flatMap((inst) =>
      inst.ptc.entries().map(([key, l]) => ({
        iova: lineIova(key),
        span: l.kind === 'dte' ? 2 ** DTE_LINE_SHIFT : 2 ** PTE_LINE_SHIFT,
        tablePa: l.tablePa,
        entries: l.words.slice(),
        valid: l.words.some((w) => (w & RK_VALID) !== 0),
      })),
    );
  }

  faults(): Fault[] {
    return this.faultLog.map((f) => ({ ...f }));
  }

  stats(): IommuStats {
    return { ...this.counters };
  }

  setPowered(on: boolean): void {
    if (on === this.powered) return;
    this.powered = on;
    if (!on) {
      for (const inst of this.instances) {
        inst.regs.reset();
        inst.iotlb.invalidateAll();
        inst.ptc.clear();
        inst.faultMaster = null;
      }
      this.updateIrq();
    }
  }

  isPowered(): boolean {
    return this.powered;
  }

  snapshot(): RockchipSnapshot {
    return {
      powered: this.powered,
      irqLevel: this.irqLevel,
      faults: this.faults(),
      stats: this.stats(),
      instances: this.instances.map((i) => ({ regs: i.regs.snapshot(), iotlb: i.iotlb.snapshot(), ptc: i.ptc.snapshot(), faultMaster: i.faultMaster })),
    };
  }

  restore(s: RockchipSnapshot): void {
    this.powered = s.powered;
    this.irqLevel = s.irqLevel;
    this.faultLog = s.faults.map((f) => ({ ...f }));
    this.counters = { ...s.stats };
    s.instances.forEach((saved, i) => {
      const inst = this.instances[i]!;
      inst.regs.restore(saved.regs);
      inst.iotlb.restore(saved.iotlb);
      inst.ptc.restore(saved.ptc);
      inst.faultMaster = saved.faultMaster;
    });
  }
}

/** First IOVA covered by a page-table cache line key. */
function lineIova(key: number): number {
  return key >= DTE_KEY_BASE ? (key - DTE_KEY_BASE) * 2 ** DTE_LINE_SHIFT : key * 2 ** PTE_LINE_SHIFT;
}

export const createRockchipIommu: IommuFactory = (cfg, ctx) => new RockchipIommu(cfg, ctx);
