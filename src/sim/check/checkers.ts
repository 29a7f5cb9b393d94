/**
 * The checkers: always on, they watch the hardware (table-walk reads, DMA beats), the kernel (map,
 * unmap, domain free, where each kernel call starts and ends), the page allocator and runtime PM,
 * and report what a driver did wrong as findings a driver developer can act on:
 *
 * - stale-translation: a DMA beat's translation (or fault) differs from a fresh walk of the tables
 *   in memory, while no kernel call is changing them: an invalidation is missing or came too early.
 *   Re-walks cost a few reads and happen only when something a walk depends on may have changed
 *   (a CPU store, clean or invalidate, an MMIO store, a PM transition, a kernel call) or the
 *   hardware's answer for that page changed.
 * - lost-mapping: when no kernel call is in flight, every range mapped since, and the promised
 *   ranges around it, are looked up with the driver's iova_to_phys; a range that no longer gives
 *   its PA was lost (a racing table install overwrote it, P2, or a racing split corrupted it, P3).
 *   Ranges unmapped since must not translate any more (else unmap-mismatch, error); a raw
 *   iommu_unmap that finds less mapped than asked is a warning (unmap-mismatch).
 * - table-use-after-free: a walker read memory that was a page table and has been freed since.
 * - live-domain-free: a table is freed while an enabled IOMMU instance still has it as its root.
 * - dma-while-suspended: DMA through an IOMMU that is runtime-suspended or powered off, or by a
 *   master that is powered off.
 * - pm-disabled-no-setup: DMA through an IOMMU that is not translating with the domain the kernel
 *   attached, because the driver programs it only from runtime resume and runtime PM is compiled
 *   out (CONFIG_PM=n) or inhibited (power/control = on).
 * Walkers report unflushed-walk, models report fault, dma-iommu double-unmap and unmap-mismatch,
 * the core table-leak at domain free.
 */
import type { SocConfig } from '../config/types';
import type { Clock } from '../core/clock';
import type { Op } from '../core/coop';
import type { FindingSink } from '../core/findings';
import type { Snapshotable } from '../core/snapshot';
import type { Trace } from '../core/trace';
import type { AccessKind, HwObserver, IommuModel, MasterPort, Translation } from '../hw/types';
import { isPaging, type IommuDomain } from '../kernel/iommu-core';
import type { Kernel, KernelObserver } from '../kernel/kernel';
import { ownerLabel, type PageEvent, type PageOwner } from '../kernel/page-alloc';
import type { Bus } from '../mem/bus';
import { modelTables, type ModelTables } from './checkers-tables';
import { PromisedMappings, type Promised } from './checkers-mapping';
import { atSite, hex, where } from './findings-format';

export interface CheckersOptions {
  config: SocConfig;
  bus: Bus;
  clock: Clock;
  trace: Trace;
  findings: FindingSink;
  iommus: ReadonlyMap<string, IommuModel>;
}

/** Granule of freed-table tracking: the smallest table (H6 PT, v7s L2) is 1 KiB. */
const GRANULE = 1024;
/** Promised ranges this far either side of a changed range are re-checked too (one v7s/H6 L1 slot and more). */
const NEIGHBOURHOOD = 4 << 20;
/** At most this many promised ranges looked up after one kernel call. */
const VERIFY_LIMIT = 64;
/** Preemption points a checker lookup may take before it gives up (a lock left held). */
const LOOKUP_STEPS = 10_000;
const HISTORY = 64;
const MEMO_BITS = 14;
const WALK_BITS = 14;
/** Walk-cached table words remembered as verified: 2^LEVEL_BITS slots. */
const LEVEL_BITS = 8;

/**
 * Slot of a page in a direct-mapped table of 2^bits slots. Consecutive pages take consecutive slots,
 * so a DMA stream walks the table cache line by cache line instead of missing the host cache at every
 * beat; a Fibonacci hash of the page's high part and of tag (master, access) picks where each block
 * of 2^bits pages starts, so buffers at the same offset in different blocks do not always collide.
 */
function pageSlot(page: number, tag: number, bits: number): number {
  const hi = page <= 0xffffffff ? page >>> bits : Math.floor(page / 2 ** bits) >>> 0;
  return (page + (Math.imul(hi ^ Math.imul(tag, 0x85ebca6b), 0x9e3779b1) >>> (32 - bits))) & ((1 << bits) - 1);
}

/**
 * The last checked answer per (master, access, page) of an IOMMU, direct-mapped in typed arrays: every
 * DMA beat looks here, so it allocates nothing. A collision forgets the older answer, which only costs
 * a re-check (as the clear-when-full map it replaces did).
 */
class Memo {
  /** Per slot, side by side (one host cache line for a beat): key, epoch, and pa - iova when ok or NaN for a fault. */
  private readonly slots = new Float64Array(3 << MEMO_BITS).fill(-1);
  /** A fault's reason, written only for faults (a slot's NaN value says the reason is its own). */
  private readonly reasons: (string | undefined)[] = new Array<string | undefined>(1 << MEMO_BITS).fill(undefined);

  /** Records the answer for page with tag (< 128); true when it is the one already recorded at this epoch. */
  same(page: number, tag: number, epoch: number, t: Translation, iova: number): boolean {
    const i = pageSlot(page, tag, MEMO_BITS);
    const at = 3 * i;
    const slots = this.slots;
    const key = page * 128 + tag;
    if (t.ok) {
      const value = t.pa - iova;
      if (slots[at] === key && slots[at + 1] === epoch && slots[at + 2] === value) return true;
      slots[at + 2] = value;
    } else {
      const reason = t.fault.reason;
      const v = slots[at + 2]!;
      if (slots[at] === key && slots[at + 1] === epoch && v !== v && this.reasons[i] === reason) return true;
      slots[at + 2] = NaN;
      this.reasons[i] = reason;
    }
    slots[at] = key;
    slots[at + 1] = epoch;
    return false;
  }
}

/**
 * When each page was last walked by one walker ("cached at"), direct-mapped; a collision forgets the
 * older page. Entries carry the timeline they were made in: a restore starts a new one, so it
 * forgets every entry without touching them (clearing the arrays per explorer run cost more than the run).
 */
class WalkTimes {
  /** Per slot, side by side: page, time, timeline. */
  private readonly slots = new Float64Array(3 << WALK_BITS).fill(-1);

  set(page: number, time: number, timeline: number): void {
    const at = 3 * pageSlot(page, 0, WALK_BITS);
    this.slots[at] = page;
    this.slots[at + 1] = time;
    this.slots[at + 2] = timeline;
  }

  get(page: number, timeline: number): number | undefined {
    const at = 3 * pageSlot(page, 0, WALK_BITS);
    return this.slots[at] === page && this.slots[at + 2] === timeline ? this.slots[at + 1] : undefined;
  }
}

interface FreedTable {
  owner: Extract<PageOwner, { kind: 'pgtable' }>;
  time: number;
  /** Walkers already told about. */
  reportedBy: string[];
}

/** A range a kernel call changed, looked up when no kernel call is in flight any more. */
interface Pending {
  domain: number;
  call: 'map' | 'unmap';
  iova: number;
  size: number;
  time: number;
  site?: string;
}

/** A kernel map or unmap, for naming the call that disagrees. */
interface KernelCall {
  domain: number;
  call: 'map' | 'unmap';
  iova: number;
  size: number;
  pa?: number;
  time: number;
  site?: string;
}

export interface CheckersSnapshot {
  depth: number;
  promised: [number, Promised[]][];
  pending: Pending[];
  freed: [number, FreedTable][];
  history: KernelCall[];
  reported: string[];
}

export class Checkers implements HwObserver, KernelObserver, Snapshotable<CheckersSnapshot> {
  private kernel: Kernel | null = null;
  private unwatchKernel: () => void = () => undefined;
  private readonly tables = new Map<string, ModelTables | null>();
  /** Kernel calls in flight (several threads in the explorer). */
  private depth = 0;
  /** Bumped by everything that can change a translation and that the CPU cache and bus do not count. */
  private epoch = 0;
  /** Bumped by every restore: walk times recorded before belong to another timeline. */
  private timeline = 0;
  private memo = new Map<string, Memo>();
  /** When each page was last walked, per walker: "cached at". */
  private lastWalk = new Map<string, WalkTimes>();
  /** The walker walkRead saw last and its table: walks read twice or more in a row. */
  private walkAgent = '';
  private walkTimes: WalkTimes | undefined;
  /** Walk-cached table words found to hold in memory, direct-mapped by address: pa, value, epoch, RAM generation. */
  private readonly levelMemo = new Float64Array(4 << LEVEL_BITS).fill(-1);
  /** The IOMMU beat saw last, with its memo and tables: beats come in runs through one IOMMU. */
  private beatIommu: IommuModel | null = null;
  private beatMemo: Memo | undefined;
  private beatTables: ModelTables | null | undefined;
  private promised = new Map<number, PromisedMappings>();
  private pending: Pending[] = [];
  private freed = new Map<number, FreedTable>();
  private history: KernelCall[] = [];
  /** Once-per-cause findings already raised (PM state keys are dropped at every PM transition). */
  private reported = new Set<string>();
  /** The script line of the call in progress, when the session can tell. */
  callSite: (() => string | undefined) | undefined;

  constructor(private readonly opts: CheckersOptions) {
    for (const [name, model] of opts.iommus) {
      const cfg = opts.config.iommus.find((c) => c.name === name);
      this.tables.set(name, cfg ? modelTables(model, cfg, opts.bus) : null);
      this.memo.set(name, new Memo());
    }
    opts.trace.subscribe((e) => {
      if (e.cat !== 'pm') return;
      this.epoch++;
      for (const k of this.reported) if (k.startsWith('pm|')) this.reported.delete(k);
    });
  }

  /** The kernel is booting on this SoC: watch its allocator. */
  attachKernel(k: Kernel): void {
    this.kernel = k;
    this.unwatchKernel = k.pages.subscribe((e) => this.pageEvent(e));
  }

  /** An explorer restore dropped the kernel a run had booted: the allocator is no longer watched. */
  detachKernel(): void {
    this.unwatchKernel();
    this.kernel = null;
  }

  private site(): string | undefined {
    return this.callSite?.();
  }

  // ---- hardware ------------------------------------------------------------------------------

  walkRead(agent: string, pa: number, _value: number, iova: number | undefined): void {
    if (iova !== undefined) {
      if (agent !== this.walkAgent || !this.walkTimes) {
        let m = this.lastWalk.get(agent);
        if (!m) this.lastWalk.set(agent, (m = new WalkTimes()));
        this.walkAgent = agent;
        this.walkTimes = m;
      }
      this.walkTimes.set(Math.floor(iova / 4096), this.opts.clock.now(), this.timeline);
    }
    if (this.freed.size === 0) return;
    const f = this.freed.get(Math.floor(pa / GRANULE));
    if (!f || f.reportedBy.includes(agent)) return;
    f.reportedBy.push(agent);
    const now = this.kernel?.pages.allocationAt(pa);
    const state = now ? `it now belongs to ${ownerLabel(now.owner)} (allocated at t=${now.time})` : 'it is free';
    this.opts.findings.report({
      kind: 'table-use-after-free',
      severity: 'error',
      message: `${agent} walker read ${hex(pa)}${iova === undefined ? '' : ` for IOVA ${hex(iova)}`}: it was a level-${f.owner.level} page table of domain ${f.owner.domain}, freed at t=${f.time}, and ${state}`,
      where: where({ iommu: f.owner.iommu ?? agent, iova, domain: f.owner.domain, pa }),
    });
  }

  describe(pa: number): { label: string; domain?: number } | undefined {
    const a = this.kernel?.pages.allocationAt(pa);
    if (!a) return undefined;
    return { label: ownerLabel(a.owner), ...(a.owner.kind === 'pgtable' ? { domain: a.owner.domain } : {}) };
  }

  masterOff(master: MasterPort, iova: number, access: AccessKind): void {
    const key = `pm|off|${master.name}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const pd = this.opts.config.devices.find((d) => d.name === master.name)?.powerDomain;
    this.opts.findings.report({
      kind: 'dma-while-suspended',
      severity: 'error',
      message: `${master.name}: DMA ${access} at IOVA ${hex(iova)} while the master is powered off${pd ? ` (power domain ${pd} is off)` : ''}`,
      where: where({ device: master.name, iova }),
    });
  }

  beat(master: MasterPort, iommu: IommuModel, iova: number, access: AccessKind, t: Translation): void {
    if (iommu !== this.beatIommu) {
      this.beatIommu = iommu;
      this.beatMemo = this.memo.get(iommu.name);
      this.beatTables = this.tables.get(iommu.name);
    }
    const memo = this.beatMemo;
    if (!memo) return;
    const epoch = this.epoch + this.opts.bus.cache.generation + this.opts.bus.mmioWrites;
    if (memo.same(Math.floor(iova / 4096), (master.id & 63) * 2 + (access === 'write' ? 1 : 0), epoch, t, iova)) return;
    if (!t.ok && t.fault.reason === 'powered-off') return this.iommuOff(master, iommu, iova, access);
    const k = this.kernel;
    const tables = this.beatTables;
    const st = k ? k.pm.inactiveStatus(iommu.name) : null;
    if (st !== null && this.kernelDriven(tables, k!, master, access)) return this.suspended(master, iommu, iova, access, st);
    // A kernel call is changing tables or registers: a DMA racing with it proves nothing about the driver.
    if (this.depth > 0 || !tables) return;
    if (!this.agreesWithMemory(tables, iova, t, epoch)) this.checkStale(tables, master, iommu, iova, access, t);
    if (k) this.checkProgrammed(tables, k, master, iommu, iova, access);
  }

  /**
   * Whether the model says t agrees with the tables in memory by construction, so the re-walk can be
   * skipped: every level was read from memory just now, or the one level taken from the walk cache is
   * still what memory holds where a walk would read it now. Anything else is re-walked in full.
   */
  private agreesWithMemory(tables: ModelTables, iova: number, t: Translation, epoch: number): boolean {
    if (!t.ok) return false;
    if (t.source === 'walk') return true;
    if (t.source !== 'walk-cache' || tables.cachedLevelAt === undefined) return false;
    const pa = t.cachedPa!;
    const value = t.cachedValue!;
    if (tables.cachedLevelAt(iova) !== pa) return false;
    // Streaming DMA takes one DTE from the walk cache for 256 pages in a row: read it once for as
    // long as no byte has landed in RAM, nothing is queued to land on it, and the epoch holds.
    const ram = this.opts.bus.ram;
    // Hashed, not the word index's low bits: a copy's source and destination DTEs often share those.
    const at = 4 * pageSlot(Math.floor(pa / 4), 0, LEVEL_BITS);
    const m = this.levelMemo;
    if (m[at] === pa && m[at + 1] === value && m[at + 2] === epoch && m[at + 3] === ram.generation && !ram.pendingOver(pa, 4)) return true;
    if (tables.read(pa) !== value) return false;
    m[at] = pa;
    m[at + 1] = value;
    m[at + 2] = epoch;
    m[at + 3] = ram.generation;
    return true;
  }

  /**
   * Whether the kernel's driver is what set up the instance translating this access: translation
   * off, or walking a kernel page table. A script that programs the registers itself, with tables
   * of its own, is not bound by the kernel's runtime-PM state.
   */
  private kernelDriven(tables: ModelTables | null | undefined, k: Kernel, master: MasterPort, access: AccessKind): boolean {
    if (!tables) return true;
    const window = tables.windowFor(master, access);
    const lt = tables.live().find((l) => l.window === window);
    return !lt || !lt.enabled || k.pages.ownerOf(lt.root)?.kind === 'pgtable';
  }

  private domainOf(dev: string): IommuDomain | null {
    return this.kernel?.core.groupOf(dev)?.domain ?? null;
  }

  private iommuOff(master: MasterPort, iommu: IommuModel, iova: number, access: AccessKind): void {
    const key = `pm|iommu-off|${iommu.name}|${master.name}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const pd = this.opts.config.iommus.find((c) => c.name === iommu.name)?.powerDomain;
    const rpm = this.kernel ? `, runtime PM status ${this.kernel.pm.status(iommu.name)}` : '';
    this.opts.findings.report({
      kind: 'dma-while-suspended',
      severity: 'error',
      message: `${master.name}: DMA ${access} at IOVA ${hex(iova)} through ${iommu.name} while ${iommu.name} is powered off${pd ? ` (power domain ${pd})` : ''}${rpm}`,
      where: where({ iommu: iommu.name, device: master.name, iova, domain: this.domainOf(master.name)?.id }),
    });
  }

  private suspended(master: MasterPort, iommu: IommuModel, iova: number, access: AccessKind, status: string): void {
    const key = `pm|rpm|${iommu.name}|${master.name}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const k = this.kernel!;
    const linked = k.pm.deviceLinks().some((l) => l.consumer === master.name && l.supplier === iommu.name && l.flags.includes('pm-runtime'));
    const why = linked ? `${master.name} is ${k.pm.status(master.name)}: a master must be runtime-active (its get_sync resumes ${iommu.name} through the link) before it does DMA` : `no pm-runtime device link from ${master.name} to ${iommu.name} keeps it resumed while ${master.name} works`;
    this.opts.findings.report({
      kind: 'dma-while-suspended',
      severity: 'error',
      message: `${master.name}: DMA ${access} at IOVA ${hex(iova)} through ${iommu.name} while ${iommu.name} is runtime-${status}; ${why}`,
      where: where({ iommu: iommu.name, device: master.name, iova, domain: this.domainOf(master.name)?.id }),
    });
  }

  private checkStale(tables: ModelTables, master: MasterPort, iommu: IommuModel, iova: number, access: AccessKind, t: Translation): void {
    if (!t.ok && t.fault.reason !== 'dte-invalid' && t.fault.reason !== 'pte-invalid' && t.fault.reason !== 'permission') return;
    const p = tables.peek(master, iova, access);
    if (p.kind === 'off') return;
    if (t.ok ? p.kind === 'ok' && p.pa === t.pa : p.kind === 'fault') return;
    const d = this.domainOf(master.name);
    const walked = this.lastWalk.get(p.window)?.get(Math.floor(iova / 4096), this.timeline);
    const cached = walked === undefined ? '' : ` (cached by the walk at t=${walked})`;
    const tablesSay = p.kind === 'ok' ? `map it to ${hex(p.pa)}` : `do not (${p.reason}: ${p.detail})`;
    const got = t.ok ? `translated to ${hex(t.pa)} through a cached entry${cached}` : `faulted (${t.fault.reason}) on a cached entry${cached}`;
    const last = this.lastCall(d?.id, iova);
    this.opts.findings.report({
      kind: 'stale-translation',
      severity: 'error',
      message: `${p.window}: ${master.name} ${access} at IOVA ${hex(iova)} ${got}, but the tables in memory${d ? ` (domain ${d.id})` : ''} ${tablesSay}${last ? `; last change: ${last}` : ''}: an IOTLB/walk-cache invalidation is missing, or was issued before the table update`,
      where: where({ iommu: iommu.name, device: master.name, iova, domain: d?.id }),
    });
  }

  private checkProgrammed(tables: ModelTables, k: Kernel, master: MasterPort, iommu: IommuModel, iova: number, access: AccessKind): void {
    const d = this.domainOf(master.name);
    if (!d || !isPaging(d.type) || d.freed) return;
    const window = tables.windowFor(master, access);
    const lt = tables.live().find((l) => l.window === window);
    if (!lt) return;
    const owner = lt.enabled ? k.pages.ownerOf(lt.root) : undefined;
    if (owner?.kind === 'pgtable' && owner.domain === d.id) return;
    const hw = lt.enabled ? `${lt.reg} = ${hex(lt.root)}${owner ? ` (${ownerLabel(owner)})` : ''}` : 'translation is off';
    const cause = !k.pm.isEnabled() ? 'runtime PM is compiled out (CONFIG_PM=n)' : k.pm.control(iommu.name) === 'on' ? `runtime PM of ${iommu.name} is inhibited (power/control = on)` : null;
    if (!cause) return this.notReprogrammed(master, iommu, window, iova, access, d.id, hw);
    const key = `setup|${window}|${d.id}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.opts.findings.report({
      kind: 'pm-disabled-no-setup',
      severity: 'error',
      message: `${master.name}: DMA ${access} at IOVA ${hex(iova)} through ${window}, which was never programmed with domain ${d.id} attached to it (${hw}): ${cause}, so a driver that programs the hardware only from its runtime resume callback never does; program it from attach too`,
      where: where({ iommu: iommu.name, device: master.name, iova, domain: d.id }),
    });
  }


  /**
   * A runtime-active IOMMU in a power domain, not translating with the domain attached to it: the
   * domain was off (genpd), which lost its registers, and its runtime resume did not program it again.
   */
  private notReprogrammed(master: MasterPort, iommu: IommuModel, window: string, iova: number, access: AccessKind, domain: number, hw: string): void {
    const k = this.kernel!;
    const pd = this.opts.config.iommus.find((c) => c.name === iommu.name)?.powerDomain;
    if (!k.pm.isEnabled() || pd === undefined || k.pm.status(iommu.name) !== 'active') return;
    const key = `resume|${window}|${domain}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.opts.findings.report({
      kind: 'dma-while-suspended',
      severity: 'error',
      message: `${master.name}: DMA ${access} at IOVA ${hex(iova)} through ${window}, runtime-active with domain ${domain} attached but not programmed with it (${hw}): its registers are lost while power domain ${pd} is off, and its runtime resume did not program them again`,
      where: where({ iommu: iommu.name, device: master.name, iova, domain }),
    });
  }

  // ---- page allocator ------------------------------------------------------------------------

  private pageEvent(e: PageEvent): void {
    if (e.owner.kind !== 'pgtable') return;
    const first = Math.floor(e.pa / GRANULE);
    const n = Math.ceil(e.bytes / GRANULE);
    if (e.op === 'alloc') {
      for (let g = first; g < first + n; g++) this.freed.delete(g);
      return;
    }
    const owner = e.owner;
    const time = this.opts.clock.now();
    for (let g = first; g < first + n; g++) this.freed.set(g, { owner, time, reportedBy: [] });
    for (const [name, tables] of this.tables) {
      for (const lt of tables?.live() ?? []) {
        if (!lt.enabled || lt.root < e.pa || lt.root >= e.pa + e.bytes) continue;
        const site = this.site();
        this.opts.findings.report({
          kind: 'live-domain-free',
          severity: 'error',
          message: `domain ${owner.domain} freed while live in ${lt.window}: ${lt.reg} still points at its level-${owner.level} table ${hex(lt.root)} with translation on${atSite(site)}; its table pages go back to the allocator while the walker can still read them (detach first: translation off and TLBs invalidated, then free)`,
          where: where({ iommu: name, domain: owner.domain, pa: lt.root, line: site }),
        });
      }
    }
  }

  // ---- kernel --------------------------------------------------------------------------------

  opBegin(): void {
    this.depth++;
  }

  opEnd(): void {
    this.depth = Math.max(0, this.depth - 1);
    this.epoch++;
    if (this.depth === 0 && this.pending.length > 0) this.verify();
  }

  mapped(d: IommuDomain, iova: number, pa: number, size: number): void {
    const site = this.site();
    const time = this.opts.clock.now();
    let m = this.promised.get(d.id);
    if (!m) this.promised.set(d.id, (m = new PromisedMappings()));
    // A map succeeding over a promised range can only be two callers racing for the same IOVAs
    // (a block and a page, P4): which one the tables keep is not the driver's promise to make.
    if (m.within(iova, iova + size).length > 0) m.remove(iova, size);
    else m.add({ iova, size, pa, time, site });
    this.pending.push({ domain: d.id, call: 'map', iova, size, time, site });
    this.remember({ domain: d.id, call: 'map', iova, size, pa, time, site });
  }

  unmapped(d: IommuDomain, iova: number, size: number): void {
    this.promised.get(d.id)?.remove(iova, size);
    const c: KernelCall = { domain: d.id, call: 'unmap', iova, size, time: this.opts.clock.now(), site: this.site() };
    this.pending.push({ ...c });
    this.remember(c);
  }

  unmapIncomplete(d: IommuDomain, iova: number, size: number, unmapped: number): void {
    const last = this.lastCall(d.id, iova);
    const site = this.site();
    this.opts.findings.report({
      kind: 'unmap-mismatch',
      severity: 'warning',
      message: `domain ${d.id} (${d.iommu}): iommu_unmap(${hex(iova)}, size ${hex(size)})${atSite(site)} unmapped ${hex(unmapped)} bytes: ${unmapped === 0 ? 'nothing is mapped there' : `the range is mapped only up to ${hex(iova + unmapped)}`}${last ? `; last change near it: ${last}` : ''}`,
      where: where({ iommu: d.iommu, iova: iova + unmapped, domain: d.id, line: site }),
    });
  }

  domainFreed(d: IommuDomain): void {
    this.promised.delete(d.id);
    this.pending = this.pending.filter((p) => p.domain !== d.id);
  }

  private remember(c: KernelCall): void {
    this.history.push(c);
    if (this.history.length > HISTORY) this.history.shift();
  }

  private callText(c: KernelCall): string {
    const range = `${hex(c.iova)}, size ${hex(c.size)}`;
    return `${c.call === 'map' ? `map(${range} → ${hex(c.pa ?? 0)})` : `unmap(${range})`} at t=${c.time}${atSite(c.site)}`;
  }

  /** The latest map or unmap of domain that covers iova (or near it). */
  private lastCall(domain: number | undefined, iova: number, except?: Promised): string | undefined {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const c = this.history[i]!;
      if (c.domain !== domain || iova < c.iova - NEIGHBOURHOOD || iova >= c.iova + c.size + NEIGHBOURHOOD) continue;
      if (except && c.call === 'map' && c.iova === except.iova && c.time === except.time) continue;
      return this.callText(c);
    }
    return undefined;
  }

  /**
   * With the driver's iova_to_phys: unmapped ranges must stay unmapped, and the promised ranges
   * around what changed since the last check must still give their PAs.
   */
  private verify(): void {
    const k = this.kernel;
    const pending = this.pending;
    this.pending = [];
    if (!k) return;
    const seen = new Set<Promised>();
    for (const p of pending) {
      const d = k.core.domain(p.domain);
      const m = this.promised.get(p.domain);
      if (!d || d.freed || !m) continue;
      if (p.call === 'unmap') this.verifyUnmapped(d, m, p);
      for (const r of m.within(p.iova - NEIGHBOURHOOD, p.iova + p.size + NEIGHBOURHOOD)) {
        if (seen.size >= VERIFY_LIMIT) return;
        if (seen.has(r)) continue;
        seen.add(r);
        for (const iova of probes(r.iova, r.size)) {
          const got = bounded(d.ops.iovaToPhys(d, iova));
          const want = r.pa + (iova - r.iova);
          if (got === undefined || got === want) continue;
          this.lost(d, r, iova, got);
          m.remove(r.iova, r.size);
          break;
        }
      }
    }
  }

  /** An unmap that returned success, yet part of the range still translates (and nothing mapped it again). */
  private verifyUnmapped(d: IommuDomain, m: PromisedMappings, p: Pending): void {
    for (const iova of probes(p.iova, p.size)) {
      if (m.within(iova, iova + 1).length > 0) continue;
      const got = bounded(d.ops.iovaToPhys(d, iova));
      if (got === undefined || got === 0) continue;
      const other = this.lastCall(d.id, iova);
      this.opts.findings.report({
        kind: 'unmap-mismatch',
        severity: 'error',
        message: `domain ${d.id} (${d.iommu}): unmap(${hex(p.iova)}, size ${hex(p.size)}) reported the range unmapped at t=${p.time}${atSite(p.site)}, but iova_to_phys(${hex(iova)}) still gives ${hex(got)}: the page tables hold a mapping nobody made${other ? `; latest call near it: ${other}` : ''}`,
        where: where({ iommu: d.iommu, iova, domain: d.id, line: p.site }),
      });
      return;
    }
  }

  private lost(d: IommuDomain, r: Promised, iova: number, got: number): void {
    const other = this.lastCall(d.id, iova, r);
    this.opts.findings.report({
      kind: 'lost-mapping',
      severity: 'error',
      message: `domain ${d.id} (${d.iommu}): map(${hex(r.iova)}, size ${hex(r.size)} → ${hex(r.pa)}) returned success at t=${r.time}${atSite(r.site)}, but iova_to_phys(${hex(iova)}) now gives ${got === 0 ? 'nothing (unmapped)' : hex(got)} instead of ${hex(r.pa + (iova - r.iova))}${other ? `; the call that disagrees: ${other}` : ''}`,
      where: where({ iommu: d.iommu, iova, domain: d.id, line: r.site }),
    });
  }

  // ---- snapshots -----------------------------------------------------------------------------

  snapshot(): CheckersSnapshot {
    return {
      depth: this.depth,
      promised: [...this.promised].map(([d, m]) => [d, m.list()]),
      pending: this.pending.map((p) => ({ ...p })),
      freed: [...this.freed].map(([g, f]) => [g, { ...f, reportedBy: f.reportedBy.slice() }]),
      history: this.history.map((c) => ({ ...c })),
      reported: [...this.reported],
    };
  }

  restore(s: CheckersSnapshot): void {
    this.depth = s.depth;
    this.promised = new Map(s.promised.map(([d, l]) => [d, PromisedMappings.from(l)]));
    this.pending = s.pending.map((p) => ({ ...p }));
    this.freed = new Map(s.freed.map(([g, f]) => [g, { ...f, reportedBy: f.reportedBy.slice() }]));
    this.history = s.history.map((c) => ({ ...c }));
    this.reported = new Set(s.reported);
    // What was checked before belongs to another timeline. Memo entries carry the epoch they were
    // checked at, a sum of counters that never go back (this one, the CPU cache's generation, the
    // bus's MMIO stores), so after the bump no entry made before can match again.
    this.epoch++;
    this.timeline++;
  }
}

/** The pages of a range looked up: all of a small range, the first and last of a big one. */
function probes(iova: number, size: number): number[] {
  const pages = Math.max(1, Math.floor(size / 4096));
  if (pages <= 16) return Array.from({ length: pages }, (_, i) => iova + i * 4096);
  return [iova, iova + (pages - 1) * 4096];
}

/** Run a lookup to completion, or give up (undefined) if it keeps yielding, e.g. on a lock left held. */
function bounded(op: Op<number>): number | undefined {
  let r = op.next();
  for (let i = 0; !r.done; i++) {
    if (i >= LOOKUP_STEPS) return undefined;
    r = op.next();
  }
  return r.value;
}
