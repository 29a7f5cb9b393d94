/**
 * ARM short-descriptor (VMSAv7 "v7s") io-pgtable, after drivers/iommu/io-pgtable-arm-v7s.c
 * (hardware-facts §3). Two levels: L1 of 4096 entries (1 MiB sections, 16 MiB supersections as 16
 * replicated sections, or L2 table pointers), L2 of 256 entries (4 KiB small pages, 64 KiB large
 * pages as 16 replicated entries). Lockless as upstream: a new table goes in with cmpxchg and the
 * loser frees its own table; splitting a 16-entry group cannot be atomic and takes split_lock.
 */
import type { Op } from '../core/coop';
import { EEXIST, EINVAL, ENOMEM, ERANGE, hex } from './errno';
import {
  IoPgtableHang,
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_MTK_EXT,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_NO_PERMS,
  SZ_16M,
  SZ_1M,
  SZ_4K,
  SZ_64K,
  resolveVariant,
  warnOp,
  type Gfp,
  type IoPgtableCfg,
  type IoPgtableEnv,
  type IoPgtableOps,
  type IoPgtableVariant,
  type IommuIotlbGather,
  type MapResult,
  type PgtableAllocator,
} from './io-pgtable';
import type { KernelPort } from './port';
import { SpinLock } from './spinlock';

export type ArmV7sIopte = number;

export const ARM_V7S_CONT_PAGES = 16;

/* Descriptor types, bits 1:0. */
export const ARM_V7S_PTE_TYPE_TABLE = 0x1;
export const ARM_V7S_PTE_TYPE_PAGE = 0x2;
export const ARM_V7S_PTE_TYPE_CONT_PAGE = 0x1;

/* Fixed attribute bits. */
export const ARM_V7S_ATTR_B = 1 << 2;
export const ARM_V7S_ATTR_C = 1 << 3;
export const ARM_V7S_ATTR_NS_TABLE = 1 << 3;
export const ARM_V7S_ATTR_NS_SECTION = 1 << 19;
export const ARM_V7S_CONT_SECTION = 1 << 18;
const ARM_V7S_CONT_PAGE_XN_SHIFT = 15;

/* The 8-bit attribute block, shifted by ARM_V7S_ATTR_SHIFT(lvl). */
export const ARM_V7S_PTE_AF = 1 << 0;
export const ARM_V7S_PTE_AP_UNPRIV = 1 << 1;
export const ARM_V7S_PTE_AP_RDONLY = 1 << 5;
export const ARM_V7S_ATTR_S = 1 << 6;
export const ARM_V7S_ATTR_NG = 1 << 7;
const ARM_V7S_TEX_SHIFT = 2;
const ARM_V7S_TEX_MASK = 0x7;

/* Large pages keep TEX at 14:12 instead of 8:6. */
const ARM_V7S_CONT_PAGE_TEX_SHIFT = 6;
const ARM_V7S_CONT_PAGE_TEX_MASK = (ARM_V7S_TEX_MASK << ARM_V7S_TEX_SHIFT) << 4;

/* MediaTek: PA bits 32..34 in otherwise-unused attribute positions (needs NO_PERMS). */
export const ARM_V7S_ATTR_MTK_PA_BIT32 = 1 << 9;
export const ARM_V7S_ATTR_MTK_PA_BIT33 = 1 << 4;
export const ARM_V7S_ATTR_MTK_PA_BIT34 = 1 << 5;

const ARM_V7S_TABLE_MASK = 0xfffffc00;
const TWO32 = 0x100000000;
/* Hot-path sizes kept module-local: imported bindings become getter calls under the test/bench loaders. */
const L1_BLOCK = 0x100000;
const L2_BLOCK = 0x1000;
const PROT_RW = 3;

/* TTBR / PRRR / NMRR encodings (§3.10). */
const ARM_V7S_TTBR_S = 1 << 1;
const ARM_V7S_TTBR_NOS = 1 << 5;
const ARM_V7S_RGN_WBWA = 1;
const ttbrIrgn = (attr: number): number => ((attr & 1) << 6) | ((attr & 2) >> 1);
const ttbrOrgn = (attr: number): number => (attr & 3) << 3;
const PRRR_TYPE_DEVICE = 1;
const PRRR_TYPE_NORMAL = 2;
const prrrTr = (n: number, type: number): number => (type & 3) << (n * 2);
const PRRR_DS0 = 1 << 16;
const PRRR_DS1 = 1 << 17;
const PRRR_NS1 = 1 << 19;
const prrrNos = (n: number): number => 1 << (n + 24);
const nmrrIr = (n: number, attr: number): number => (attr & 3) << (n * 2);
const nmrrOr = (n: number, attr: number): number => (attr & 3) << (n * 2 + 16);

export const armV7sBlockSize = (lvl: number): number => (lvl === 1 ? L1_BLOCK : L2_BLOCK);
const lvlMask = (lvl: number): number => (lvl === 1 ? 0xfff00000 : 0xfffff000);

export const armV7sPteIsValid = (pte: ArmV7sIopte): boolean => (pte & 3) !== 0;
export const armV7sPteIsTable = (pte: ArmV7sIopte, lvl: number): boolean => lvl === 1 && (pte & 3) === ARM_V7S_PTE_TYPE_TABLE;

export function armV7sPteIsCont(pte: ArmV7sIopte, lvl: number): boolean {
  if (lvl === 1) return !armV7sPteIsTable(pte, 1) && (pte & ARM_V7S_CONT_SECTION) !== 0;
  return (pte & 3) === ARM_V7S_PTE_TYPE_CONT_PAGE;
}

const xnBit = (lvl: number): number => (lvl === 1 ? 1 << 4 : 1 << 0);
const attrShift = (lvl: number): number => 16 - lvl * 6;

function pteToCont(pte: ArmV7sIopte, lvl: number): ArmV7sIopte {
  if (lvl === 1) return (pte | ARM_V7S_CONT_SECTION) >>> 0;
  const xn = pte & xnBit(2);
  const tex = pte & ARM_V7S_CONT_PAGE_TEX_MASK;
  pte ^= xn | tex | ARM_V7S_PTE_TYPE_PAGE;
  return (pte | (xn << ARM_V7S_CONT_PAGE_XN_SHIFT) | (tex << ARM_V7S_CONT_PAGE_TEX_SHIFT) | ARM_V7S_PTE_TYPE_CONT_PAGE) >>> 0;
}

function contToPte(pte: ArmV7sIopte, lvl: number): ArmV7sIopte {
  if (lvl === 1) return (pte & ~ARM_V7S_CONT_SECTION) >>> 0;
  const xn = pte & (1 << ARM_V7S_CONT_PAGE_XN_SHIFT);
  const tex = pte & (ARM_V7S_CONT_PAGE_TEX_MASK << ARM_V7S_CONT_PAGE_TEX_SHIFT);
  pte ^= xn | tex | ARM_V7S_PTE_TYPE_CONT_PAGE;
  return (pte | (xn >>> ARM_V7S_CONT_PAGE_XN_SHIFT) | (tex >>> ARM_V7S_CONT_PAGE_TEX_SHIFT) | ARM_V7S_PTE_TYPE_PAGE) >>> 0;
}

/** IOMMU_* prot to descriptor attributes (type bits included, PA not). */
export function armV7sProtToPte(prot: number, lvl: number, quirks: number): ArmV7sIopte {
  const ap = !(quirks & IO_PGTABLE_QUIRK_NO_PERMS);
  let pte = ARM_V7S_ATTR_NG | ARM_V7S_ATTR_S;
  if (!(prot & IOMMU_MMIO)) pte |= 1 << ARM_V7S_TEX_SHIFT;
  if (ap) {
    pte |= ARM_V7S_PTE_AF;
    if (!(prot & IOMMU_PRIV)) pte |= ARM_V7S_PTE_AP_UNPRIV;
    if (!(prot & IOMMU_WRITE)) pte |= ARM_V7S_PTE_AP_RDONLY;
  }
  pte <<= attrShift(lvl);
  if (prot & IOMMU_NOEXEC && ap) pte |= xnBit(lvl);
  if (prot & IOMMU_MMIO) pte |= ARM_V7S_ATTR_B;
  else if (prot & IOMMU_CACHE) pte |= ARM_V7S_ATTR_B | ARM_V7S_ATTR_C;
  pte |= ARM_V7S_PTE_TYPE_PAGE;
  if (lvl === 1 && quirks & IO_PGTABLE_QUIRK_ARM_NS) pte |= ARM_V7S_ATTR_NS_SECTION;
  return pte >>> 0;
}

/** The reverse, for a non-contiguous leaf (used when a section is split into pages). */
export function armV7sPteToProt(pte: ArmV7sIopte, lvl: number): number {
  let prot = IOMMU_READ;
  const attr = pte >>> attrShift(lvl);
  if (!(attr & ARM_V7S_PTE_AP_RDONLY)) prot |= IOMMU_WRITE;
  if (!(attr & ARM_V7S_PTE_AP_UNPRIV)) prot |= IOMMU_PRIV;
  if ((attr & (ARM_V7S_TEX_MASK << ARM_V7S_TEX_SHIFT)) === 0) prot |= IOMMU_MMIO;
  else if (pte & ARM_V7S_ATTR_C) prot |= IOMMU_CACHE;
  if (pte & xnBit(lvl)) prot |= IOMMU_NOEXEC;
  return prot;
}

function paddrToIopte(paddr: number, lvl: number, mtk: boolean): ArmV7sIopte {
  let pte = (paddr % TWO32) & lvlMask(lvl);
  if (mtk) {
    const hi = Math.floor(paddr / TWO32);
    if (hi & 1) pte |= ARM_V7S_ATTR_MTK_PA_BIT32;
    if (hi & 2) pte |= ARM_V7S_ATTR_MTK_PA_BIT33;
    if (hi & 4) pte |= ARM_V7S_ATTR_MTK_PA_BIT34;
  }
  return pte >>> 0;
}

/** Output (or next-table) address of a descriptor, MediaTek bits included. */
export function armV7sIopteToPaddr(pte: ArmV7sIopte, lvl: number, quirks: number): number {
  let mask: number;
  if (armV7sPteIsTable(pte, lvl)) mask = ARM_V7S_TABLE_MASK;
  else if (armV7sPteIsCont(pte, lvl)) mask = lvl === 1 ? 0xff000000 : 0xffff0000;
  else mask = lvlMask(lvl);
  let paddr = (pte & mask) >>> 0;
  if (quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) {
    if (pte & ARM_V7S_ATTR_MTK_PA_BIT32) paddr += TWO32;
    if (pte & ARM_V7S_ATTR_MTK_PA_BIT33) paddr += 2 * TWO32;
    if (pte & ARM_V7S_ATTR_MTK_PA_BIT34) paddr += 4 * TWO32;
  }
  return paddr;
}

/** State shared by every CPU driving the same page table. */
interface V7sData {
  cfg: IoPgtableCfg;
  alloc: PgtableAllocator;
  variant: IoPgtableVariant;
  warn: (msg: string) => void;
  pgd: number;
  /** L1 entries: 1 << (ias - 20). */
  l1Ptes: number;
  mtk: boolean;
  /** 2^ias and 2^oas: range checks on every call. */
  iovaLimit: number;
  paLimit: number;
  splitLock: SpinLock;
}

/** An L1 (16 KiB) or L2 (1 KiB, kmem_cache aligned to its size) table, cleaned for a non-coherent walker. */
function allocV7sTable(d: V7sData, port: KernelPort, lvl: number): number | null {
  const size = lvl === 1 ? d.l1Ptes * 4 : 256 * 4;
  const pa = d.alloc.allocTable(size, size, { fmt: 'arm-v7s', level: lvl });
  if (pa === null) return null;
  // Table pointers and TTBR hold 32 bits: Linux allocates from ZONE_DMA32 and refuses the rest.
  if (pa + size > TWO32) {
    d.warn(`arm-v7s: page table at ${hex(pa)} does not fit in a PTE`);
    d.alloc.freeTable(pa);
    return null;
  }
  if (!d.cfg.coherentWalk) port.cleanDcache(pa, size);
  return pa;
}

class ArmV7sPgtable implements IoPgtableOps {
  readonly fmt = 'arm-v7s' as const;

  constructor(
    private readonly d: V7sData,
    private readonly port: KernelPort,
  ) {}

  get cfg(): IoPgtableCfg {
    return this.d.cfg;
  }

  get pgd(): number {
    return this.d.pgd;
  }

  bind(port: KernelPort): IoPgtableOps {
    return new ArmV7sPgtable(this.d, port);
  }

  snapshot(): unknown {
    return { pgd: this.d.pgd, lock: this.d.splitLock.snapshot(), alloc: this.d.alloc.snapshot?.() };
  }

  restore(s: unknown): void {
    const x = s as { pgd: number; lock: string | null; alloc: unknown };
    this.d.pgd = x.pgd;
    this.d.splitLock.restore(x.lock);
    this.d.alloc.restore?.(x.alloc);
  }

  private idx(iova: number, lvl: number): number {
    return lvl === 1 ? Math.floor(iova / L1_BLOCK) & (this.d.l1Ptes - 1) : Math.floor(iova / L2_BLOCK) & 0xff;
  }

  /** The non-coherent walker only sees RAM: written entries are cleaned (dma_sync_single_for_device). */
  private sync(ptep: number, n: number): void {
    if (!this.d.cfg.coherentWalk) this.port.cleanDcache(ptep, n * 4);
  }

  private allocTable(lvl: number): number | null {
    return allocV7sTable(this.d, this.port, lvl);
  }

  private *setPte(ptep: number, pte: ArmV7sIopte, n: number): Op<void> {
    for (let i = 0; i < n; i++) yield* this.port.write32(ptep + i * 4, pte);
    this.sync(ptep, n);
  }


  /** Returns the entry found: `curr` means ours went in (a plain store always "wins"). */
  private *installTable(table: number, ptep: number, curr: ArmV7sIopte): Op<ArmV7sIopte> {
    let pte = (table | ARM_V7S_PTE_TYPE_TABLE) >>> 0;
    if (this.d.cfg.quirks & IO_PGTABLE_QUIRK_ARM_NS) pte = (pte | ARM_V7S_ATTR_NS_TABLE) >>> 0;
    let old = curr;
    if (this.d.variant.tableInstall === 'cmpxchg') old = yield* this.port.cmpxchg32(ptep, curr, pte);
    else yield* this.port.write32(ptep, pte);
    this.sync(ptep, 1);
    return old;
  }

  private *initPte(iova: number, paddr: number, prot: number, lvl: number, num: number, ptep: number): Op<number> {
    for (let i = 0; i < num; i++) {
      const cur = yield* this.port.read32(ptep + i * 4);
      if (armV7sPteIsTable(cur, lvl)) {
        // A block over a table: the table must be empty; unmap and free it first (seed 002, case B).
        const sz = armV7sBlockSize(lvl);
        const tblp = ptep - this.idx(iova, lvl) * 4;
        if ((yield* this.unmapLvl(null, iova + i * sz, sz, lvl, tblp)) !== sz) {
          this.d.warn(`arm-v7s: could not replace the table at ${hex(iova + i * sz)} with a block`);
          return -EINVAL;
        }
      } else if (cur) {
        this.d.warn(`arm-v7s: map over an existing mapping at ${hex(iova)}`);
        return -EEXIST;
      }
    }
    let pte = armV7sProtToPte(prot, lvl, this.d.cfg.quirks);
    if (num > 1) pte = pteToCont(pte, lvl);
    pte = (pte | paddrToIopte(paddr, lvl, this.d.mtk)) >>> 0;
    for (let i = 0; i < num; i++) yield* this.port.write32(ptep + i * 4, pte);
    this.sync(ptep, num);
    return 0;
  }

  /** arm_v7s_map_pages' loop: its result starts as -EINVAL, so a pgcount of 0 returns that. */
  private *map(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number): Op<MapResult> {
    let mapped = 0;
    let ret = -EINVAL;
    for (let n = 0; n < pgcount; n++, iova += pgsize, paddr += pgsize) {
      ret = yield* this.mapOne(iova, paddr, pgsize, prot);
      if (ret) return { ret, mapped };
      mapped += pgsize;
    }
    return { ret, mapped };
  }

  private *mapOne(iova: number, paddr: number, size: number, prot: number): Op<number> {
    let table = this.d.pgd;
    for (let lvl = 1; ; lvl++) {
      const num = Math.floor(size / armV7sBlockSize(lvl));
      const ptep = table + this.idx(iova, lvl) * 4;
      if (num) return yield* this.initPte(iova, paddr, prot, lvl, num, ptep);
      if (lvl === 2) {
        this.d.warn(`arm-v7s: size ${hex(size)} below the smallest page`);
        return -EINVAL;
      }
      let pte = yield* this.port.read32(ptep);
      if (!pte) {
        const cptep = this.allocTable(2);
        if (cptep === null) return -ENOMEM;
        const old = yield* this.installTable(cptep, ptep, 0);
        if (!old) {
          table = cptep;
          continue;
        }
        // Lost the race: our table was never visible to anyone, so it can go at once.
        this.d.alloc.freeTable(cptep);
        pte = old;
      } else {
        // No easy way of knowing whether the winner's entry reached RAM yet.
        this.sync(ptep, 1);
      }
      if (!armV7sPteIsTable(pte, 1)) {
        this.d.warn(`arm-v7s: map over an existing mapping at ${hex(iova)}`);
        return -EEXIST;
      }
      table = armV7sIopteToPaddr(pte, 1, this.d.cfg.quirks);
    }
  }

  /**
   * Rewrite a 16-entry group as individual entries; returns the (now single) entry at ptep. Upstream
   * ('split-upstream') returns the group's first entry instead, which makes a page unmap inside a
   * supersection's second..16th MiB fail its cmpxchg in split_blk_unmap and return 0 after the split.
   */
  private *splitCont(iova: number, idx: number, lvl: number, ptep: number): Op<ArmV7sIopte> {
    const cur = yield* this.port.read32(ptep);
    // Another CPU split it while we waited for the lock.
    if (!armV7sPteIsCont(cur, lvl)) return cur;
    const off = idx & (ARM_V7S_CONT_PAGES - 1);
    const first = ptep - off * 4;
    const base = contToPte(cur, lvl);
    const size = armV7sBlockSize(lvl);
    // Not atomic: 16 stores a racing CPU can see half done (P3).
    for (let i = 0; i < ARM_V7S_CONT_PAGES; i++) yield* this.port.write32(first + i * 4, base + i * size);
    this.sync(first, ARM_V7S_CONT_PAGES);
    if (this.d.cfg.tlb) yield* this.d.cfg.tlb.tlbFlushWalk(iova, size * ARM_V7S_CONT_PAGES, size * ARM_V7S_CONT_PAGES);
    return this.d.variant.partialUnmap === 'split-upstream' ? base : (base + off * size) >>> 0;
  }

  /**
   * Unmap part of a section: a new L2 table maps the rest of it, installed over the section. Upstream
   * ('split-upstream') builds these entries from the section's attributes alone, adding only the
   * offset into the section: the output address (and the MediaTek PA bits) is lost. 'split' keeps
   * the section's PA, so the rest of the mapping survives as the API promises.
   */
  private *splitBlkUnmap(gather: IommuIotlbGather | null, iova: number, size: number, blkPte: ArmV7sIopte, ptep: number): Op<number> {
    const quirks = this.d.cfg.quirks;
    const num = Math.floor(size / L2_BLOCK);
    const upstream = this.d.variant.partialUnmap === 'split-upstream';
    if (!num) {
      // Upstream steps its fill loop by num_entries, 0 here: the CPU spins in it for good.
      if (upstream) {
        const msg = `arm-v7s: arm_v7s_split_blk_unmap never terminates: unmap of ${hex(size)} bytes at ${hex(iova)} inside a section (below 4 KiB, the loop steps by 0)`;
        this.d.warn(msg);
        throw new IoPgtableHang(msg);
      }
      this.d.warn(`arm-v7s: unmap of ${hex(size)} bytes at ${hex(iova)} inside a section is below the smallest page`);
      return 0;
    }
    const tablep = this.allocTable(2);
    if (tablep === null) return 0;
    const unmapIdx = this.idx(iova, 2);
    let attrs = armV7sProtToPte(armV7sPteToProt(blkPte, 1), 2, quirks);
    if (num > 1) attrs = pteToCont(attrs, 2);
    let pa = upstream ? 0 : armV7sIopteToPaddr(blkPte, 1, quirks);
    for (let i = 0; i < 256; i += num, pa += size) {
      if (i === unmapIdx) continue;
      const pte = upstream ? attrs + pa : attrs | paddrToIopte(pa, 2, this.d.mtk);
      yield* this.setPte(tablep + i * 4, pte >>> 0, num);
    }
    const old = yield* this.installTable(tablep, ptep, blkPte);
    if (old !== blkPte) {
      this.d.alloc.freeTable(tablep);
      if (!armV7sPteIsTable(old, 1)) return 0;
      // Someone else split it first: unmap from their table.
      return yield* this.unmapLvl(gather, iova, size, 2, armV7sIopteToPaddr(old, 1, quirks));
    }
    if (this.d.cfg.tlb?.tlbAddPage) yield* this.d.cfg.tlb.tlbAddPage(gather, iova, size);
    return size;
  }

  private *unmapLvl(gather: IommuIotlbGather | null, iova: number, size: number, lvl: number, table: number): Op<number> {
    for (; ; lvl++) {
      const idx = this.idx(iova, lvl);
      const ptep = table + idx * 4;
      const num = Math.floor(size / armV7sBlockSize(lvl));
      let pte0 = yield* this.port.read32(ptep);
      let ptes: ArmV7sIopte[] | null = null;
      if (num > 1) {
        ptes = [pte0];
        for (let i = 1; i < num && armV7sPteIsValid(pte0); i++) ptes.push(yield* this.port.read32(ptep + i * 4));
      }
      if (!armV7sPteIsValid(pte0) || (ptes && !ptes.every(armV7sPteIsValid))) {
        this.d.warn(`arm-v7s: unmap of unmapped ${hex(iova)} (size ${hex(size)})`);
        return 0;
      }

      if (num <= 1 && armV7sPteIsCont(pte0, lvl)) {
        if (this.d.variant.partialUnmap === 'refuse') {
          this.d.warn(`arm-v7s: partial unmap of large IOPTE at ${hex(iova)} not allowed`);
          return 0;
        }
        const lock = this.d.variant.splitLock ? this.d.splitLock : null;
        if (lock) yield* lock.lock();
        pte0 = yield* this.splitCont(iova, idx, lvl, ptep);
        if (lock) lock.unlock();
      }

      if (num) {
        const blk = armV7sBlockSize(lvl);
        for (let i = 0; i < num; i++) yield* this.port.write32(ptep + i * 4, 0);
        this.sync(ptep, num);
        for (let i = 0; i < num; i++, iova += blk) {
          const pte = ptes ? ptes[i]! : pte0;
          if (armV7sPteIsTable(pte, lvl)) {
            // The table goes away while the domain is live (seed 002, case A): invalidate walks first.
            if (this.d.cfg.tlb) yield* this.d.cfg.tlb.tlbFlushWalk(iova, blk, armV7sBlockSize(lvl + 1));
            this.d.alloc.freeTable(armV7sIopteToPaddr(pte, lvl, this.d.cfg.quirks));
          } else if (!gather?.queued) {
            if (this.d.cfg.tlb?.tlbAddPage) yield* this.d.cfg.tlb.tlbAddPage(gather, iova, blk);
          }
        }
        return size;
      }
      if (lvl === 2) {
        this.d.warn(`arm-v7s: ran out of page table unmapping ${hex(iova)}`);
        return 0;
      }
      if (!armV7sPteIsTable(pte0, 1)) {
        if (this.d.variant.partialUnmap === 'refuse') {
          this.d.warn(`arm-v7s: partial unmap of section at ${hex(iova)} not allowed`);
          return 0;
        }
        return yield* this.splitBlkUnmap(gather, iova, size, pte0, ptep);
      }
      table = armV7sIopteToPaddr(pte0, lvl, this.d.cfg.quirks);
    }
  }

  /**
   * arm_v7s_map_pages. As upstream, the page size is not checked against the bitmap: the walk takes
   * size / block size entries at the first level where that is not 0 (a sub-4 KiB size allocates an
   * L2 table, then WARNs with -EINVAL at level 2).
   */
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, _gfp: Gfp): Op<MapResult> {
    const w = this.d.warn;
    if (iova >= this.d.iovaLimit || paddr >= this.d.paLimit) return warnOp(w, `arm-v7s: map of ${hex(iova)} -> ${hex(paddr)} out of range`, { ret: -ERANGE, mapped: 0 });
    // "If no access, then nothing to do" until v6.12 made it an error.
    if (!(prot & PROT_RW)) return warnOp(w, null, { ret: this.d.variant.partialUnmap === 'split-upstream' ? 0 : -EINVAL, mapped: 0 });
    return this.map(iova, paddr, pgsize, pgcount, prot);
  }

  /** arm_v7s_unmap_pages: only the IOVA range is checked, as upstream. */
  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): Op<number> {
    const w = this.d.warn;
    if (iova >= this.d.iovaLimit) return warnOp(w, `arm-v7s: unmap of ${hex(iova)} out of range`, 0);
    // One page (the DMA API's common case) needs no loop frame: unmapLvl returns pgsize or 0.
    if (pgcount === 1) return this.unmapLvl(gather, iova, pgsize, 1, this.d.pgd);
    return this.unmapRun(iova, pgsize, pgcount, gather);
  }

  private *unmapRun(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): Op<number> {
    let unmapped = 0;
    for (let n = 0; n < pgcount; n++, iova += pgsize) {
      if (!(yield* this.unmapLvl(gather, iova, pgsize, 1, this.d.pgd))) break;
      unmapped += pgsize;
    }
    return unmapped;
  }

  *iovaToPhys(iova: number): Op<number> {
    const quirks = this.d.cfg.quirks;
    let lvl = 1;
    let pte = yield* this.port.read32(this.d.pgd + this.idx(iova, 1) * 4);
    if (armV7sPteIsTable(pte, 1)) {
      lvl = 2;
      pte = yield* this.port.read32(armV7sIopteToPaddr(pte, 1, quirks) + this.idx(iova, 2) * 4);
    }
    if (!armV7sPteIsValid(pte)) return 0;
    let size = armV7sBlockSize(lvl);
    if (armV7sPteIsCont(pte, lvl)) size *= ARM_V7S_CONT_PAGES;
    return armV7sIopteToPaddr(pte, lvl, quirks) + (iova % size);
  }

  *free(): Op<void> {
    // free_io_pgtable_ops: flush everything the context may still cache, then the format's free.
    if (this.d.cfg.tlb) yield* this.d.cfg.tlb.tlbFlushAll();
    for (let i = 0; i < this.d.l1Ptes; i++) {
      const pte = yield* this.port.read32(this.d.pgd + i * 4);
      if (armV7sPteIsTable(pte, 1)) this.d.alloc.freeTable(armV7sIopteToPaddr(pte, 1, this.d.cfg.quirks));
    }
    this.d.alloc.freeTable(this.d.pgd);
  }
}

/**
 * arm_v7s_alloc_pgtable: checks the config, narrows the page sizes, fills in cfg.armV7sCfg and
 * allocates the L1 table. null when the config is not one v7s can serve (as Linux).
 */
export function armV7sAllocPgtable(cfg: IoPgtableCfg, env: IoPgtableEnv): IoPgtableOps | null {
  const mtk = (cfg.quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) !== 0;
  if (cfg.ias > (mtk ? 34 : 32) || cfg.ias < 21 || cfg.oas > (mtk ? 35 : 32)) return null;
  if (cfg.quirks & ~(IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT)) return null;
  // The MediaTek PA bits sit where AP/XN would be.
  if (mtk && !(cfg.quirks & IO_PGTABLE_QUIRK_NO_PERMS)) return null;

  cfg.pgsizeBitmap &= SZ_4K | SZ_64K | SZ_1M | SZ_16M;
  const d: V7sData = {
    cfg,
    alloc: env.alloc,
    variant: resolveVariant(env.variant),
    warn: env.warn ?? (() => {}),
    pgd: 0,
    l1Ptes: 1 << (cfg.ias - 20),
    mtk,
    iovaLimit: 2 ** cfg.ias,
    paLimit: 2 ** cfg.oas,
    splitLock: new SpinLock('arm-v7s split_lock'),
  };
  const ops = new ArmV7sPgtable(d, env.port);
  const pgd = allocV7sTable(d, env.port, 1);
  if (pgd === null) return null;
  d.pgd = pgd;

  let ttbr = pgd | ARM_V7S_TTBR_S;
  if (mtk) ttbr = pgd;
  else if (cfg.coherentWalk) ttbr |= ARM_V7S_TTBR_NOS | ttbrIrgn(ARM_V7S_RGN_WBWA) | ttbrOrgn(ARM_V7S_RGN_WBWA);
  cfg.armV7sCfg = {
    ttbr: ttbr >>> 0,
    tcr: 0,
    prrr:
      (prrrTr(1, PRRR_TYPE_DEVICE) |
        prrrTr(4, PRRR_TYPE_NORMAL) |
        prrrTr(7, PRRR_TYPE_NORMAL) |
        PRRR_DS0 |
        PRRR_DS1 |
        PRRR_NS1 |
        prrrNos(7)) >>>
      0,
    nmrr: (nmrrIr(7, ARM_V7S_RGN_WBWA) | nmrrOr(7, ARM_V7S_RGN_WBWA)) >>> 0,
  };
  return ops;
}
