/**
 * MediaTek M4U ('mtk-v7s', hardware-facts §3 and §3.11): one IOMMU for every SMI larb port, walking an
 * ARM short-descriptor (v7s) table from PT_BASE_ADDR, with the MediaTek PA extension (PA bits 32/33/34
 * in descriptor bits 9/4/5). Offsets and bits follow mtk_iommu.c ~v5.14 (MT8183: INV_SEL at the gen1
 * offset 0x038, larb IDs remapped in INT_ID). Model choices where the sources are silent:
 *
 * - Per-port translation enable lives in the SMI larbs (SMI_LARB_NONSEC_CON(port).MMU_EN on gen2
 *   larbs, written by the larb driver from what mtk_iommu_config set). The larbs are not modelled as
 *   blocks: LARBn_MMU_EN at 0xf00 + 4n (bit p = port p) stands in for them. A port whose bit is clear
 *   reaches memory untranslated, as a larb port with MMU_EN = 0 does.
 * - Caches are strict: the TLB keeps translations (4K/64K/1M/16M) and the walk cache keeps valid L1
 *   table descriptors; only INVALIDATE (all, or the START..END range, which drops both TLB entries and
 *   cached L1 descriptors of the range), power-off and capacity eviction remove anything. Both act on
 *   the MMU0 TLB set only when INV_SEL.EN0 is set; all traffic goes through MMU0.
 * - A range invalidation completes after options.invalidateCycles (default 0) and then sets CPE_DONE;
 *   the flush-all completes at once (the driver does not poll for it).
 * - options.mtkExt (default true): descriptor bits 9/4/5 are PA bits 32/33/34 (the IO_PGTABLE_QUIRK_
 *   ARM_MTK_EXT layout, which needs NO_PERMS). With false the same bits are AF/AP and are checked.
 * - A fault latches FAULT_VA/INVLD_PA/INT_ID of the first fault until INT_CONTROL0.INT_CLR; the layer
 *   bit is 1 for a fault at the L2 descriptor; INVLD_PA holds the faulting descriptor's address. The
 *   beat fails (the protect-buffer redirect of CTRL_REG.TF_PROT_TO_PROGRAM_ADDR is not modelled).
 */
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
  type WalkCacheEntry,
} from './types';
import { walkRead32 } from './walker';
import { reservedWriteReporter } from './report';

export const MTK_NUM_LARBS = 8;
/** MTK_M4U_ID(larb, port) = larb << 5 | port (dt-bindings/memory/mtk-memory-port.h). */
export const mtkM4uId = (larb: number, port: number): number => (larb << 5) | port;
export const mtkM4uToLarb = (id: number): number => (id >>> 5) & 0xf;
export const mtkM4uToPort = (id: number): number => id & 0x1f;

/** INVALIDATE bits. */
export const MTK_INV_RANGE = 1 << 0;
export const MTK_INV_ALL = 1 << 1;
/** INV_SEL bits: which TLB set an invalidation reaches. */
export const MTK_INVLD_EN0 = 1 << 0;
export const MTK_INVLD_EN1 = 1 << 1;
/** INT_CONTROL0.INT_CLR. */
export const MTK_INT_CLR = 1 << 12;
/** FAULT_ST1 / INT_MAIN_CONTROL bits of MMU0 (MMU1 is the same shifted by 7). */
export const MTK_INT_TRANSLATION_FAULT = 1 << 0;
/** MMU0_FAULT_VA low bits. */
export const MTK_FAULT_VA_WRITE = 1 << 1;
export const MTK_FAULT_VA_LAYER = 1 << 0;

/** MT8183's larbid_remap (mtk_iommu.c mt8183_data): INT_ID larb field (hardware) → larb number. */
export const MT8183_LARBID_REMAP = [0, 4, 5, 6, 7, 2, 3, 1];

const TWO32 = 0x1_0000_0000;
const SZ_4K = 0x1000;
const SZ_64K = 0x10000;
const SZ_1M = 0x100000;
const SZ_16M = 0x1000000;
/** Descriptor bits holding PA 32/33/34 with ARM_MTK_EXT. */
const EXT_BIT32 = 1 << 9;
const EXT_BIT33 = 1 << 4;
const EXT_BIT34 = 1 << 5;
/** aux bits of a TLB line. */
const AUX_NS = 1;

const hex = (n: number): string => `0x${n.toString(16)}`;

const OFF_PT_BASE = 0x000;
const OFF_INVALIDATE = 0x020;
const OFF_INVLD_START = 0x024;
const OFF_INVLD_END = 0x028;
const OFF_INV_SEL = 0x038;
const OFF_INT_CONTROL0 = 0x120;
const OFF_INT_MAIN_CONTROL = 0x124;
const OFF_LARB_MMU_EN = 0xf00;
/** Cleared by INT_CONTROL0.INT_CLR. */
const FAULT_REGS = ['FAULT_ST1', 'MMU0_FAULT_VA', 'MMU0_INVLD_PA', 'MMU0_INT_ID', 'MMU1_FAULT_VA', 'MMU1_INVLD_PA', 'MMU1_INT_ID'];

const mmuFaultFields = (mmu: number, access: FieldSpec['access'], what: string): FieldSpec[] =>
  [
    ['TRANSLATION_FAULT', 0],
    ['MAIN_MULTI_HIT_FAULT', 1],
    ['INVALID_PA_FAULT', 2],
    ['ENTRY_REPLACEMENT_FAULT', 3],
    ['TLB_MISS_FAULT', 4],
    ['MISS_TRANSACTION_FIFO_FAULT', 5],
    ['PREFETCH_TRANSACTION_FIFO_FAULT', 6],
  ].map(([n, b]) => ({ name: `MMU${mmu}_${n}`, lsb: (b as number) + 7 * mmu, width: 1, access, doc: `${what} (MMU${mmu})` }));

const vaFields = (what: string): FieldSpec[] => [
  { name: 'VA_31_12', lsb: 12, width: 20, doc: `${what} IOVA bits 31:12` },
  { name: 'VA_34_32', lsb: 0, width: 3, doc: `${what} IOVA bits 34:32` },
];

const faultVaFields: FieldSpec[] = [
  { name: 'VA_31_12', lsb: 12, width: 20, access: 'ro', doc: 'faulting IOVA bits 31:12' },
  { name: 'VA_34_32', lsb: 9, width: 3, access: 'ro', doc: 'faulting IOVA bits 34:32 (IOVA_34_EN parts)' },
  { name: 'PA_34_32', lsb: 6, width: 3, access: 'ro', doc: 'INVLD_PA bits 34:32 (IOVA_34_EN parts)' },
  { name: 'WRITE', lsb: 1, width: 1, access: 'ro', doc: '1 = the faulting access was a write' },
  { name: 'LAYER', lsb: 0, width: 1, access: 'ro', doc: 'table level of the fault: 0 = L1, 1 = L2 (model reading of the name)' },
];

const intIdFields: FieldSpec[] = [
  { name: 'LARB_ID', lsb: 7, width: 3, access: 'ro', doc: 'hardware larb ID (the driver remaps it with larbid_remap)' },
  { name: 'PORT_ID', lsb: 2, width: 5, access: 'ro', doc: 'port within the larb' },
];

const M4U_REGS: RegSpec[] = [
  {
    name: 'PT_BASE_ADDR',
    offset: 0x000,
    fields: [{ name: 'PT_BASE', lsb: 7, width: 25, doc: 'L1 table physical address bits 31:7' }],
    doc: 'Page-table base: the v7s L1 table. The driver writes ttbr & GENMASK(31, 7).',
  },
  {
    name: 'INVALIDATE',
    offset: 0x020,
    access: 'wo',
    fields: [
      { name: 'INV_RANGE', lsb: 0, width: 1, access: 'wo', doc: 'invalidate INVLD_START_A..INVLD_END_A; CPE_DONE goes non-zero when done' },
      { name: 'ALL_INVLD', lsb: 1, width: 1, access: 'wo', doc: 'invalidate everything at once' },
    ],
    doc: 'TLB invalidation command, for the TLB sets INV_SEL enables.',
  },
  { name: 'INVLD_START_A', offset: 0x024, fields: vaFields('first'), doc: 'Range invalidation start: MTK_IOMMU_TLB_ADDR(iova).' },
  { name: 'INVLD_END_A', offset: 0x028, fields: vaFields('last'), doc: 'Range invalidation end (inclusive page): MTK_IOMMU_TLB_ADDR(iova + size - 1).' },
  {
    name: 'INV_SEL',
    offset: 0x038,
    fields: [
      { name: 'INVLD_EN0', lsb: 0, width: 1, doc: 'invalidations reach the MMU0 TLB set' },
      { name: 'INVLD_EN1', lsb: 1, width: 1, doc: 'invalidations reach the MMU1 TLB set (no traffic in the model)' },
    ],
    doc: 'REG_MMU_INV_SEL_GEN1 (MT8183, MT8173, MT2712, MT8167); gen2 parts have it at 0x02c.',
  },
  { name: 'MISC_CTRL', offset: 0x048, doc: 'In-order write / standard AXI mode (RESET_AXI parts write 0). Stored, no effect modelled.' },
  { name: 'DCM_DIS', offset: 0x050, doc: 'Clock DCM disable; the driver writes 0. Stored, no effect modelled.' },
  { name: 'WR_LEN_CTRL', offset: 0x054, doc: 'Write throttling (WR_THROT_EN parts). Stored, no effect modelled.' },
  {
    name: 'CTRL_REG',
    offset: 0x110,
    fields: [{ name: 'TF_PROT_TO_PROGRAM_ADDR', lsb: 4, width: 2, doc: 'translation-fault transactions go to IVRP_PADDR (2); not modelled: the beat fails' }],
    writableMask: 0xffffffff,
  },
  { name: 'IVRP_PADDR', offset: 0x114, doc: 'Protect buffer address for faulting transactions. Stored, no effect modelled.' },
  { name: 'VLD_PA_RNG', offset: 0x118, doc: 'Valid PA range in 4GB mode. Stored, no effect modelled.' },
  {
    name: 'INT_CONTROL0',
    offset: 0x120,
    fields: [
      { name: 'L2_MULTI_HIT_EN', lsb: 0, width: 1 },
      { name: 'TABLE_WALK_FAULT_INT_EN', lsb: 1, width: 1 },
      { name: 'PREFETCH_FIFO_OVERFLOW_INT_EN', lsb: 2, width: 1 },
      { name: 'MISS_FIFO_OVERFLOW_INT_EN', lsb: 3, width: 1 },
      { name: 'PREFETCH_FIFO_ERR_INT_EN', lsb: 5, width: 1 },
      { name: 'MISS_FIFO_ERR_INT_EN', lsb: 6, width: 1 },
      { name: 'INT_CLR', lsb: 12, width: 1, access: 'sc', doc: 'write 1: clears FAULT_ST1 and the latched fault registers (self-clearing)' },
    ],
  },
  { name: 'INT_MAIN_CONTROL', offset: 0x124, fields: [...mmuFaultFields(0, 'rw', 'interrupt enable'), ...mmuFaultFields(1, 'rw', 'interrupt enable')], doc: 'The IRQ line is FAULT_ST1 & INT_MAIN_CONTROL != 0.' },
  { name: 'CPE_DONE', offset: 0x12c, doc: 'Non-zero once a range invalidation completed; the driver polls it, then writes 0.' },
  { name: 'FAULT_ST1', offset: 0x134, access: 'ro', fields: [...mmuFaultFields(0, 'ro', 'fault status'), ...mmuFaultFields(1, 'ro', 'fault status')] },
  { name: 'MMU0_FAULT_VA', offset: 0x13c, access: 'ro', fields: faultVaFields },
  { name: 'MMU0_INVLD_PA', offset: 0x140, access: 'ro', doc: 'Address of the descriptor the faulting walk read (model reading).' },
  { name: 'MMU1_FAULT_VA', offset: 0x144, access: 'ro', fields: faultVaFields },
  { name: 'MMU1_INVLD_PA', offset: 0x148, access: 'ro' },
  { name: 'MMU0_INT_ID', offset: 0x150, access: 'ro', fields: intIdFields },
  { name: 'MMU1_INT_ID', offset: 0x154, access: 'ro', fields: intIdFields },
  ...Array.from(
    { length: MTK_NUM_LARBS },
    (_, n): RegSpec => ({
      name: `LARB${n}_MMU_EN`,
      offset: 0xf00 + 4 * n,
      doc: `Model-only: stands in for SMI larb ${n}'s per-port MMU_EN bits (bit p = port p). A clear bit: the port bypasses translation.`,
    }),
  ),
];

/** The M4U register block, declared once: behaviour, inspector and script types come from it. */
export const MTK_M4U = defineBlock({
  type: 'mtk-m4u',
  size: 0x1000,
  regs: M4U_REGS,
  doc: 'MediaTek M4U: a v7s (short-descriptor) walker with MediaTek PA extension bits, a TLB, a cache of L1 table descriptors and range invalidation.',
});

interface PendingRange {
  start: number;
  end: number;
  doneAt: number;
}

interface L1Entry {
  desc: number;
  pa: number;
}

interface MtkSnapshot {
  powered: boolean;
  regs: Uint32Array;
  tlb: ReturnType<Tlb['snapshot']>;
  wc: [number, L1Entry][];
  pending: PendingRange[];
  faults: Fault[];
  stats: IommuStats;
  irqLevel: boolean;
}

/** Decoded MTK_IOMMU_TLB_ADDR: VA[31:12] | VA[34:32]. */
const tlbAddr = (v: number): number => ((v & 0xfffff000) >>> 0) + (v & 7) * TWO32;

class MtkV7sIommu implements IommuModel {
  readonly model = 'mtk-v7s';
  readonly decl = MTK_M4U;
  readonly regs: RegisterFile;
  private readonly base: number;
  private readonly size: number;
  private readonly coherentWalk: boolean;
  private readonly busyCycles: number;
  private readonly mtkExt: boolean;
  /** Larb number → hardware larb ID reported in INT_ID. */
  private readonly hwLarb: number[];
  private readonly tlbc: Tlb;
  private readonly wc: KeyedCache<L1Entry>;
  private powered = true;
  private pending: PendingRange[] = [];
  private readonly log: ModelLog;
  private st: IommuStats = { hits: 0, misses: 0, walks: 0, faults: 0 };
  private irqLevel = false;
  private names = new Map<number, string>();
  // Mirrors of registers read on every beat.
  private ptBase = 0;
  private invSel = 0;
  private invStart = 0;
  private invEnd = 0;
  private larbEn = new Uint32Array(MTK_NUM_LARBS);
  private readonly walked: TlbLine = { iova: 0, size: SZ_4K, pa: 0, perms: PERM_READ | PERM_WRITE, master: -1, aux: 0 };
  private readonly ok = { ok: true as const, pa: 0, coherent: false };
  /** Level and descriptor address of the last failed walk, for the fault registers. */
  private faultLayer = 0;
  private faultDescPa = 0;

  constructor(
    private readonly cfg: IommuConfig,
    private readonly ctx: HwContext,
  ) {
    const win = cfg.reg[0];
    if (!win || cfg.reg.length !== 1) throw new Error(`${cfg.name}: the M4U has exactly one register window`);
    this.base = num(win.base);
    this.size = num(win.size);
    this.coherentWalk = cfg.coherentWalk ?? false;
    const o = cfg.options ?? {};
    this.busyCycles = typeof o.invalidateCycles === 'number' ? o.invalidateCycles : 0;
    this.mtkExt = o.mtkExt !== false;
    const remap = mtkLarbRemap(o.larbIdRemap);
    this.hwLarb = Array.from({ length: MTK_NUM_LARBS }, (_, larb) => Math.max(0, remap.indexOf(larb)));
    this.log = new ModelLog(ctx, cfg.name);
    const log = (level: string): EvictionLog => this.log.evictions(level);
    const tlbEv = log('tlb');
    this.tlbc = new Tlb({ level: 'tlb', capacity: cfg.tlb?.entries ?? 64, rng: ctx.rng, evictions: tlbEv });
    const wcEv = log('l1');
    this.wc = new KeyedCache<L1Entry>(cfg.walkCache?.entries ?? 16, ctx.rng, (k) => wcEv.note(k * SZ_1M));
    this.regs = new RegisterFile(MTK_M4U, {
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
    this.ptBase = (this.regs.get('PT_BASE_ADDR') & 0xffffff80) >>> 0;
    this.invSel = this.regs.get('INV_SEL');
    this.invStart = this.regs.get('INVLD_START_A');
    this.invEnd = this.regs.get('INVLD_END_A');
    for (let n = 0; n < MTK_NUM_LARBS; n++) this.larbEn[n] = this.regs.get(`LARB${n}_MMU_EN`);
  }

  private onWrite(e: WriteEvent): void {
    const off = e.reg.offset;
    if (off === OFF_INVALIDATE) {
      if (e.written & MTK_INV_ALL) this.invalidate(0, Number.MAX_SAFE_INTEGER, true);
      if (e.written & MTK_INV_RANGE) this.startRange(tlbAddr(this.invStart), tlbAddr(this.invEnd) + SZ_4K - 1);
    } else if (off === OFF_INVLD_START) this.invStart = e.value;
    else if (off === OFF_INVLD_END) this.invEnd = e.value;
    else if (off === OFF_INV_SEL) this.invSel = e.value;
    else if (off === OFF_INT_CONTROL0) {
      if (e.written & MTK_INT_CLR) {
        for (const r of FAULT_REGS) this.regs.set(r, 0);
        this.regs.set('INT_CONTROL0', e.value & ~MTK_INT_CLR);
        this.updateIrq();
      }
    } else if (off === OFF_INT_MAIN_CONTROL) this.updateIrq();
    else if (off === OFF_PT_BASE || off >= OFF_LARB_MMU_EN) this.mirror();
  }

  private onRead(r: RegSpec, stored: number): number {
    if (r.name === 'CPE_DONE' && this.pending.length > 0) {
      this.settle();
      return this.regs.get('CPE_DONE');
    }
    return stored;
  }

  private startRange(start: number, end: number): void {
    if (this.busyCycles <= 0) {
      this.invalidate(start, end, false);
      this.regs.set('CPE_DONE', 1);
      return;
    }
    this.pending.push({ start, end, doneAt: this.ctx.clock.now() + this.busyCycles });
    this.ctx.clock.after(this.busyCycles, `${this.name}.INV_RANGE`, () => this.settle());
  }

  private settle(): void {
    const now = this.ctx.clock.now();
    const due = this.pending.filter((p) => p.doneAt <= now);
    if (due.length === 0) return;
    this.pending = this.pending.filter((p) => p.doneAt > now);
    for (const p of due) this.completeRange(p);
  }

  private completeRange(p: PendingRange): void {
    this.invalidate(p.start, p.end, false);
    this.regs.set('CPE_DONE', 1);
  }

  /** Drop TLB entries and cached L1 descriptors overlapping [start, end], if INV_SEL reaches MMU0. */
  private invalidate(start: number, end: number, all: boolean): void {
    const now = this.ctx.clock.now();
    const name = all ? 'ALL_INVLD' : 'INV_RANGE';
    if ((this.invSel & MTK_INVLD_EN0) === 0) {
      this.ctx.trace.emit({ time: now, cat: 'inval', name, track: this.name, args: { start, end, ignored: 'INV_SEL.EN0 clear' } });
      return;
    }
    let n: number;
    if (all) {
      n = this.tlbc.invalidateAll() + this.wc.size;
      this.wc.clear();
    } else {
      n = this.tlbc.invalidateRange(start, end - start + 1);
      const lo = Math.floor(start / SZ_1M);
      const hi = Math.floor(end / SZ_1M);
      if (this.wc.size > 0) n += this.wc.deleteWhere((k) => k >= lo && k <= hi);
    }
    this.log.flushEvictions();
    this.ctx.trace.emit({ time: now, cat: 'inval', name, track: this.name, args: { start, end, dropped: n } });
  }

  private updateIrq(): void {
    const level = (this.regs.get('FAULT_ST1') & this.regs.get('INT_MAIN_CONTROL')) !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    if (this.cfg.irq !== undefined) this.ctx.setIrq(this.cfg.irq, level);
  }

  translate(master: MasterPort, iova: number, access: AccessKind): Translation {
    if (this.pending.length > 0) this.settle();
    if (!this.powered) return this.fault(master, iova, access, 'powered-off');
    const larb = mtkM4uToLarb(master.id);
    if (larb >= MTK_NUM_LARBS) throw new Error(`${this.name}: master ${master.name} has M4U ID ${master.id}: larb ${larb} does not exist`);
    const ok = this.ok;
    if (((this.larbEn[larb]! >>> mtkM4uToPort(master.id)) & 1) === 0) {
      ok.pa = iova;
      return ok;
    }
    if (iova < 0 || iova >= TWO32) {
      this.faultLayer = 0;
      this.faultDescPa = 0;
      return this.fault(master, iova, access, 'address-size');
    }
    let line = this.tlbc.lookup(iova);
    if (line === undefined) {
      this.st.misses++;
      this.names.set(master.id, master.name);
      const w = this.walk(iova, this.walked);
      if (typeof w === 'string') return this.fault(master, iova, access, w);
      line = w;
      this.tlbc.insert(line);
    } else this.st.hits++;
    if ((line.perms & (access === 'write' ? PERM_WRITE : PERM_READ)) === 0) return this.fault(master, iova, access, 'permission');
    ok.pa = line.pa + (iova - line.iova);
    return ok;
  }

  /** PA bits 32..34 from the MediaTek extension bits. */
  private ext(desc: number): number {
    if (!this.mtkExt) return 0;
    return ((desc & EXT_BIT32 ? 1 : 0) + (desc & EXT_BIT33 ? 2 : 0) + (desc & EXT_BIT34 ? 4 : 0)) * TWO32;
  }

  /** AF and AP of a leaf, when the descriptor carries them (no MTK extension). */
  private perms(desc: number, shift: number): number {
    if (this.mtkExt) return PERM_READ | PERM_WRITE;
    const attr = desc >>> shift;
    // AF clear or privileged-only (AP1 clear): DMA (unprivileged) gets nothing.
    if ((attr & 1) === 0 || (attr & 2) === 0) return 0;
    return (attr & 0x20) !== 0 ? PERM_READ : PERM_READ | PERM_WRITE;
  }

  private walk(iova: number, out: TlbLine): TlbLine | FaultReason {
    this.st.walks++;
    const idx = iova >>> 20;
    try {
      let desc: number;
      const cached = this.wc.get(idx);
      const l1pa = this.ptBase + idx * 4;
      if (cached !== undefined) desc = cached.desc;
      else desc = walkRead32(this.ctx, l1pa, this.coherentWalk, this.cfg.name, 'L1 descriptor', iova);
      this.faultLayer = 0;
      this.faultDescPa = l1pa;
      const type = desc & 3;
      if (type === 0) return 'dte-invalid';
      if (type === 1) {
        if (cached === undefined) this.wc.set(idx, { desc, pa: l1pa });
        const l2pa = ((desc & 0xfffffc00) >>> 0) + ((iova >>> 12) & 0xff) * 4;
        const pte = walkRead32(this.ctx, l2pa, this.coherentWalk, this.cfg.name, 'L2 descriptor', iova);
        this.faultLayer = 1;
        this.faultDescPa = l2pa;
        if ((pte & 3) === 0) return 'pte-invalid';
        const size = (pte & 3) === 1 ? SZ_64K : SZ_4K;
        out.size = size;
        out.pa = ((pte & -size) >>> 0) + this.ext(pte);
        out.perms = this.perms(pte, 4);
        out.aux = (desc & (1 << 3)) !== 0 ? AUX_NS : 0;
      } else {
        const size = desc & (1 << 18) ? SZ_16M : SZ_1M;
        out.size = size;
        out.pa = ((desc & -size) >>> 0) + this.ext(desc);
        out.perms = this.perms(desc, 10);
        out.aux = (desc & (1 << 19)) !== 0 ? AUX_NS : 0;
      }
      out.iova = iova - (iova % out.size);
      return out;
    } catch (e) {
      if (e instanceof BusError) return 'bus-error';
      throw e;
    }
  }

  private fault(master: MasterPort, iova: number, access: AccessKind, reason: FaultReason): Translation {
    const f: Fault = { iova, master: master.name, access, reason, time: this.ctx.clock.now(), iommu: this.name };
    if (reason !== 'powered-off') {
      const st = this.regs.get('FAULT_ST1');
      // The first fault stays latched until INT_CLR.
      if ((st & 0x7f) === 0) {
        const va = ((iova & 0xfffff000) >>> 0) | ((Math.floor(iova / TWO32) & 7) << 9);
        this.regs.set('MMU0_FAULT_VA', va | (access === 'write' ? MTK_FAULT_VA_WRITE : 0) | (this.faultLayer ? MTK_FAULT_VA_LAYER : 0));
        this.regs.set('MMU0_INVLD_PA', this.faultDescPa % TWO32);
        this.regs.set('MMU0_INT_ID', (this.hwLarb[mtkM4uToLarb(master.id)]! << 7) | (mtkM4uToPort(master.id) << 2));
      }
      this.regs.set('FAULT_ST1', st | MTK_INT_TRANSLATION_FAULT);
      this.updateIrq();
      this.ctx.findings.report({
        kind: 'fault',
        severity: 'error',
        message: `${this.name}: ${access} fault at IOVA ${hex(iova)} by ${master.name}: ${reason}`,
        where: { iommu: this.name, iova: hex(iova), master: master.name, access, reason },
      });
    }
    this.st.faults++;
    this.log.fault(f, { iova: hex(iova), master: master.name, access, reason });
    return { ok: false, fault: f };
  }

  tlb(): TlbEntry[] {
    this.log.flushEvictions();
    return this.tlbc.list({ attrs: (l) => ({ ns: l.aux & AUX_NS }) });
  }

  walkCache(): WalkCacheEntry[] {
    this.log.flushEvictions();
    return this.wc
      .entries()
      .sort(([a], [b]) => a - b)
      .map(([idx, e]) => ({ iova: idx * SZ_1M, span: SZ_1M, tablePa: e.pa, entries: [e.desc], valid: true }));
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
    this.tlbc.invalidateAll();
    this.wc.clear();
    this.pending = [];
    this.mirror();
    this.updateIrq();
  }

  isPowered(): boolean {
    return this.powered;
  }

  snapshot(): MtkSnapshot {
    this.log.flushEvictions();
    return {
      powered: this.powered,
      regs: this.regs.snapshot(),
      tlb: this.tlbc.snapshot(),
      wc: this.wc.snapshot(),
      pending: this.pending.map((p) => ({ ...p })),
      faults: this.faults(),
      stats: this.stats(),
      irqLevel: this.irqLevel,
    };
  }

  restore(raw: unknown): void {
    const s = raw as MtkSnapshot;
    this.powered = s.powered;
    this.regs.restore(s.regs);
    this.tlbc.restore(s.tlb);
    this.wc.restore(s.wc);
    this.pending = s.pending.map((p) => ({ ...p }));
    this.log.restoreFaults(s.faults);
    this.st = { ...s.stats };
    this.irqLevel = s.irqLevel;
    this.mirror();
    for (const p of this.pending) this.ctx.clock.after(p.doneAt - this.ctx.clock.now(), `${this.name}.INV_RANGE`, () => this.settle());
  }
}

/** options.larbIdRemap ("0,4,5,...": INT_ID larb field → larb), default MT8183's table. */
export function mtkLarbRemap(opt: unknown): number[] {
  if (typeof opt !== 'string') return MT8183_LARBID_REMAP.slice();
  const t = opt.split(',').map((s) => Number(s.trim()));
  if (t.length !== MTK_NUM_LARBS || t.some((n) => !Number.isInteger(n) || n < 0 || n >= MTK_NUM_LARBS)) {
    throw new Error(`options.larbIdRemap must list ${MTK_NUM_LARBS} larb numbers 0..${MTK_NUM_LARBS - 1}, not ${JSON.stringify(opt)}`);
  }
  return t;
}

export const createMtkV7sIommu: IommuFactory = (cfg, ctx) => new MtkV7sIommu(cfg, ctx);
