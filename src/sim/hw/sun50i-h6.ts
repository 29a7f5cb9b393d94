import type { IommuConfig } from '../config/types';
import { num } from '../config/types';
import { BusError, type MmioRegion } from '../mem/bus';
import { defineBlock, RegisterFile, type FieldSpec, type RegSpec, type WriteEvent } from '../regs/dsl';
import { KeyedCache } from './keyed-cache';
import type { IommuFactory } from './registry';
import { ModelLog } from './model-log';
import { Tlb, type EvictionLog, type TlbLine } from './tlb';
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
  type TranslationSource,
  type WalkCacheEntry,
} from './types';
import { walkRead32 } from './walker';
import { reservedWriteReporter } from './report';

/** Masters 0..5 on the H6 (hardware-facts §1.2), named as in the BSP. */
export const H6_MASTERS = ['de', 've_r', 'di', 've', 'csi', 'vp9'] as const;
const NUM_MASTERS = H6_MASTERS.length;
const MASTER_MASK = (1 << NUM_MASTERS) - 1;

// Interrupt bits shared by INT_ENABLE / INT_CLR / INT_STA.
export const INT_L1PG_INVALID = 1 << 16;
export const INT_L2PG_INVALID = 1 << 17;
const INT_MASK = INT_L1PG_INVALID | INT_L2PG_INVALID | MASTER_MASK;

// TLB_FLUSH bits.
export const FLUSH_MACRO_TLB = 1 << 16;
export const FLUSH_PTW_CACHE = 1 << 17;

const RESET_GLOBAL = 1 << 31;
/** H6 entries keep no permissions: the ACI is checked against DM_AUT_CTRL on every access. */
const PERM_RW = PERM_READ | PERM_WRITE;
const SPAGE = 4096;
const DT_ALIGN = 16 * 1024;

const perMaster = (prefix: string, doc: (m: number) => string, access?: FieldSpec['access'], reset?: number): FieldSpec[] =>
  H6_MASTERS.map((n, m) => ({ name: `${prefix}${m}`, lsb: m, width: 1, access, reset, doc: `${doc(m)} (master ${m}, ${n.toUpperCase()})` }));

const intFields = (access: FieldSpec['access'], what: string): FieldSpec[] => [
  ...perMaster('MASTER', () => `permission fault ${what}`, access),
  { name: 'L1PG_INVALID', lsb: 16, width: 1, access, doc: `invalid DTE (level-1) fault ${what}` },
  { name: 'L2PG_INVALID', lsb: 17, width: 1, access, doc: `invalid PTE (level-2) fault ${what}` },
];

/** DM_AUT_CTRL(r) holds ACI domains 2r (bits 15:0) and 2r+1 (bits 31:16); master m owns bits 2m (read) and 2m+1 (write). */
const autFields = (r: number): FieldSpec[] =>
  [2 * r, 2 * r + 1].flatMap((d) =>
    H6_MASTERS.flatMap((n, m) => [
      { name: `ACI${d}_M${m}_RD_UNAVAIL`, lsb: (d & 1) * 16 + 2 * m, width: 1, doc: `1 = ${n.toUpperCase()} may not read pages with ACI ${d}` },
      { name: `ACI${d}_M${m}_WR_UNAVAIL`, lsb: (d & 1) * 16 + 2 * m + 1, width: 1, doc: `1 = ${n.toUpperCase()} may not write pages with ACI ${d}` },
    ]),
  );

const pmuIndexOffset = (i: number): number => (i <= 6 ? 0x230 + 0x10 * i : i === 7 ? 0x2d0 : 0x2e0);
const pmuWhat = (i: number): string => (i < NUM_MASTERS ? `micro-TLB ${i}` : i === 6 ? 'macro-TLB' : i === 7 ? 'PTW cache' : `index ${i}`);

const H6_REGS: RegSpec[] = [
  { name: 'VERSION', offset: 0x000, access: 'ro', reset: 0x10, doc: 'IP version (0x10 on H6). BSP only.' },
  {
    name: 'RESET',
    offset: 0x010,
    writableMask: 0xffffffff,
    fields: [
      ...perMaster('MASTER', () => 'reset of the master path, active-low: 0 holds it in reset, 1 releases', 'rw', 1),
      { name: 'GLOBAL', lsb: 31, width: 1, reset: 1, doc: 'global reset, active-low (BSP)' },
    ],
    doc: 'Per-master reset, active-low. Mainline pulses it in the fault handler: ~mask, then 0xFFFFFFFF. Putting a master in reset drops its micro-TLB.',
  },
  { name: 'ENABLE', offset: 0x020, fields: [{ name: 'ENABLE', lsb: 0, width: 1, doc: 'translation enable; while 0 masters reach memory untranslated' }] },
  {
    name: 'BYPASS',
    offset: 0x030,
    fields: perMaster('MASTER', () => '1 = bypass translation'),
    doc: 'Per-master bypass. The BSP writes 0x7f; mainline never writes it and relies on the reset value, which must therefore translate (0).',
  },
  { name: 'AUTO_GATING', offset: 0x040, fields: [{ name: 'ENABLE', lsb: 0, width: 1, doc: 'clock auto-gating; the driver clears it around invalidations' }] },
  { name: 'WBUF_CTRL', offset: 0x044, doc: 'Write-buffer control. Not used by mainline; stored, no effect modelled.' },
  { name: 'OOO_CTRL', offset: 0x048, doc: 'Out-of-order control. Not used by mainline; stored, no effect modelled.' },
  { name: '4KB_BDY_PRT_CTRL', offset: 0x04c, doc: '4 KiB boundary protection. Not used by mainline; stored, no effect modelled.' },
  {
    name: 'TTB',
    offset: 0x050,
    writableMask: 0xffffffff,
    fields: [{ name: 'BASE', lsb: 14, width: 18, doc: 'physical address of the 16 KiB Directory Table (bits 13:0 are dropped)' }],
    doc: 'Translation table base: the DT physical address. A value that is not 16 KiB aligned is reported (misaligned-table).',
  },
  { name: 'TLB_ENABLE', offset: 0x060, doc: 'Not used by mainline; stored, no effect modelled.' },
  {
    name: 'TLB_PREFETCH',
    offset: 0x070,
    fields: perMaster('MASTER', () => 'prefetch the next page translation into the macro-TLB after a walk'),
    doc: 'Mainline writes 0x3f (the BSP 0x7f, whose bit 6 is reserved on H6).',
  },
  {
    name: 'TLB_FLUSH',
    offset: 0x080,
    fields: [
      ...perMaster('MICRO_TLB', () => 'flush the micro-TLB', 'sc'),
      { name: 'MACRO_TLB', lsb: 16, width: 1, access: 'sc', doc: 'flush the macro-TLB' },
      { name: 'PTW_CACHE', lsb: 17, width: 1, access: 'sc', doc: 'flush the page-table-walk cache (cached DTEs)' },
    ],
    doc: 'BSP: TLB_FLUSH_ENABLE. Self-clearing; software polls until the register reads 0.',
  },
  { name: 'TLB_IVLD_MODE_SEL', offset: 0x084, doc: 'BSP only: range invalidation on IP version >= 0x12; no effect on H6.' },
  { name: 'TLB_IVLD_START_ADDR', offset: 0x088, doc: 'BSP only (range invalidation, IP >= 0x12); no effect on H6.' },
  { name: 'TLB_IVLD_END_ADDR', offset: 0x08c, doc: 'BSP only (range invalidation, IP >= 0x12); no effect on H6.' },
  { name: 'TLB_IVLD_ADDR', offset: 0x090, doc: 'Address for address+mask TLB invalidation.' },
  { name: 'TLB_IVLD_ADDR_MASK', offset: 0x094, doc: 'Entries whose (VA & mask) == (ADDR & mask) are invalidated. Mainline: 0xFFFFF000.' },
  {
    name: 'TLB_IVLD_ENABLE',
    offset: 0x098,
    fields: [{ name: 'ENABLE', lsb: 0, width: 1, access: 'sc', doc: 'write 1 to invalidate micro- and macro-TLB entries matching ADDR/MASK; reads 0 when done' }],
  },
  { name: 'PC_IVLD_MODE_SEL', offset: 0x09c, doc: 'BSP only: range mode on IP version >= 0x14; no effect on H6.' },
  { name: 'PC_IVLD_ADDR', offset: 0x0a0, doc: 'Address whose PTW-cache entry (the cached DTE of its 1 MiB region) is invalidated.' },
  { name: 'PC_IVLD_START_ADDR', offset: 0x0a4, doc: 'BSP only (range mode, IP >= 0x14); no effect on H6.' },
  {
    name: 'PC_IVLD_ENABLE',
    offset: 0x0a8,
    fields: [{ name: 'ENABLE', lsb: 0, width: 1, access: 'sc', doc: 'write 1 to invalidate the PTW-cache entry for PC_IVLD_ADDR; reads 0 when done' }],
  },
  { name: 'PC_IVLD_END_ADDR', offset: 0x0ac, doc: 'BSP only (range mode, IP >= 0x14); no effect on H6.' },
  ...Array.from(
    { length: 8 },
    (_, r): RegSpec => ({
      name: `DM_AUT_CTRL${r}`,
      offset: 0x0b0 + 4 * r,
      reset: r === 0 ? 0x00000aaa : 0,
      fields: autFields(r),
      doc:
        `Authority of ACI domains ${2 * r} (bits 15:0) and ${2 * r + 1} (bits 31:16): per master a read-unavailable and a write-unavailable bit. Plain stores: a write replaces both halves.` +
        (r === 0 ? ' Reset: ACI 0 read-only for every master (the driver comment says domain 0 "is only read-only").' : ''),
    }),
  ),
  { name: 'DM_AUT_OVWT', offset: 0x0d0, doc: 'Authority overwrite. Not used by mainline; stored, no effect modelled.' },
  { name: 'INT_ENABLE', offset: 0x100, fields: intFields('rw', 'interrupt enable'), doc: 'Mainline writes 0x0003003f.' },
  { name: 'INT_CLR', offset: 0x104, fields: intFields('wo', 'clear (write 1)'), doc: 'Write 1 to clear the INT_STA bit; clearing L1/L2 also clears L1PG_INT / L2PG_INT.' },
  {
    name: 'INT_STA',
    offset: 0x108,
    fields: [...intFields('ro', 'status'), { name: 'DBG_MODE', lsb: 31, width: 1, access: 'ro', doc: 'BSP: debug-mode master; never set by the model' }],
    doc: 'Raw status; the IRQ line is INT_STA & INT_ENABLE != 0.',
  },
  ...H6_MASTERS.map((n, m): RegSpec => ({ name: `INT_ERR_ADDR${m}`, offset: 0x110 + 4 * m, access: 'ro', doc: `IOVA of the last permission fault by master ${m} (${n.toUpperCase()}).` })),
  { name: 'INT_ERR_ADDR_L1', offset: 0x130, access: 'ro', doc: 'IOVA of the last invalid-DTE fault.' },
  { name: 'INT_ERR_ADDR_L2', offset: 0x134, access: 'ro', doc: 'IOVA of the last invalid-PTE fault.' },
  ...H6_MASTERS.map((n, m): RegSpec => ({ name: `INT_ERR_DATA${m}`, offset: 0x150 + 4 * m, access: 'ro', doc: `The PTE behind master ${m} (${n.toUpperCase()})'s last permission fault (ACI in bits 7:4).` })),
  { name: 'L1PG_INT', offset: 0x180, fields: perMaster('MASTER', () => 'hit an invalid DTE', 'ro'), doc: 'Blame register for invalid-DTE faults.' },
  { name: 'L2PG_INT', offset: 0x184, fields: perMaster('MASTER', () => 'hit an invalid PTE', 'ro'), doc: 'Blame register for invalid-PTE faults.' },
  { name: 'VA', offset: 0x190, doc: 'BSP only: debug VA lookup address. Not modelled.' },
  { name: 'VA_DATA', offset: 0x194, access: 'ro', doc: 'BSP only: debug VA lookup result. Not modelled (reads 0).' },
  { name: 'VA_CONFIG', offset: 0x198, doc: 'BSP only: debug VA lookup control. Not modelled.' },
  { name: 'PMU_ENABLE', offset: 0x200, fields: [{ name: 'ENABLE', lsb: 0, width: 1, doc: 'count accesses and hits' }], doc: 'BSP only (sysfs).' },
  { name: 'PMU_CLR', offset: 0x210, fields: [{ name: 'CLR', lsb: 0, width: 1, access: 'sc', doc: 'clear all counters' }], doc: 'BSP only.' },
  ...Array.from({ length: 9 }, (_, i): RegSpec[] => [
    { name: `PMU_ACCESS_LOW${i}`, offset: pmuIndexOffset(i), access: 'ro', doc: `BSP only: accesses to the ${pmuWhat(i)}, bits 31:0.` },
    { name: `PMU_ACCESS_HIGH${i}`, offset: pmuIndexOffset(i) + 4, access: 'ro', fields: [{ name: 'COUNT', lsb: 0, width: 11, access: 'ro' }], doc: `BSP only: bits 42:32.` },
    { name: `PMU_HIT_LOW${i}`, offset: pmuIndexOffset(i) + 8, access: 'ro', doc: `BSP only: hits in the ${pmuWhat(i)}, bits 31:0.` },
    { name: `PMU_HIT_HIGH${i}`, offset: pmuIndexOffset(i) + 12, access: 'ro', fields: [{ name: 'COUNT', lsb: 0, width: 11, access: 'ro' }], doc: `BSP only: bits 42:32.` },
  ]).flat(),
  ...Array.from({ length: 7 }, (_, i): RegSpec[] => [
    { name: `PMU_TL_LOW${i}`, offset: 0x300 + 0x10 * i, access: 'ro', doc: `BSP only: total latency of ${pmuWhat(i)}; latency is not modelled (reads 0).` },
    { name: `PMU_TL_HIGH${i}`, offset: 0x304 + 0x10 * i, access: 'ro', fields: [{ name: 'COUNT', lsb: 0, width: 18, access: 'ro' }], doc: 'BSP only.' },
    { name: `PMU_ML${i}`, offset: 0x308 + 0x10 * i, access: 'ro', doc: `BSP only: max latency of ${pmuWhat(i)}; not modelled (reads 0).` },
  ]).flat(),
];

/** The H6 IOMMU register block, declared once: behaviour, inspector and script types all come from it. */
export const SUN50I_H6_IOMMU = defineBlock({
  type: 'sun50i-h6-iommu',
  size: 0x10000,
  regs: H6_REGS,
  doc: 'Allwinner H6 IOMMU: one DT/PT address space for masters 0..5, a micro-TLB per master, a shared macro-TLB and a PTW cache of DTEs.',
});

/** An invalidation the driver started and polls for. */
interface Pending {
  reg: 'TLB_FLUSH' | 'TLB_IVLD_ENABLE' | 'PC_IVLD_ENABLE';
  bits: number;
  addr: number;
  mask: number;
  doneAt: number;
}

interface PtwEntry {
  dte: number;
  pa: number;
}

interface H6Snapshot {
  powered: boolean;
  regs: Uint32Array;
  micro: ReturnType<Tlb['snapshot']>[];
  macro: ReturnType<Tlb['snapshot']>;
  ptw: [number, PtwEntry][];
  pending: Pending[];
  faults: Fault[];
  stats: IommuStats;
  pmu: number[];
  names: string[];
  irqLevel: boolean;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/**
 * The Allwinner H6 IOMMU (hardware-facts §1). Translation: micro-TLB of the master, then the macro-TLB,
 * then a two-level walk (DTE through the PTW cache, PTE from RAM), with ACI permissions checked
 * against DM_AUT_CTRL on every access, as the registers say at that moment.
 */
export class Sun50iH6Iommu implements IommuModel {
  readonly model = 'sun50i-h6';
  readonly decl = SUN50I_H6_IOMMU;
  readonly regs: RegisterFile;
  private readonly base: number;
  private readonly size: number;
  private readonly irq: number | undefined;
  private readonly coherentWalk: boolean;
  /** Cycles an invalidation stays busy (0: done before the next read). */
  private readonly busyCycles: number;
  /** Whether the PTW cache also keeps invalid DTEs (a later valid DTE needs a PTW invalidation). */
  private readonly cacheInvalidDte: boolean;

  private micro: Tlb[];
  private macro: Tlb;
  private ptw: KeyedCache<PtwEntry>;
  private powered = true;
  private pending: Pending[] = [];
  private readonly log: ModelLog;
  private st: IommuStats = { hits: 0, misses: 0, walks: 0, faults: 0 };
  private irqLevel = false;
  /** Device names by master ID, learnt from the masters that translate. */
  private names: string[] = H6_MASTERS.slice();

  // Mirrors of registers read on every translation.
  private enabled = false;
  private bypass = 0;
  private resetBits = 0;
  private prefetch = 0;
  private dtBase = 0;
  private aut = new Uint32Array(8);
  private pmuOn = false;
  /** PMU counters: [access, hit] per index 0..8. */
  private pmu = new Array<number>(18).fill(0);

  /** Walk results, copied by Tlb.insert: a walk allocates nothing. The prefetch walk has its own. */
  private readonly walked: TlbLine = { iova: 0, size: SPAGE, pa: 0, perms: PERM_READ | PERM_WRITE, master: -1, aux: 0 };
  private readonly prefetched: TlbLine = { iova: 0, size: SPAGE, pa: 0, perms: PERM_READ | PERM_WRITE, master: -1, aux: 0 };
  /** Reused success result: the hit path allocates nothing. */
  private readonly ok = { ok: true as const, pa: 0, coherent: false, source: undefined as TranslationSource | undefined, cachedPa: 0, cachedValue: 0 };
  /** The PTW-cache entry the last counted walk took its DTE from (undefined: read from memory). */
  private walkUsed: PtwEntry | undefined;

  constructor(
    private readonly cfg: IommuConfig,
    private readonly ctx: HwContext,
  ) {
    const win = cfg.reg[0];
    if (!win || cfg.reg.length !== 1) throw new Error(`${cfg.name}: the H6 IOMMU has exactly one register window`);
    this.base = num(win.base);
    this.size = num(win.size);
    this.irq = cfg.irq;
    this.coherentWalk = cfg.coherentWalk ?? false;
    const o = cfg.options ?? {};
    this.busyCycles = typeof o.invalidateCycles === 'number' ? o.invalidateCycles : 0;
    this.cacheInvalidDte = o.cacheInvalidDte !== false;
    const microEntries = typeof o.microTlbEntries === 'number' ? o.microTlbEntries : 16;
    this.log = new ModelLog(ctx, cfg.name);
    const log = (level: string): EvictionLog => this.log.evictions(level);
    this.micro = H6_MASTERS.map((_, m) => {
      const ev = log(`micro${m}`);
      return new Tlb({ level: `micro${m}`, capacity: microEntries, rng: ctx.rng, evictions: ev });
    });
    const macroEv = log('macro');
    this.macro = new Tlb({ level: 'macro', capacity: cfg.tlb?.entries ?? 64, rng: ctx.rng, evictions: macroEv });
    const ptwEv = log('ptw');
    this.ptw = new KeyedCache<PtwEntry>(cfg.walkCache?.entries ?? 16, ctx.rng, (k) => ptwEv.note(k * 0x100000));
    this.regs = new RegisterFile(SUN50I_H6_IOMMU, {
      onWrite: (e) => this.onWrite(e),
      onRead: (r, stored) => this.onRead(r, stored),
      onReservedWrite: reservedWriteReporter(ctx.findings, () => this.name),
    });
    this.mirror();
  }

  get name(): string {
    return this.cfg.name;
  }

  mmio(): MmioRegion[] {
    return [{ base: this.base, size: this.size, target: { name: this.name, read32: (o) => this.regs.read(o), write32: (o, v) => this.regs.write(o, v) } }];
  }

  registerFiles(): { window: string; base: number; regs: RegisterFile }[] {
    return [{ window: this.name, base: this.base, regs: this.regs }];
  }

  private mirror(): void {
    const g = (n: string): number => this.regs.get(n);
    this.enabled = (g('ENABLE') & 1) !== 0;
    this.bypass = g('BYPASS');
    this.resetBits = g('RESET');
    this.prefetch = g('TLB_PREFETCH');
    this.dtBase = g('TTB');
    for (let r = 0; r < 8; r++) this.aut[r] = g(`DM_AUT_CTRL${r}`);
    this.pmuOn = (g('PMU_ENABLE') & 1) !== 0;
  }

  private onWrite(e: WriteEvent): void {
    const name = e.reg.name;
    switch (name) {
      case 'TTB':
        if ((e.written & (DT_ALIGN - 1)) !== 0) {
          this.ctx.findings.report({
            kind: 'misaligned-table',
            severity: 'error',
            message: `${this.name}: TTB written with ${hex(e.written)}, not 16 KiB aligned; the hardware drops bits 13:0 and walks the DT at ${hex(e.value)}`,
            where: { block: this.name, reg: 'TTB' },
          });
        }
        break;
      case 'RESET': {
        const entering = e.old & ~e.value;
        for (let m = 0; m < NUM_MASTERS; m++) if (entering & (1 << m) || entering & RESET_GLOBAL) this.micro[m]!.invalidateAll();
        break;
      }
      case 'TLB_FLUSH':
      case 'TLB_IVLD_ENABLE':
      case 'PC_IVLD_ENABLE': {
        const bits = e.written & (name === 'TLB_FLUSH' ? MASTER_MASK | FLUSH_MACRO_TLB | FLUSH_PTW_CACHE : 1);
        if (bits !== 0) this.start({ reg: name, bits, addr: this.regs.get(name === 'PC_IVLD_ENABLE' ? 'PC_IVLD_ADDR' : 'TLB_IVLD_ADDR'), mask: this.regs.get('TLB_IVLD_ADDR_MASK'), doneAt: 0 });
        break;
      }
      case 'INT_CLR': {
        const clr = e.written & INT_MASK;
        this.regs.set('INT_STA', this.regs.get('INT_STA') & ~clr);
        if (clr & INT_L1PG_INVALID) this.regs.set('L1PG_INT', 0);
        if (clr & INT_L2PG_INVALID) this.regs.set('L2PG_INT', 0);
        this.updateIrq();
        break;
      }
      case 'INT_ENABLE':
        this.updateIrq();
        break;
      case 'PMU_CLR':
        this.pmu.fill(0);
        this.regs.set('PMU_CLR', 0);
        break;
    }
    this.mirror();
  }

  private onRead(r: RegSpec, stored: number): number {
    if (this.pending.length > 0 && (r.name === 'TLB_FLUSH' || r.name === 'TLB_IVLD_ENABLE' || r.name === 'PC_IVLD_ENABLE')) {
      this.settle();
      return this.regs.get(r.name);
    }
    if (r.name.startsWith('PMU_ACCESS_') || r.name.startsWith('PMU_HIT_')) {
      const hit = r.name.startsWith('PMU_HIT_');
      const i = Number(r.name.replace(/\D+/g, ''));
      const v = this.pmu[2 * i + (hit ? 1 : 0)] ?? 0;
      return r.name.includes('HIGH') ? Math.floor(v / 2 ** 32) & 0x7ff : v >>> 0;
    }
    return stored;
  }

  /** Start an invalidation: done at once, or busy for busyCycles of simulated time. */
  private start(p: Pending): void {
    if (this.busyCycles <= 0) {
      this.complete(p);
      return;
    }
    p.doneAt = this.ctx.clock.now() + this.busyCycles;
    this.pending.push(p);
    this.ctx.clock.after(this.busyCycles, `${this.name}.${p.reg}`, () => this.settle());
  }

  /** Complete every invalidation whose time has come. */
  private settle(): void {
    const now = this.ctx.clock.now();
    const due = this.pending.filter((p) => p.doneAt <= now);
    if (due.length === 0) return;
    this.pending = this.pending.filter((p) => p.doneAt > now);
    for (const p of due) this.complete(p);
  }

  private complete(p: Pending): void {
    let n = 0;
    let what: string;
    if (p.reg === 'TLB_FLUSH') {
      for (let m = 0; m < NUM_MASTERS; m++) if (p.bits & (1 << m)) n += this.micro[m]!.invalidateAll();
      if (p.bits & FLUSH_MACRO_TLB) n += this.macro.invalidateAll();
      if (p.bits & FLUSH_PTW_CACHE) {
        n += this.ptw.size;
        this.ptw.clear();
      }
      what = `flush ${hex(p.bits)}`;
    } else if (p.reg === 'TLB_IVLD_ENABLE') {
      for (const t of this.micro) n += t.invalidateMasked(p.addr, p.mask);
      n += this.macro.invalidateMasked(p.addr, p.mask);
      what = `tlb-ivld ${hex(p.addr)}/${hex(p.mask)}`;
    } else {
      n += this.ptw.delete(p.addr >>> 20) ? 1 : 0;
      what = `ptw-ivld ${hex(p.addr)}`;
    }
    // Clear only the bits of this command: a second command may still be busy in the same register.
    const still = this.pending.filter((q) => q.reg === p.reg).reduce((a, q) => a | q.bits, 0);
    this.regs.set(p.reg, this.regs.get(p.reg) & ~(p.bits & ~still));
    this.log.flushEvictions();
    this.ctx.trace.emit({ time: this.ctx.clock.now(), cat: 'inval', name: what, track: this.name, args: { dropped: n } });
  }

  private updateIrq(): void {
    const level = (this.regs.get('INT_STA') & this.regs.get('INT_ENABLE') & INT_MASK) !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (this.irq !== undefined) this.ctx.setIrq(this.irq, level);
  }

  private denied(aci: number, m: number, access: AccessKind): boolean {
    const half = this.aut[aci >>> 1]! >>> ((aci & 1) << 4);
    return ((half >>> (2 * m + (access === 'write' ? 1 : 0))) & 1) !== 0;
  }

  translate(master: MasterPort, iova: number, access: AccessKind): Translation {
    if (this.pending.length > 0) this.settle();
    if (!this.powered) return this.fault(master, iova, access, 'powered-off');
    const m = master.id;
    if (m < 0 || m >= NUM_MASTERS) throw new Error(`${this.name}: no master ${m} (${master.name}); the H6 IOMMU has masters 0..${NUM_MASTERS - 1}`);
    if ((this.resetBits & (1 << m)) === 0 || (this.resetBits & RESET_GLOBAL) === 0) return this.fault(master, iova, access, 'master-reset');
    const ok = this.ok;
    if (!this.enabled || (this.bypass & (1 << m)) !== 0) {
      ok.pa = iova;
      ok.source = undefined;
      return ok;
    }
    if (iova < 0 || iova > 0xffffffff) return this.fault(master, iova, access, 'address-size');
    // Entries are read field by field (Tlb.find): a miss inserts twice and allocates nothing.
    const micro = this.micro[m]!;
    const e = micro.find(iova);
    if (this.pmuOn) this.count(m, e >= 0);
    let source: TranslationSource = 'tlb';
    let used: PtwEntry | undefined;
    let page: number;
    let pa: number;
    let aci: number;
    if (e >= 0) {
      this.st.hits++;
      page = micro.iovaOf(e);
      pa = micro.paOf(e);
      aci = micro.auxOf(e);
    } else {
      const macro = this.macro;
      const me = macro.find(iova);
      if (this.pmuOn) this.count(6, me >= 0);
      if (me >= 0) {
        this.st.hits++;
        page = macro.iovaOf(me);
        pa = macro.paOf(me);
        aci = macro.auxOf(me);
      } else {
        this.st.misses++;
        this.names[m] = master.name;
        const w = this.walk(iova, false, this.walked);
        if (typeof w === 'string') return this.fault(master, iova, access, w);
        page = w.iova;
        pa = w.pa;
        aci = w.aux;
        used = this.walkUsed;
        source = used === undefined ? 'walk' : 'walk-cache';
        macro.put(page, SPAGE, pa, PERM_RW, -1, aci);
        if ((this.prefetch & (1 << m)) !== 0) this.prefetchNext(iova);
      }
      micro.put(page, SPAGE, pa, PERM_RW, -1, aci);
    }
    if (this.denied(aci, m, access)) return this.fault(master, iova, access, 'permission', (pa | (aci << 4) | 2) >>> 0);
    ok.pa = pa + (iova - page);
    ok.source = source;
    if (used !== undefined) {
      ok.cachedPa = used.pa;
      ok.cachedValue = used.dte;
    }
    return ok;
  }

  private count(i: number, hit: boolean): void {
    this.pmu[2 * i]!++;
    if (hit) this.pmu[2 * i + 1]!++;
  }

  /**
   * Walk DT then PT for iova. Returns the new entry (written into out) or the fault reason; quiet walks
   * (prefetch) set no registers and count nothing.
   */
  private walk(iova: number, quiet: boolean, out: TlbLine): TlbLine | FaultReason {
    if (!quiet) this.st.walks++;
    const idx = iova >>> 20;
    let dte: number;
    const cached = this.ptw.get(idx);
    if (!quiet) this.walkUsed = cached;
    if (this.pmuOn && !quiet) this.count(7, cached !== undefined);
    try {
      if (cached !== undefined) dte = cached.dte;
      else {
        const dtePa = this.dtBase + idx * 4;
        dte = walkRead32(this.ctx, dtePa, this.coherentWalk, this.cfg.name, 'DTE', iova);
        if ((dte & 3) === 1 || this.cacheInvalidDte) this.ptw.set(idx, { dte, pa: dtePa });
        if ((dte & 3) === 1 && (dte & 0x3fc) !== 0 && !quiet) this.reservedEntry('DTE', dtePa, dte, 0x3fc);
      }
      if ((dte & 3) !== 1) return 'dte-invalid';
      const ptePa = ((dte & 0xfffffc00) >>> 0) + ((iova >>> 12) & 0xff) * 4;
      const pte = walkRead32(this.ctx, ptePa, this.coherentWalk, this.cfg.name, 'PTE', iova);
      if ((pte & 2) === 0) return 'pte-invalid';
      if ((pte & 0xf0d) !== 0 && !quiet) this.reservedEntry('PTE', ptePa, pte, 0xf0d);
      out.iova = (iova & ~(SPAGE - 1)) >>> 0;
      out.pa = (pte & ~(SPAGE - 1)) >>> 0;
      out.aux = (pte >>> 4) & 0xf;
      return out;
    } catch (e) {
      if (e instanceof BusError) return 'bus-error';
      throw e;
    }
  }

  private prefetchNext(iova: number): void {
    const next = ((iova & ~(SPAGE - 1)) + SPAGE) >>> 0;
    if (next === 0 || this.macro.find(next) >= 0) return;
    const w = this.walk(next, true, this.prefetched);
    if (typeof w !== 'string') this.macro.insert(w);
  }

  private reservedEntry(what: string, pa: number, value: number, bits: number): void {
    this.ctx.findings.report({
      kind: 'reserved-bits',
      severity: 'warning',
      message: `${this.name}: ${what} at ${hex(pa)} = ${hex(value)} has reserved bits ${hex(value & bits)} set`,
      where: { block: this.name, pa: hex(pa) },
    });
  }

  private fault(master: MasterPort, iova: number, access: AccessKind, reason: FaultReason, pte = 0): Translation {
    const f: Fault = { iova, master: master.name, access, reason, time: this.ctx.clock.now(), iommu: this.name };
    const m = master.id;
    if (reason === 'permission' || reason === 'dte-invalid' || reason === 'pte-invalid') {
      let bit: number;
      if (reason === 'permission') {
        bit = 1 << m;
        this.regs.set(`INT_ERR_ADDR${m}`, iova);
        this.regs.set(`INT_ERR_DATA${m}`, pte);
      } else if (reason === 'dte-invalid') {
        bit = INT_L1PG_INVALID;
        this.regs.set('INT_ERR_ADDR_L1', iova);
        this.regs.set('L1PG_INT', this.regs.get('L1PG_INT') | (1 << m));
      } else {
        bit = INT_L2PG_INVALID;
        this.regs.set('INT_ERR_ADDR_L2', iova);
        this.regs.set('L2PG_INT', this.regs.get('L2PG_INT') | (1 << m));
      }
      this.regs.set('INT_STA', this.regs.get('INT_STA') | bit);
      this.updateIrq();
    }
    this.st.faults++;
    this.log.fault(f, { iova: hex(iova), master: master.name, access, reason });
    // A powered-off IOMMU is the power-management checker's to report (dma-while-suspended).
    if (reason !== 'powered-off') {
      this.ctx.findings.report({
        kind: 'fault',
        severity: 'error',
        message: `${this.name}: ${access} fault at IOVA ${hex(iova)} by ${master.name}: ${reason}${this.irq === undefined ? '' : ` (IRQ ${this.irq})`}`,
        where: { iommu: this.name, iova: hex(iova), master: master.name, access, reason, ...(this.irq === undefined ? {} : { irq: this.irq }) },
      });
    }
    return { ok: false, fault: f };
  }

  tlb(): TlbEntry[] {
    this.log.flushEvictions();
    const attrs = (l: TlbLine): Record<string, number> => ({ aci: l.aux });
    const out: TlbEntry[] = [];
    this.micro.forEach((t, m) => {
      for (const e of t.list({ attrs, permsOf: (l) => this.permsFor(l.aux, m) })) out.push({ ...e, master: this.names[m] });
    });
    out.push(...this.macro.list({ attrs, permsOf: (l) => this.permsFor(l.aux, -1) }));
    return out;
  }

  /** What the ACI grants master m now (m = -1: any master, for the shared macro-TLB). */
  private permsFor(aci: number, m: number): number {
    const masters = m >= 0 ? [m] : H6_MASTERS.map((_, i) => i);
    let p = 0;
    for (const i of masters) {
      if (!this.denied(aci, i, 'read')) p |= PERM_READ;
      if (!this.denied(aci, i, 'write')) p |= PERM_WRITE;
    }
    return p;
  }

  walkCache(): WalkCacheEntry[] {
    this.log.flushEvictions();
    return this.ptw
      .entries()
      .sort(([a], [b]) => a - b)
      .map(([idx, e]) => ({ iova: idx * 0x100000, span: 0x100000, tablePa: e.pa, entries: [e.dte], valid: (e.dte & 3) === 1 }));
  }

  faults(): Fault[] {
    return this.log.faults();
  }

  stats(): IommuStats {
    return { ...this.st };
  }

  setPowered(on: boolean): void {
    if (on === this.powered) return;
    this.powered = on;
    if (on) return;
    this.regs.reset();
    for (const t of this.micro) t.invalidateAll();
    this.macro.invalidateAll();
    this.ptw.clear();
    this.pending = [];
    this.pmu.fill(0);
    this.mirror();
    this.updateIrq();
  }

  isPowered(): boolean {
    return this.powered;
  }

  snapshot(): H6Snapshot {
    this.log.flushEvictions();
    return {
      powered: this.powered,
      regs: this.regs.snapshot(),
      micro: this.micro.map((t) => t.snapshot()),
      macro: this.macro.snapshot(),
      ptw: this.ptw.snapshot(),
      pending: this.pending.map((p) => ({ ...p })),
      faults: this.faults(),
      stats: this.stats(),
      pmu: this.pmu.slice(),
      names: this.names.slice(),
      irqLevel: this.irqLevel,
    };
  }

  restore(raw: unknown): void {
    const s = raw as H6Snapshot;
    this.powered = s.powered;
    this.regs.restore(s.regs);
    s.micro.forEach((t, m) => this.micro[m]!.restore(t));
    this.macro.restore(s.macro);
    this.ptw.restore(s.ptw);
    this.pending = s.pending.map((p) => ({ ...p }));
    this.log.restoreFaults(s.faults);
    this.st = { ...s.stats };
    this.pmu = s.pmu.slice();
    this.names = s.names.slice();
    this.irqLevel = s.irqLevel;
    this.mirror();
    // The clock drops timers on restore: re-arm completion of busy invalidations.
    for (const p of this.pending) this.ctx.clock.after(p.doneAt - this.ctx.clock.now(), `${this.name}.${p.reg}`, () => this.settle());
  }
}

export const createSun50iH6Iommu: IommuFactory = (cfg, ctx) => new Sun50iH6Iommu(cfg, ctx);
