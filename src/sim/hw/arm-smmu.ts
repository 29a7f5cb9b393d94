/**
 * Arm SMMU-v2-style IOMMU ('arm-lpae', hardware-facts §4): a global register space (GR0: sCR0, ID
 * registers, global fault and TLB maintenance, stream match registers SMR and stream-to-context S2CR;
 * GR1: CBAR/CBFRSYNRA/CBA2R) and stage-1 context banks walking AArch64 LPAE tables with a 4 KiB
 * granule (3 or 4 levels by T0SZ, blocks at levels 1 and 2). Offsets and bits follow arm-smmu.h.
 * Model choices where the sources are silent:
 *
 * - Layout: 4 KiB register pages; the global space is numpage pages (numpage = the smallest power of
 *   two >= the number of context banks, at least 2), context bank n is page numpage + n. Options:
 *   contextBanks (default 8, at most 63), streamMatchGroups (16), vaBits (ID2.UBS, 48), paBits
 *   (ID2.IAS/OAS, 40), invalidateCycles (0), version ('v2', or 'v1'), contextIrqBase (absent:
 *   every interrupt on `irq`; else `irq` is the global one and the context interrupts start there:
 *   on SMMUv2 every context bank n has its own, contextIrqBase + n; on SMMUv1 bank n raises the one
 *   its CBAR.IRPTNDX selects, contextIrqBase + IRPTNDX).
 * - 64-bit registers are two 32-bit words (_LO, _HI). TLBIVA/TLBIVAL act on the _LO write with the
 *   _HI word stored last (the hi-lo order of io-64-nonatomic-hi-lo).
 * - TLB maintenance is queued and takes effect at the next TLBSYNC of its context bank (sTLBGSYNC for
 *   TLBIALLNSNH/TLBIALLH), which completes after invalidateCycles; TLBSTATUS.SACTIVE reads 1 until
 *   then. A driver that never syncs keeps its stale entries.
 * - Caches are strict: the TLB holds leaves tagged with the context bank and ASID (nG clear: global);
 *   the walk cache holds table descriptors of levels 0..2 tagged likewise. TLBIVA drops the leaves and
 *   walk-cache entries covering the VA, TLBIVAL only the leaves, TLBIASID both for the ASID,
 *   TLBIALL and TLBIALLNSNH everything (of the bank, of every bank). TLBIVA and TLBIASID drop lines by
 *   address in the bank whatever their ASID (over-invalidation only).
 * - sCR0 resets with CLIENTPD = 1 (every stream bypasses) and S2CR with TYPE = FAULT. Masters are
 *   unprivileged data accesses (S2CR.PRIVCFG = PRIV makes them privileged). A leaf with AF clear is an
 *   access-flag fault (FSR.AFF); AP[2] read-only denies writes; XN is not checked (no fetches).
 * - CBA2R.VA64 is not checked: banks are read as AArch64 contexts (T0SZ = 64 - IAS).
 * - Faults terminate the beat (SCTLR.CFCFG stall not modelled); FSR/FAR/FSYNR0/CBFRSYNRA latch the
 *   first fault until FSR is cleared, later ones set FSR.MULTI.
 */
import type { IommuConfig } from '../config/types';
import { num } from '../config/types';
import { BusError, type MmioRegion } from '../mem/bus';
import { defineBlock, RegisterFile, type BlockDecl, type FieldSpec, type RegSpec, type WriteEvent } from '../regs/dsl';
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

export const SMMU_PAGE = 0x1000;

/* sCR0. */
export const SCR0_CLIENTPD = 1 << 0;
export const SCR0_GFRE = 1 << 1;
export const SCR0_GFIE = 1 << 2;
export const SCR0_GCFGFRE = 1 << 4;
export const SCR0_GCFGFIE = 1 << 5;
export const SCR0_USFCFG = 1 << 10;
export const SCR0_VMIDPNE = 1 << 11;
export const SCR0_PTM = 1 << 12;
/* sGFSR. */
export const SGFSR_USF = 1 << 1;
export const SGFSR_MULTI = 2 ** 31;
/* SMR / S2CR. */
export const SMR_VALID = 2 ** 31;
export const S2CR_TYPE_TRANS = 0;
export const S2CR_TYPE_BYPASS = 1;
export const S2CR_TYPE_FAULT = 2;
export const S2CR_PRIVCFG_PRIV = 3;
/* CBAR / CBA2R. */
export const CBAR_TYPE_S1_TRANS_S2_BYPASS = 1;
export const CBA2R_VA64 = 1 << 0;
/* SCTLR. */
export const SCTLR_M = 1 << 0;
export const SCTLR_TRE = 1 << 1;
export const SCTLR_AFE = 1 << 2;
export const SCTLR_CFRE = 1 << 5;
export const SCTLR_CFIE = 1 << 6;
export const SCTLR_ASIDPNE = 1 << 12;
/* FSR. */
export const FSR_TF = 1 << 1;
export const FSR_AFF = 1 << 2;
export const FSR_PF = 1 << 3;
export const FSR_EF = 1 << 4;
export const FSR_MULTI = 2 ** 31;
export const FSR_FAULT = (FSR_MULTI | (1 << 30) | (1 << 8) | (1 << 7) | (1 << 6) | (1 << 5) | FSR_EF | FSR_PF | FSR_AFF | FSR_TF) >>> 0;
/* FSYNR0. */
export const FSYNR0_WNR = 1 << 4;
/* TCR. */
export const TCR_EPD0 = 1 << 7;
export const TCR_EPD1 = 1 << 23;

/** ID2 IAS/OAS/UBS encoding (arm_smmu_id_size_to_bits). */
const SIZE_ENC: Record<number, number> = { 32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5 };
export const smmuIdSizeToBits = (enc: number): number => [32, 36, 40, 42, 44, 48][enc] ?? 48;

const TWO32 = 0x1_0000_0000;
/** aux of a TLB line: ASID in 15:0, global (nG clear) in bit 16. */
const AUX_GLOBAL = 1 << 16;
const LVL_SHIFT = [39, 30, 21, 12];
/** Descriptor bits 58:55 (software use), in the upper word. */
const SW_BITS_HI = 0xf << 23;

/** CB register offsets inside a context bank page. */
export const CB = {
  SCTLR: 0x0,
  ACTLR: 0x4,
  RESUME: 0x8,
  TCR2: 0x10,
  TTBR0_LO: 0x20,
  TTBR0_HI: 0x24,
  TTBR1_LO: 0x28,
  TTBR1_HI: 0x2c,
  TCR: 0x30,
  CONTEXTIDR: 0x34,
  MAIR0: 0x38,
  MAIR1: 0x3c,
  FSR: 0x58,
  FAR_LO: 0x60,
  FAR_HI: 0x64,
  FSYNR0: 0x68,
  TLBIVA_LO: 0x600,
  TLBIVA_HI: 0x604,
  TLBIASID: 0x610,
  TLBIALL: 0x618,
  TLBIVAL_LO: 0x620,
  TLBIVAL_HI: 0x624,
  TLBSYNC: 0x7f0,
  TLBSTATUS: 0x7f4,
} as const;

export interface SmmuGeometry {
  contextBanks: number;
  streamMatchGroups: number;
  numpage: number;
  /** Bytes the register window needs: global space plus context banks. */
  size: number;
}

export function smmuGeometry(cfg: IommuConfig): SmmuGeometry {
  const o = cfg.options ?? {};
  const cbs = typeof o.contextBanks === 'number' ? o.contextBanks : 8;
  const smrs = typeof o.streamMatchGroups === 'number' ? o.streamMatchGroups : 16;
  if (!Number.isInteger(cbs) || cbs < 1 || cbs > 63) throw new Error(`${cfg.name}: options.contextBanks must be 1..63, not ${cbs}`);
  if (!Number.isInteger(smrs) || smrs < 1 || smrs > 128) throw new Error(`${cfg.name}: options.streamMatchGroups must be 1..128, not ${smrs}`);
  let numpage = 2;
  while (numpage < cbs) numpage *= 2;
  return { contextBanks: cbs, streamMatchGroups: smrs, numpage, size: 2 * numpage * SMMU_PAGE };
}

/** The four 8-bit memory attributes of one MAIR word, Attr<first>..Attr<first+3>. */
const mairAttrs = (first: number): FieldSpec[] => [0, 1, 2, 3].map((i) => ({ name: `Attr${first + i}`, lsb: 8 * i, width: 8 }));

const faultFields = (access: FieldSpec['access']): FieldSpec[] => [
  { name: 'TF', lsb: 1, width: 1, access, doc: 'translation fault' },
  { name: 'AFF', lsb: 2, width: 1, access, doc: 'access flag fault' },
  { name: 'PF', lsb: 3, width: 1, access, doc: 'permission fault' },
  { name: 'EF', lsb: 4, width: 1, access, doc: 'external fault (table walk bus error)' },
  { name: 'TLBMCF', lsb: 5, width: 1, access },
  { name: 'TLBLKF', lsb: 6, width: 1, access },
  { name: 'ASF', lsb: 7, width: 1, access },
  { name: 'UUT', lsb: 8, width: 1, access },
  { name: 'SS', lsb: 30, width: 1, access, doc: 'stalled (not modelled)' },
  { name: 'MULTI', lsb: 31, width: 1, access, doc: 'a further fault arrived while one was recorded' },
];

function cbRegs(n: number, base: number): RegSpec[] {
  const r = (name: keyof typeof CB, spec: Omit<RegSpec, 'name' | 'offset'> = {}): RegSpec => ({ name: `CB${n}_${name}`, offset: base + CB[name], ...spec });
  return [
    r('SCTLR', {
      fields: [
        { name: 'M', lsb: 0, width: 1, doc: 'translation enable (0: the bank bypasses)' },
        { name: 'TRE', lsb: 1, width: 1 },
        { name: 'AFE', lsb: 2, width: 1 },
        { name: 'AFFD', lsb: 3, width: 1 },
        { name: 'E', lsb: 4, width: 1, doc: 'big-endian tables (not modelled)' },
        { name: 'CFRE', lsb: 5, width: 1, doc: 'context fault report enable' },
        { name: 'CFIE', lsb: 6, width: 1, doc: 'context fault interrupt enable' },
        { name: 'CFCFG', lsb: 7, width: 1, doc: 'stall on fault (not modelled: terminate)' },
        { name: 'HUPCF', lsb: 8, width: 1 },
        { name: 'ASIDPNE', lsb: 12, width: 1 },
      ],
    }),
    r('ACTLR', { doc: 'Implementation defined; stored.' }),
    r('RESUME', { access: 'wo', doc: 'Stall resume (no stalls modelled).' }),
    r('TCR2', { fields: [{ name: 'PASIZE', lsb: 0, width: 4 }, { name: 'AS', lsb: 4, width: 1 }, { name: 'SEP', lsb: 15, width: 3 }] }),
    r('TTBR0_LO', { doc: 'TTBR0[31:0]: table address bits 31:4 (bits 3:0 ignored by the walker).' }),
    r('TTBR0_HI', { fields: [{ name: 'ADDR_47_32', lsb: 0, width: 16 }, { name: 'ASID', lsb: 16, width: 16 }] }),
    r('TTBR1_LO', { doc: 'TTBR1 (upper VA range): not walked; EPD1 is expected.' }),
    r('TTBR1_HI'),
    r('TCR', {
      fields: [
        { name: 'T0SZ', lsb: 0, width: 6, doc: 'input size 64 - T0SZ' },
        { name: 'EPD0', lsb: 7, width: 1, doc: 'no walks through TTBR0' },
        { name: 'IRGN0', lsb: 8, width: 2 },
        { name: 'ORGN0', lsb: 10, width: 2 },
        { name: 'SH0', lsb: 12, width: 2 },
        { name: 'TG0', lsb: 14, width: 2, enum: { '4K': 0, '64K': 1, '16K': 2 }, doc: 'granule: only 4K is walked' },
        { name: 'T1SZ', lsb: 16, width: 6 },
        { name: 'A1', lsb: 22, width: 1 },
        { name: 'EPD1', lsb: 23, width: 1 },
        { name: 'EAE', lsb: 31, width: 1 },
      ],
      writableMask: 0xffffffff,
    }),
    r('CONTEXTIDR'),
    r('MAIR0', { fields: mairAttrs(0), doc: 'Attr0..3, 8 bits each (stored; memory types are not modelled).' }),
    r('MAIR1', {
      fields: mairAttrs(4),
      doc: 'Attr4..7. Linux builds the MAIR from int shifts, so 0xf4 << 24 sign-extends: it programs 0xffffffff here (Attr4..7 = 0xff, Normal WB RWA), unused by its PTEs.',
    }),
    r('FSR', { fields: faultFields('w1c'), doc: 'Fault status, write 1 to clear; the context interrupt is FSR fault bits & SCTLR.CFIE.' }),
    r('FAR_LO', { access: 'ro', doc: 'Faulting IOVA bits 31:0.' }),
    r('FAR_HI', { access: 'ro', doc: 'Faulting IOVA bits 63:32.' }),
    r('FSYNR0', {
      access: 'ro',
      fields: [
        { name: 'PLVL', lsb: 0, width: 2, access: 'ro', doc: 'table level of the fault' },
        { name: 'WNR', lsb: 4, width: 1, access: 'ro', doc: '1 = write' },
      ],
    }),
    r('TLBIVA_LO', { access: 'wo', doc: 'Write VA[43:12] as (iova >> 12) low word (after _HI): invalidate leaves and walk-cache entries for the VA and ASID.' }),
    r('TLBIVA_HI', { access: 'wo', fields: [{ name: 'VA_HI', lsb: 0, width: 12, access: 'wo' }, { name: 'ASID', lsb: 16, width: 16, access: 'wo' }] }),
    r('TLBIASID', { access: 'wo', doc: 'Invalidate everything of this ASID in the bank.' }),
    r('TLBIALL', { access: 'wo', doc: 'Invalidate everything of the bank.' }),
    r('TLBIVAL_LO', { access: 'wo', doc: 'Like TLBIVA, last level (leaf) entries only: the walk cache keeps its entries.' }),
    r('TLBIVAL_HI', { access: 'wo', fields: [{ name: 'VA_HI', lsb: 0, width: 12, access: 'wo' }, { name: 'ASID', lsb: 16, width: 16, access: 'wo' }] }),
    r('TLBSYNC', { access: 'wo', doc: 'Complete the bank\'s queued TLB maintenance; poll TLBSTATUS.' }),
    r('TLBSTATUS', { access: 'ro', fields: [{ name: 'SACTIVE', lsb: 0, width: 1, access: 'ro', doc: 'a sync is in progress' }] }),
  ];
}

const declCache = new Map<string, BlockDecl>();

/** The register block for a geometry, declared once per shape. */
export function armSmmuDecl(g: SmmuGeometry, ids: { id0: number; id1: number; id2: number }): BlockDecl {
  const key = `${g.contextBanks}/${g.streamMatchGroups}/${ids.id0}/${ids.id1}/${ids.id2}`;
  const hit = declCache.get(key);
  if (hit) return hit;
  const gr1 = SMMU_PAGE;
  const regs: RegSpec[] = [
    {
      name: 'sCR0',
      offset: 0x000,
      reset: SCR0_CLIENTPD,
      fields: [
        { name: 'CLIENTPD', lsb: 0, width: 1, doc: '1: every client transaction bypasses the SMMU' },
        { name: 'GFRE', lsb: 1, width: 1 },
        { name: 'GFIE', lsb: 2, width: 1, doc: 'global fault interrupt enable' },
        { name: 'EXIDENABLE', lsb: 3, width: 1 },
        { name: 'GCFGFRE', lsb: 4, width: 1 },
        { name: 'GCFGFIE', lsb: 5, width: 1 },
        { name: 'USFCFG', lsb: 10, width: 1, doc: '1: an unmatched stream faults (sGFSR.USF); 0: it bypasses' },
        { name: 'VMIDPNE', lsb: 11, width: 1 },
        { name: 'PTM', lsb: 12, width: 1 },
        { name: 'FB', lsb: 13, width: 1 },
        { name: 'BSU', lsb: 14, width: 2 },
        { name: 'VMID16EN', lsb: 31, width: 1 },
      ],
    },
    { name: 'sACR', offset: 0x010, doc: 'Auxiliary configuration; stored.' },
    { name: 'ID0', offset: 0x020, access: 'ro', reset: ids.id0, doc: 'S1TS, SMS, CTTW (coherent walks), NUMSIDB, NUMSMRG.' },
    { name: 'ID1', offset: 0x024, access: 'ro', reset: ids.id1, doc: 'PAGESIZE (0: 4 KiB), NUMPAGENDXB, NUMS2CB, NUMCB.' },
    { name: 'ID2', offset: 0x028, access: 'ro', reset: ids.id2, doc: 'PTFS_4K, UBS (VA size), OAS, IAS.' },
    { name: 'ID7', offset: 0x03c, access: 'ro', reset: 2 << 4, doc: 'MAJOR = 2.' },
    {
      name: 'sGFSR',
      offset: 0x048,
      fields: [
        { name: 'ICF', lsb: 0, width: 1, access: 'w1c' },
        { name: 'USF', lsb: 1, width: 1, access: 'w1c', doc: 'unidentified stream fault' },
        { name: 'SMCF', lsb: 2, width: 1, access: 'w1c' },
        { name: 'UCBF', lsb: 3, width: 1, access: 'w1c' },
        { name: 'UCIF', lsb: 4, width: 1, access: 'w1c' },
        { name: 'CAF', lsb: 5, width: 1, access: 'w1c' },
        { name: 'EF', lsb: 6, width: 1, access: 'w1c' },
        { name: 'PF', lsb: 7, width: 1, access: 'w1c' },
        { name: 'MULTI', lsb: 31, width: 1, access: 'w1c' },
      ],
      doc: 'Global fault status, write 1 to clear.',
    },
    { name: 'sGFSYNR0', offset: 0x050, access: 'ro', fields: [{ name: 'WNR', lsb: 1, width: 1, access: 'ro' }] },
    { name: 'sGFSYNR1', offset: 0x054, access: 'ro', fields: [{ name: 'STREAMID', lsb: 0, width: 16, access: 'ro' }] },
    { name: 'sGFSYNR2', offset: 0x058, access: 'ro' },
    { name: 'TLBIVMID', offset: 0x064, access: 'wo', doc: 'Stage-2 maintenance: no stage 2 modelled.' },
    { name: 'TLBIALLNSNH', offset: 0x068, access: 'wo', doc: 'Invalidate every non-secure non-hyp entry (every bank), at the next sTLBGSYNC.' },
    { name: 'TLBIALLH', offset: 0x06c, access: 'wo', doc: 'Hyp entries: none modelled.' },
    { name: 'sTLBGSYNC', offset: 0x070, access: 'wo', doc: 'Complete global TLB maintenance; poll sTLBGSTATUS.' },
    { name: 'sTLBGSTATUS', offset: 0x074, access: 'ro', fields: [{ name: 'GSACTIVE', lsb: 0, width: 1, access: 'ro' }] },
    ...Array.from({ length: g.streamMatchGroups }, (_, n): RegSpec[] => [
      {
        name: `SMR${n}`,
        offset: 0x800 + 4 * n,
        fields: [
          { name: 'ID', lsb: 0, width: 16 },
          { name: 'MASK', lsb: 16, width: 15, doc: 'ID bits ignored in the match' },
          { name: 'VALID', lsb: 31, width: 1 },
        ],
        doc: `Stream match register ${n}: a stream matches when (SID ^ ID) & ~MASK == 0.`,
      },
      {
        name: `S2CR${n}`,
        offset: 0xc00 + 4 * n,
        reset: S2CR_TYPE_FAULT << 16,
        fields: [
          { name: 'CBNDX', lsb: 0, width: 8 },
          { name: 'EXIDVALID', lsb: 10, width: 1 },
          { name: 'TYPE', lsb: 16, width: 2, enum: { TRANS: 0, BYPASS: 1, FAULT: 2 } },
          { name: 'PRIVCFG', lsb: 24, width: 2, enum: { DEFAULT: 0, DIPAN: 1, UNPRIV: 2, PRIV: 3 } },
        ],
        doc: `Stream-to-context register ${n}: what a stream matched by SMR${n} gets.`,
      },
    ]).flat(),
    ...Array.from({ length: g.contextBanks }, (_, n): RegSpec[] => [
      {
        name: `CBAR${n}`,
        offset: gr1 + 4 * n,
        fields: [
          { name: 'VMID', lsb: 0, width: 8 },
          { name: 'BPSHCFG', lsb: 8, width: 2 },
          { name: 'MEMATTR', lsb: 12, width: 4 },
          { name: 'TYPE', lsb: 16, width: 2, enum: { S2_TRANS: 0, S1_TRANS_S2_BYPASS: 1, S1_TRANS_S2_FAULT: 2, S1_TRANS_S2_TRANS: 3 } },
          { name: 'IRPTNDX', lsb: 24, width: 8, doc: 'context interrupt index' },
        ],
      },
      { name: `CBFRSYNRA${n}`, offset: gr1 + 0x400 + 4 * n, access: 'ro', fields: [{ name: 'STREAMID', lsb: 0, width: 16, access: 'ro' }], doc: `Stream ID of bank ${n}'s recorded fault.` },
      { name: `CBA2R${n}`, offset: gr1 + 0x800 + 4 * n, fields: [{ name: 'VA64', lsb: 0, width: 1 }, { name: 'VMID16', lsb: 16, width: 16 }] },
    ]).flat(),
    ...Array.from({ length: g.contextBanks }, (_, n) => cbRegs(n, (g.numpage + n) * SMMU_PAGE)).flat(),
  ];
  const decl = defineBlock({
    type: 'arm-smmu-v2',
    size: g.size,
    regs,
    doc: `Arm SMMUv2: ${g.streamMatchGroups} stream match groups, ${g.contextBanks} stage-1 context banks (AArch64 LPAE, 4 KiB granule).`,
  });
  declCache.set(key, decl);
  return decl;
}

type TlbiKind = 'va' | 'val' | 'asid' | 'all';

interface Tlbi {
  kind: TlbiKind;
  /** Context bank, or -1 for every bank (TLBIALLNSNH). */
  cb: number;
  va: number;
  asid: number;
}

interface Sync {
  /** Context bank, or -1 for sTLBGSYNC. */
  cb: number;
  doneAt: number;
}

interface WcEntry {
  cb: number;
  lvl: number;
  asid: number;
  /** Address of the descriptor and its two words. */
  pa: number;
  lo: number;
  hi: number;
  next: number;
}

/** Per-bank register mirrors read on every beat. */
interface BankState {
  sctlr: number;
  ttbr: number;
  asid: number;
  tcr: number;
  /** The _HI words last written to TLBIVA and TLBIVAL. */
  tlbiVaHi: number;
  tlbiValHi: number;
  /** TLB maintenance waiting for this bank's TLBSYNC. */
  queued: Tlbi[];
}

interface SmmuSnapshot {
  powered: boolean;
  regs: Uint32Array;
  tlb: ReturnType<Tlb['snapshot']>;
  wc: [number, WcEntry][];
  queued: Tlbi[];
  syncs: Sync[];
  faults: Fault[];
  stats: IommuStats;
  irqLevels: [number, boolean][];
}

const hex = (n: number): string => `0x${n.toString(16)}`;

class ArmSmmu implements IommuModel {
  readonly model = 'arm-lpae';
  readonly decl: BlockDecl;
  readonly regs: RegisterFile;
  private readonly g: SmmuGeometry;
  private readonly base: number;
  private readonly coherentWalk: boolean;
  private readonly busyCycles: number;
  private readonly contextIrqBase: number | undefined;
  /** SMMUv1 selects a bank's context interrupt by CBAR.IRPTNDX; SMMUv2 gives every bank its own. */
  private readonly version: 'v1' | 'v2';
  private readonly tlbc: Tlb;
  private readonly wc: KeyedCache<WcEntry>;
  private readonly banks: BankState[];
  private powered = true;
  /** TLBIALLNSNH operations waiting for sTLBGSYNC. */
  private globalQueue: Tlbi[] = [];
  private syncs: Sync[] = [];
  private readonly log: ModelLog;
  private st: IommuStats = { hits: 0, misses: 0, walks: 0, faults: 0 };
  private irqLevels = new Map<number, boolean>();
  // Global mirrors.
  private scr0 = SCR0_CLIENTPD;
  private smr: Uint32Array;
  private s2cr: Uint32Array;
  private readonly walked: TlbLine = { iova: 0, size: 0, pa: 0, perms: 0, master: 0, aux: 0 };
  private readonly ok = { ok: true as const, pa: 0, coherent: false };
  /** Level, FSR bit and reason of the last failed walk. */
  private faultLvl = 0;
  private faultFsr = 0;

  constructor(
    private readonly cfg: IommuConfig,
    private readonly ctx: HwContext,
  ) {
    const win = cfg.reg[0];
    if (!win || cfg.reg.length !== 1) throw new Error(`${cfg.name}: the SMMU has exactly one register window`);
    this.g = smmuGeometry(cfg);
    this.base = num(win.base);
    if (num(win.size) < this.g.size) throw new Error(`${cfg.name}: ${this.g.contextBanks} context banks need a ${hex(this.g.size)}-byte register window, not ${hex(num(win.size))}`);
    this.coherentWalk = cfg.coherentWalk ?? false;
    const o = cfg.options ?? {};
    this.busyCycles = typeof o.invalidateCycles === 'number' ? o.invalidateCycles : 0;
    this.contextIrqBase = typeof o.contextIrqBase === 'number' ? o.contextIrqBase : undefined;
    const version = o.version ?? 'v2';
    if (version !== 'v1' && version !== 'v2') throw new Error(`${cfg.name}: options.version must be 'v1' or 'v2', not ${JSON.stringify(version)}`);
    this.version = version;
    const vaBits = typeof o.vaBits === 'number' ? o.vaBits : 48;
    const paBits = typeof o.paBits === 'number' ? o.paBits : 40;
    if (SIZE_ENC[vaBits] === undefined || SIZE_ENC[paBits] === undefined) throw new Error(`${cfg.name}: options.vaBits/paBits must be one of 32, 36, 40, 42, 44, 48`);
    const id0 = ((1 << 30) | (1 << 27) | (1 << 26) | ((this.coherentWalk ? 1 : 0) << 14) | (15 << 9) | (this.g.contextBanks << 16) | this.g.streamMatchGroups) >>> 0;
    const id1 = ((Math.log2(this.g.numpage) - 1) << 28) | this.g.contextBanks;
    const id2 = (1 << 12) | (SIZE_ENC[vaBits]! << 8) | (SIZE_ENC[paBits]! << 4) | SIZE_ENC[paBits]!;
    this.decl = armSmmuDecl(this.g, { id0, id1, id2 });
    this.banks = Array.from({ length: this.g.contextBanks }, () => ({ sctlr: 0, ttbr: 0, asid: 0, tcr: 0, tlbiVaHi: 0, tlbiValHi: 0, queued: [] }));
    this.smr = new Uint32Array(this.g.streamMatchGroups);
    this.s2cr = new Uint32Array(this.g.streamMatchGroups);
    this.log = new ModelLog(ctx, cfg.name);
    const log = (level: string): EvictionLog => this.log.evictions(level);
    const tlbEv = log('tlb');
    this.tlbc = new Tlb({ level: 'tlb', capacity: cfg.tlb?.entries ?? 128, rng: ctx.rng, tagMaster: true, evictions: tlbEv });
    const wcEv = log('walk');
    this.wc = new KeyedCache<WcEntry>(cfg.walkCache?.entries ?? 32, ctx.rng, (_k, e) => wcEv.note(e.pa));
    this.regs = new RegisterFile(this.decl, {
      onWrite: (e) => this.onWrite(e),
      onRead: (r, stored) => this.onRead(r, stored),
      onReservedWrite: reservedWriteReporter(ctx.findings, () => this.name, 'reserved or read-only'),
    });
    this.mirrorAll();
  }

  get name(): string {
    return this.cfg.name;
  }

  mmio(): MmioRegion[] {
    return [{ base: this.base, size: this.g.size, target: { name: this.name, read32: (o) => this.regs.read(o), write32: (o, v) => this.regs.write(o, v) } }];
  }

  registerFiles(): { window: string; base: number; regs: RegisterFile }[] {
    return [{ window: this.name, base: this.base, regs: this.regs }];
  }

  private mirrorAll(): void {
    this.scr0 = this.regs.get('sCR0');
    for (let n = 0; n < this.g.streamMatchGroups; n++) {
      this.smr[n] = this.regs.get(`SMR${n}`);
      this.s2cr[n] = this.regs.get(`S2CR${n}`);
    }
    for (let n = 0; n < this.g.contextBanks; n++) this.mirrorBank(n);
  }

  private mirrorBank(n: number): void {
    const b = this.banks[n]!;
    const hi = this.regs.get(`CB${n}_TTBR0_HI`);
    b.sctlr = this.regs.get(`CB${n}_SCTLR`);
    b.ttbr = ((this.regs.get(`CB${n}_TTBR0_LO`) & 0xfffffff0) >>> 0) + (hi & 0xffff) * TWO32;
    b.asid = hi >>> 16;
    b.tcr = this.regs.get(`CB${n}_TCR`);
    b.tlbiVaHi = this.regs.get(`CB${n}_TLBIVA_HI`);
    b.tlbiValHi = this.regs.get(`CB${n}_TLBIVAL_HI`);
  }

  /** Which bank (or -1: global) an offset belongs to, and the offset inside its page. */
  private bankOf(offset: number): number {
    const page = Math.floor(offset / SMMU_PAGE);
    return page >= this.g.numpage ? page - this.g.numpage : -1;
  }

  private onWrite(e: WriteEvent): void {
    const off = e.reg.offset;
    const n = this.bankOf(off);
    if (n < 0) {
      this.onGlobalWrite(e);
      return;
    }
    const b = this.banks[n]!;
    switch (off % SMMU_PAGE) {
      case CB.TLBIVA_HI:
        b.tlbiVaHi = e.written;
        break;
      case CB.TLBIVAL_HI:
        b.tlbiValHi = e.written;
        break;
      case CB.TLBIVA_LO:
        b.queued.push({ kind: 'va', cb: n, va: ((b.tlbiVaHi & 0xfff) * TWO32 + (e.written >>> 0)) * SMMU_PAGE, asid: b.tlbiVaHi >>> 16 });
        break;
      case CB.TLBIVAL_LO:
        b.queued.push({ kind: 'val', cb: n, va: ((b.tlbiValHi & 0xfff) * TWO32 + (e.written >>> 0)) * SMMU_PAGE, asid: b.tlbiValHi >>> 16 });
        break;
      case CB.TLBIASID:
        b.queued.push({ kind: 'asid', cb: n, va: 0, asid: e.written & 0xffff });
        break;
      case CB.TLBIALL:
        b.queued.push({ kind: 'all', cb: n, va: 0, asid: 0 });
        break;
      case CB.TLBSYNC:
        this.startSync(n);
        break;
      case CB.FSR:
        this.updateIrq();
        break;
      case CB.SCTLR:
        this.mirrorBank(n);
        this.updateIrq();
        break;
      case CB.TTBR0_LO:
      case CB.TTBR0_HI:
      case CB.TCR:
        this.mirrorBank(n);
        break;
    }
  }

  private onGlobalWrite(e: WriteEvent): void {
    const off = e.reg.offset;
    if (off >= 0x800 && off < 0x800 + 4 * this.g.streamMatchGroups) this.smr[(off - 0x800) / 4] = e.value;
    else if (off >= 0xc00 && off < 0xc00 + 4 * this.g.streamMatchGroups) this.s2cr[(off - 0xc00) / 4] = e.value;
    else if (e.reg.name === 'sCR0' || e.reg.name === 'sGFSR') {
      this.scr0 = this.regs.get('sCR0');
      this.updateIrq();
    } else if (e.reg.name === 'TLBIALLNSNH') this.globalQueue.push({ kind: 'all', cb: -1, va: 0, asid: 0 });
    else if (e.reg.name === 'sTLBGSYNC') this.startSync(-1);
  }

  private onRead(r: RegSpec, stored: number): number {
    if (this.syncs.length > 0 && (r.name === 'sTLBGSTATUS' || r.name.endsWith('_TLBSTATUS'))) {
      this.settle();
      return this.regs.get(r.name);
    }
    return stored;
  }

  private startSync(cb: number): void {
    if (this.busyCycles <= 0) {
      this.completeSync(cb);
      return;
    }
    this.regs.set(cb < 0 ? 'sTLBGSTATUS' : `CB${cb}_TLBSTATUS`, 1);
    this.syncs.push({ cb, doneAt: this.ctx.clock.now() + this.busyCycles });
    this.ctx.clock.after(this.busyCycles, `${this.name}.sync`, () => this.settle());
  }

  private settle(): void {
    const now = this.ctx.clock.now();
    const due = this.syncs.filter((s) => s.doneAt <= now);
    if (due.length === 0) return;
    this.syncs = this.syncs.filter((s) => s.doneAt > now);
    for (const s of due) this.completeSync(s.cb);
  }

  /** Apply the maintenance a sync covers: a bank's own operations, or the global ones. */
  private completeSync(cb: number): void {
    const mine = cb < 0 ? this.globalQueue : this.banks[cb]!.queued;
    if (cb < 0) this.globalQueue = [];
    else this.banks[cb]!.queued = [];
    let n = 0;
    for (const t of mine) n += this.apply(t);
    if (this.busyCycles > 0 && !this.syncs.some((x) => x.cb === cb)) this.regs.set(cb < 0 ? 'sTLBGSTATUS' : `CB${cb}_TLBSTATUS`, 0);
    this.log.flushEvictions();
    this.ctx.trace.emit({ time: this.ctx.clock.now(), cat: 'inval', name: cb < 0 ? 'sTLBGSYNC' : 'TLBSYNC', track: this.name, args: { cb, ops: mine.length, dropped: n } });
  }

  private apply(t: Tlbi): number {
    const cb = t.cb;
    if (t.kind === 'all') {
      if (cb < 0) {
        const n = this.tlbc.invalidateAll() + this.wc.size;
        this.wc.clear();
        return n;
      }
      return this.tlbc.invalidateAll(cb) + this.wc.deleteWhere((_k, e) => e.cb === cb);
    }
    if (t.kind === 'asid') {
      let n = 0;
      for (const l of this.tlbc.lines().filter((x) => x.master === cb && (x.aux & 0xffff) === t.asid && !(x.aux & AUX_GLOBAL))) n += this.tlbc.invalidateRange(l.iova, l.size, cb);
      return n + this.wc.deleteWhere((_k, e) => e.cb === cb && e.asid === t.asid);
    }
    let n = this.tlbc.invalidateRange(t.va, 1, cb);
    if (t.kind === 'va') {
      for (let lvl = 0; lvl < 3; lvl++) {
        const k = wcKey(cb, lvl, t.va);
        const e = this.wc.get(k);
        if (e && e.asid === t.asid && this.wc.delete(k)) n++;
      }
    }
    return n;
  }

  /** The interrupt lines' levels: global faults on `irq`, context faults on their own line or `irq`. */
  private updateIrq(): void {
    const want = new Map<number, boolean>();
    const raise = (line: number | undefined, on: boolean): void => {
      if (line !== undefined) want.set(line, (want.get(line) ?? false) || on);
    };
    raise(this.cfg.irq, (this.scr0 & SCR0_GFIE) !== 0 && (this.regs.get('sGFSR') & 0x800000ff) !== 0);
    for (let n = 0; n < this.g.contextBanks; n++) {
      const on = (this.banks[n]!.sctlr & SCTLR_CFIE) !== 0 && (this.regs.get(`CB${n}_FSR`) & FSR_FAULT) !== 0;
      const index = this.version === 'v1' ? this.regs.get(`CBAR${n}`) >>> 24 : n;
      raise(this.contextIrqBase === undefined ? this.cfg.irq : this.contextIrqBase + index, on);
    }
    for (const [line, level] of want) {
      if ((this.irqLevels.get(line) ?? false) === level) continue;
      this.irqLevels.set(line, level);
      this.ctx.setIrq(line, level);
    }
  }

  /** The S2CR a stream ID selects, or -1. */
  private streamMatch(sid: number): number {
    for (let i = 0; i < this.smr.length; i++) {
      const s = this.smr[i]!;
      if (s & SMR_VALID && ((sid ^ s) & ~(s >>> 16) & 0xffff) === 0) return i;
    }
    return -1;
  }

  translate(master: MasterPort, iova: number, access: AccessKind): Translation {
    if (this.syncs.length > 0) this.settle();
    if (!this.powered) return this.fault(master, iova, access, 'powered-off', -1);
    const ok = this.ok;
    if (this.scr0 & SCR0_CLIENTPD) {
      ok.pa = iova;
      return ok;
    }
    const sme = this.streamMatch(master.id);
    if (sme < 0) {
      if ((this.scr0 & SCR0_USFCFG) === 0) {
        ok.pa = iova;
        return ok;
      }
      this.globalFault(master.id, access);
      return this.fault(master, iova, access, 'translation-disabled', -1);
    }
    const s2cr = this.s2cr[sme]!;
    const type = (s2cr >>> 16) & 3;
    if (type === S2CR_TYPE_BYPASS) {
      ok.pa = iova;
      return ok;
    }
    if (type !== S2CR_TYPE_TRANS) return this.fault(master, iova, access, 'translation-disabled', -1);
    const cb = s2cr & 0xff;
    if (cb >= this.g.contextBanks) return this.fault(master, iova, access, 'translation-disabled', -1);
    const b = this.banks[cb]!;
    if ((b.sctlr & SCTLR_M) === 0) {
      ok.pa = iova;
      return ok;
    }
    const priv = ((s2cr >>> 24) & 3) === S2CR_PRIVCFG_PRIV;
    let line = this.tlbc.lookup(iova, cb);
    if (line === undefined || ((line.aux & 0xffff) !== b.asid && (line.aux & AUX_GLOBAL) === 0)) {
      this.st.misses++;
      const w = this.walk(cb, b, iova, priv, this.walked);
      if (typeof w === 'string') return this.fault(master, iova, access, w, cb);
      line = w;
      this.tlbc.insert(line);
    } else this.st.hits++;
    if ((line.perms & (access === 'write' ? PERM_WRITE : PERM_READ)) === 0) {
      this.faultLvl = 3;
      this.faultFsr = FSR_PF;
      return this.fault(master, iova, access, 'permission', cb);
    }
    ok.pa = line.pa + (iova - line.iova);
    return ok;
  }

  private walk(cb: number, b: BankState, iova: number, priv: boolean, out: TlbLine): TlbLine | FaultReason {
    this.st.walks++;
    this.faultFsr = FSR_TF;
    this.faultLvl = 0;
    const t0sz = b.tcr & 0x3f;
    const ias = 64 - t0sz;
    if ((b.tcr >>> 14) & 3 || b.tcr & TCR_EPD0 || t0sz < 16 || t0sz > 39) return 'translation-disabled';
    if (iova < 0 || iova >= 2 ** ias) return 'address-size';
    const start = ias > 39 ? 0 : ias > 30 ? 1 : 2;
    let lvl = start;
    let table = b.ttbr;
    // Resume from the deepest cached table descriptor of this ASID.
    for (let l = 2; l >= start; l--) {
      const e = this.wc.get(wcKey(cb, l, iova));
      if (e !== undefined && e.asid === b.asid) {
        lvl = l + 1;
        table = e.next;
        break;
      }
    }
    try {
      for (; ; lvl++) {
        this.faultLvl = lvl;
        const shift = LVL_SHIFT[lvl]!;
        const entries = lvl === start ? 2 ** (ias - shift) : 512;
        const idx = Math.floor(iova / 2 ** shift) % entries;
        const dpa = table + idx * 8;
        const lo = walkRead32(this.ctx, dpa, this.coherentWalk, this.cfg.name, `L${lvl} descriptor`, iova);
        const hi = this.readHi(dpa + 4, lvl, iova);
        if ((lo & 1) === 0) return lvl < 3 ? 'dte-invalid' : 'pte-invalid';
        const addr = (lo & 0xfffff000) >>> 0;
        if (lvl < 3 && lo & 2) {
          table = addr + (hi & 0xffff) * TWO32;
          this.wc.set(wcKey(cb, lvl, iova), { cb, lvl, asid: b.asid, pa: dpa, lo, hi, next: table });
          continue;
        }
        // Level 3 needs type 3; a block at level 0 does not exist with a 4 KiB granule.
        if ((lvl === 3 && (lo & 2) === 0) || lvl === 0) return 'pte-invalid';
        const size = 2 ** shift;
        if ((lo & (1 << 10)) === 0) {
          this.faultFsr = FSR_AFF;
          return 'permission';
        }
        out.iova = iova - (iova % size);
        out.size = size;
        out.pa = addr - (addr % size) + (hi & 0xffff) * TWO32;
        out.master = cb;
        const unpriv = (lo & (1 << 6)) !== 0;
        const ro = (lo & (1 << 7)) !== 0;
        out.perms = !unpriv && !priv ? 0 : ro ? PERM_READ : PERM_READ | PERM_WRITE;
        out.aux = b.asid | (lo & (1 << 11) ? 0 : AUX_GLOBAL);
        return out;
      }
    } catch (e) {
      if (e instanceof BusError) {
        this.faultFsr = FSR_EF;
        return 'bus-error';
      }
      throw e;
    }
  }

  /**
   * A descriptor's upper word. Bits 58:55 are for software and ignored by the walker: io-pgtable sets
   * its SW_SYNC bit there after cleaning the entry, so a CPU-cache copy differing from RAM only in
   * them is not an unflushed walk.
   */
  private readHi(pa: number, lvl: number, iova: number): number {
    const cache = this.ctx.bus.cache;
    if (!this.coherentWalk && cache.isDirty(pa) && ((cache.read32(pa) ^ this.ctx.bus.ram.read32(pa)) & ~SW_BITS_HI) !== 0) {
      return walkRead32(this.ctx, pa, false, this.cfg.name, `L${lvl} descriptor`, iova);
    }
    const v = this.ctx.bus.devRead32(pa, this.coherentWalk, this.cfg.name);
    this.ctx.observer?.walkRead(this.cfg.name, pa, v, iova);
    return v;
  }

  private globalFault(sid: number, access: AccessKind): void {
    const st = this.regs.get('sGFSR');
    if (st & 0xff) this.regs.set('sGFSR', (st | SGFSR_MULTI) >>> 0);
    else {
      this.regs.set('sGFSR', st | SGFSR_USF);
      this.regs.set('sGFSYNR0', access === 'write' ? 2 : 0);
      this.regs.set('sGFSYNR1', sid & 0xffff);
    }
    this.updateIrq();
  }

  /** Record a fault; cb >= 0 latches it in that bank's fault registers. */
  private fault(master: MasterPort, iova: number, access: AccessKind, reason: FaultReason, cb: number): Translation {
    const f: Fault = { iova, master: master.name, access, reason, time: this.ctx.clock.now(), iommu: this.name };
    if (cb >= 0) {
      const fsr = this.regs.get(`CB${cb}_FSR`);
      if (fsr & FSR_FAULT) this.regs.set(`CB${cb}_FSR`, (fsr | FSR_MULTI) >>> 0);
      else {
        this.regs.set(`CB${cb}_FSR`, this.faultFsr);
        this.regs.set(`CB${cb}_FAR_LO`, iova % TWO32);
        this.regs.set(`CB${cb}_FAR_HI`, Math.floor(iova / TWO32));
        this.regs.set(`CB${cb}_FSYNR0`, (this.faultLvl & 3) | (access === 'write' ? FSYNR0_WNR : 0));
        this.regs.set(`CBFRSYNRA${cb}`, master.id & 0xffff);
      }
      this.updateIrq();
    }
    if (reason !== 'powered-off') {
      this.ctx.findings.report({
        kind: 'fault',
        severity: 'error',
        message: `${this.name}: ${access} fault at IOVA ${hex(iova)} by ${master.name}${cb >= 0 ? ` (context bank ${cb})` : ''}: ${reason}`,
        where: { iommu: this.name, iova: hex(iova), master: master.name, access, reason },
      });
    }
    this.st.faults++;
    this.log.fault(f, { iova: hex(iova), master: master.name, access, reason, cb });
    return { ok: false, fault: f };
  }

  tlb(): TlbEntry[] {
    this.log.flushEvictions();
    return this.tlbc.list({ attrs: (l) => ({ cb: l.master, asid: l.aux & 0xffff, global: l.aux & AUX_GLOBAL ? 1 : 0 }) });
  }

  walkCache(): WalkCacheEntry[] {
    this.log.flushEvictions();
    return this.wc
      .entries()
      .map(([k, e]) => {
        const span = 2 ** LVL_SHIFT[e.lvl]!;
        return { iova: Math.floor(k / 512) * span, span, tablePa: e.pa, entries: [e.lo, e.hi], valid: true };
      })
      .sort((a, b) => a.iova - b.iova || b.span - a.span);
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
    this.globalQueue = [];
    for (const b of this.banks) b.queued = [];
    this.syncs = [];
    this.mirrorAll();
    this.updateIrq();
  }

  isPowered(): boolean {
    return this.powered;
  }

  snapshot(): SmmuSnapshot {
    this.log.flushEvictions();
    return {
      powered: this.powered,
      regs: this.regs.snapshot(),
      tlb: this.tlbc.snapshot(),
      wc: this.wc.snapshot(),
      queued: [...this.globalQueue, ...this.banks.flatMap((b) => b.queued)].map((t) => ({ ...t })),
      syncs: this.syncs.map((s) => ({ ...s })),
      faults: this.faults(),
      stats: this.stats(),
      irqLevels: [...this.irqLevels],
    };
  }

  restore(raw: unknown): void {
    const s = raw as SmmuSnapshot;
    this.powered = s.powered;
    this.regs.restore(s.regs);
    this.tlbc.restore(s.tlb);
    this.wc.restore(s.wc);
    this.globalQueue = [];
    for (const b of this.banks) b.queued = [];
    for (const t of s.queued) (t.cb < 0 ? this.globalQueue : this.banks[t.cb]!.queued).push({ ...t });
    this.syncs = s.syncs.map((x) => ({ ...x }));
    this.log.restoreFaults(s.faults);
    this.st = { ...s.stats };
    this.irqLevels = new Map(s.irqLevels);
    this.mirrorAll();
    for (const x of this.syncs) this.ctx.clock.after(x.doneAt - this.ctx.clock.now(), `${this.name}.sync`, () => this.settle());
  }
}

/** Walk-cache key: the region a level-lvl table descriptor covers, per bank and level. */
function wcKey(cb: number, lvl: number, iova: number): number {
  return Math.floor(iova / 2 ** LVL_SHIFT[lvl]!) * 512 + cb * 4 + lvl;
}

export const createArmSmmu: IommuFactory = (cfg, ctx) => new ArmSmmu(cfg, ctx);
