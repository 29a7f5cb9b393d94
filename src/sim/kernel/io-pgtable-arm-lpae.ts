/**
 * ARM LPAE (long-descriptor, VMSAv8-64 stage 1) io-pgtable, after drivers/iommu/io-pgtable-arm.c
 * (hardware-facts §4). 8-byte descriptors, 4/16/64 KiB granule, 2 to 4 levels by IAS, blocks at the
 * levels above the last. Tables are installed with cmpxchg64; the loser frees its own table. Tables
 * are freed while the domain is live in three places only (seed 002): the race loser, a block
 * mapped over an (assumed empty) table, and a block-sized unmap that finds a table.
 */
import type { Op } from '../core/coop';
import { EEXIST, EINVAL, ENOMEM, ERANGE, hex } from './errno';
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_NS,
  SZ_16K,
  SZ_1G,
  SZ_2M,
  SZ_32M,
  SZ_4K,
  SZ_512M,
  SZ_64K,
  isSupportedPgsize,
  resolveVariant,
  warnOp,
  type ArmLpaeTcr,
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

export type ArmLpaeIopte = bigint;

export const ARM_LPAE_MAX_LEVELS = 4;
const ARM_LPAE_MAX_ADDR_BITS = 48;
const LAST_LVL = ARM_LPAE_MAX_LEVELS - 1;
const PROT_RW = 3;

/* Descriptor bits (§4.2). */
export const ARM_LPAE_PTE_TYPE_MASK = 3n;
export const ARM_LPAE_PTE_TYPE_BLOCK = 1n;
export const ARM_LPAE_PTE_TYPE_TABLE = 3n;
export const ARM_LPAE_PTE_TYPE_PAGE = 3n;
export const ARM_LPAE_PTE_ADDR_MASK = 0x0000fffffffff000n;
export const ARM_LPAE_PTE_NSTABLE = 1n << 63n;
export const ARM_LPAE_PTE_XN = 3n << 53n;
export const ARM_LPAE_PTE_AF = 1n << 10n;
export const ARM_LPAE_PTE_SH_OS = 2n << 8n;
export const ARM_LPAE_PTE_SH_IS = 3n << 8n;
export const ARM_LPAE_PTE_NS = 1n << 5n;
/** Software bit: this table entry has already been cleaned to RAM. */
export const ARM_LPAE_PTE_SW_SYNC = 1n << 55n;
export const ARM_LPAE_PTE_AP_UNPRIV = 1n << 6n;
export const ARM_LPAE_PTE_AP_RDONLY = 2n << 6n;
export const ARM_LPAE_PTE_NG = 1n << 11n;
export const ARM_LPAE_PTE_ATTRINDX_SHIFT = 2n;
const ARM_LPAE_PTE_ATTR_MASK = (0x3ffn << 2n) | (6n << 52n);

/* MAIR indices and attributes (stage 1). */
export const ARM_LPAE_MAIR_ATTR_IDX_NC = 0;
export const ARM_LPAE_MAIR_ATTR_IDX_CACHE = 1;
export const ARM_LPAE_MAIR_ATTR_IDX_DEV = 2;
export const ARM_LPAE_MAIR_ATTR_IDX_INC_OCACHE = 3;
const MAIR_ATTR_NC = 0x44;
const MAIR_ATTR_WBRWA = 0xff;
const MAIR_ATTR_DEVICE = 0x04;
const MAIR_ATTR_INC_OWBRWA = 0xf4;

/* TCR encodings. */
const TCR_TG0_4K = 0;
const TCR_TG0_64K = 1;
const TCR_TG0_16K = 2;
const TCR_SH_OS = 2;
const TCR_SH_IS = 3;
const TCR_RGN_NC = 0;
const TCR_RGN_WBWA = 1;
const TCR_IPS: Record<number, number> = { 32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5 };

/*
 * Descriptors below 2^53 (all but those with XN, NSTABLE or the software bit) are decoded through
 * a double, exactly: a BigInt operation allocates, and map/unmap decode a descriptor per level.
 */
const EXACT = 0x20000000000000n;
const TWO32 = 0x100000000;

/** The descriptor's type field (bits 1:0). */
export function armLpaeIopteType(pte: ArmLpaeIopte): number {
  return pte < EXACT ? Number(pte) & 3 : Number(pte & ARM_LPAE_PTE_TYPE_MASK);
}

/** The type field's values as numbers, for armLpaeIopteType. */
const TYPE_BLOCK = 1;
const TYPE_TABLE = 3;
const TYPE_PAGE = 3;

/** Level 3 holds pages (type 3); above it type 1 is a block and type 3 a table. */
export function armLpaeIopteLeaf(pte: ArmLpaeIopte, lvl: number): boolean {
  const type = armLpaeIopteType(pte);
  return lvl === LAST_LVL ? type === TYPE_PAGE : type === TYPE_BLOCK;
}

/** Bits 47:12 of a non-negative integer below 2^53: the address field of a descriptor. */
function addrField(n: number): number {
  const lo = n >>> 0;
  return (((n - lo) / TWO32) & 0xffff) * TWO32 + ((lo & ~0xfff) >>> 0);
}

/** Output address, bits 47:12. */
export function armLpaeIopteToPaddr(pte: ArmLpaeIopte): number {
  return pte < EXACT ? addrField(Number(pte)) : Number(pte & ARM_LPAE_PTE_ADDR_MASK);
}

/**
 * paddr_to_iopte | attributes. `exact` is the attributes as a double, or -1 when they hold bits at
 * 53 and up; attributes never overlap the address field, so adding is or-ing.
 */
function armLpaeMkPte(attrs: ArmLpaeIopte, exact: number, paddr: number): ArmLpaeIopte {
  return exact >= 0 ? BigInt(exact + addrField(paddr)) : attrs | (BigInt(paddr) & ARM_LPAE_PTE_ADDR_MASK);
}

/** Attributes with their double form, for armLpaeMkPte. */
interface LeafAttrs {
  attrs: ArmLpaeIopte;
  exact: number;
}

function leafAttrs(attrs: ArmLpaeIopte): LeafAttrs {
  return { attrs, exact: attrs < EXACT ? Number(attrs) : -1 };
}

/** Geometry of one LPAE configuration (§4.1). */
export interface ArmLpaeGeometry {
  granule: number;
  pgShift: number;
  bitsPerLevel: number;
  levels: number;
  startLevel: number;
  pgdBits: number;
  pgdSize: number;
}

export function armLpaeGeometry(granule: number, ias: number): ArmLpaeGeometry {
  const pgShift = Math.log2(granule);
  const bitsPerLevel = pgShift - 3;
  const vaBits = ias - pgShift;
  const levels = Math.ceil(vaBits / bitsPerLevel);
  const pgdBits = vaBits - bitsPerLevel * (levels - 1);
  return { granule, pgShift, bitsPerLevel, levels, startLevel: ARM_LPAE_MAX_LEVELS - levels, pgdBits, pgdSize: Math.max(8 << pgdBits, 64) };
}

export const armLpaeLvlShift = (g: ArmLpaeGeometry, lvl: number): number => (ARM_LPAE_MAX_LEVELS - lvl) * g.bitsPerLevel + 3;

/** IOMMU_* prot to stage-1 attributes (no type, no address). */
export function armLpaeProtToPte(prot: number, quirks: number): ArmLpaeIopte {
  let pte = ARM_LPAE_PTE_NG;
  if (!(prot & IOMMU_WRITE) && prot & IOMMU_READ) pte |= ARM_LPAE_PTE_AP_RDONLY;
  if (!(prot & IOMMU_PRIV)) pte |= ARM_LPAE_PTE_AP_UNPRIV;
  if (prot & IOMMU_MMIO) pte |= BigInt(ARM_LPAE_MAIR_ATTR_IDX_DEV) << ARM_LPAE_PTE_ATTRINDX_SHIFT;
  else if (prot & IOMMU_CACHE) pte |= BigInt(ARM_LPAE_MAIR_ATTR_IDX_CACHE) << ARM_LPAE_PTE_ATTRINDX_SHIFT;
  pte |= prot & IOMMU_CACHE ? ARM_LPAE_PTE_SH_IS : ARM_LPAE_PTE_SH_OS;
  if (prot & IOMMU_NOEXEC) pte |= ARM_LPAE_PTE_XN;
  if (quirks & IO_PGTABLE_QUIRK_ARM_NS) pte |= ARM_LPAE_PTE_NS;
  return pte | ARM_LPAE_PTE_AF;
}

interface LpaeData {
  cfg: IoPgtableCfg;
  alloc: PgtableAllocator;
  variant: IoPgtableVariant;
  warn: (msg: string) => void;
  g: ArmLpaeGeometry;
  pgd: number;
  /** Per level: block size, entries in a table of that level, index mask. */
  blockSize: number[];
  ptesPerTable: number[];
  idxMask: number[];
  /** 2^ias and 2^oas: range checks on every call. */
  iovaLimit: number;
  paLimit: number;
  /** Memoised prot → leaf attributes per level (type bits included): descriptor building is the hot path. */
  protCache: Map<number, LeafAttrs[]>;
}

function allocLpaeTable(d: LpaeData, port: KernelPort, size: number, lvl: number): number | null {
  const pa = d.alloc.allocTable(size, size, { fmt: 'arm-64-lpae-s1', level: lvl });
  if (pa !== null && !d.cfg.coherentWalk) port.cleanDcache(pa, size);
  return pa;
}

class ArmLpaePgtable implements IoPgtableOps {
  readonly fmt = 'arm-64-lpae-s1' as const;

  constructor(
    private readonly d: LpaeData,
    private readonly port: KernelPort,
  ) {}

  get cfg(): IoPgtableCfg {
    return this.d.cfg;
  }

  get pgd(): number {
    return this.d.pgd;
  }

  bind(port: KernelPort): IoPgtableOps {
    return new ArmLpaePgtable(this.d, port);
  }

  snapshot(): unknown {
    return { pgd: this.d.pgd, alloc: this.d.alloc.snapshot?.() };
  }

  restore(s: unknown): void {
    const x = s as { pgd: number; alloc: unknown };
    this.d.pgd = x.pgd;
    this.d.alloc.restore?.(x.alloc);
  }

  private idx(iova: number, lvl: number): number {
    return Math.floor(iova / this.d.blockSize[lvl]!) & this.d.idxMask[lvl]!;
  }

  private sync(ptep: number, n: number): void {
    if (!this.d.cfg.coherentWalk) this.port.cleanDcache(ptep, n * 8);
  }

  private tableSize(lvl: number): number {
    return lvl === this.d.g.startLevel ? this.d.g.pgdSize : this.d.g.granule;
  }


  /** __arm_lpae_init_pte: write `num` leaves from paddr with the level's leaf attributes. */
  private *writeLeaves(paddr: number, leaf: LeafAttrs, lvl: number, num: number, ptep: number): Op<void> {
    const sz = this.d.blockSize[lvl]!;
    for (let i = 0; i < num; i++) yield* this.port.write64(ptep + i * 8, armLpaeMkPte(leaf.attrs, leaf.exact, paddr + i * sz));
    this.sync(ptep, num);
  }

  private *initPte(iova: number, paddr: number, leaf: LeafAttrs, lvl: number, num: number, ptep: number): Op<number> {
    const sz = this.d.blockSize[lvl]!;
    for (let i = 0; i < num; i++) {
      const cur = yield* this.port.read64(ptep + i * 8);
      if (cur === 0n) continue;
      if (armLpaeIopteLeaf(cur, lvl)) {
        this.d.warn(`arm-lpae: map over an existing mapping at ${hex(iova + i * sz)}`);
        return -EEXIST;
      }
      if (armLpaeIopteType(cur) === TYPE_TABLE) {
        // A block over a table, assumed empty: unmap it (clear, flush walks, free) first (case B).
        const tblp = ptep - this.idx(iova, lvl) * 8;
        if ((yield* this.unmapLvl(null, iova + i * sz, sz, 1, lvl, tblp)) !== sz) {
          this.d.warn(`arm-lpae: could not replace the table at ${hex(iova + i * sz)} with a block`);
          return -EINVAL;
        }
      }
    }
    // Inline rather than writeLeaves: one generator level less on the hottest path.
    for (let i = 0; i < num; i++) yield* this.port.write64(ptep + i * 8, armLpaeMkPte(leaf.attrs, leaf.exact, paddr + i * sz));
    this.sync(ptep, num);
    return 0;
  }

  /** Returns the entry found: `curr` means ours went in (a plain store always "wins"). */
  private *installTable(table: number, ptep: number, curr: ArmLpaeIopte): Op<ArmLpaeIopte> {
    let pte = BigInt(table) | ARM_LPAE_PTE_TYPE_TABLE;
    if (this.d.cfg.quirks & IO_PGTABLE_QUIRK_ARM_NS) pte |= ARM_LPAE_PTE_NSTABLE;
    let old = curr;
    if (this.d.variant.tableInstall === 'cmpxchg') old = yield* this.port.cmpxchg64(ptep, curr, pte);
    else yield* this.port.write64(ptep, pte);
    if (this.d.cfg.coherentWalk || old & ARM_LPAE_PTE_SW_SYNC) return old;
    // Push the entry to RAM even if it is not ours, then mark ours so nobody cleans it again.
    this.sync(ptep, 1);
    if (old === curr) yield* this.port.write64(ptep, pte | ARM_LPAE_PTE_SW_SYNC);
    return old;
  }

  private *map(iova: number, paddr: number, size: number, pgcount: number, prot: LeafAttrs[]): Op<MapResult> {
    let table = this.d.pgd;
    for (let lvl = this.d.g.startLevel; ; lvl++) {
      const idx = this.idx(iova, lvl);
      const ptep = table + idx * 8;
      if (size === this.d.blockSize[lvl]) {
        const num = Math.min(pgcount, this.d.ptesPerTable[lvl]! - idx);
        const ret = yield* this.initPte(iova, paddr, prot[lvl]!, lvl, num, ptep);
        return { ret, mapped: ret ? 0 : num * size };
      }
      if (lvl >= LAST_LVL) {
        this.d.warn(`arm-lpae: size ${hex(size)} is no block size`);
        return { ret: -EINVAL, mapped: 0 };
      }
      let pte = yield* this.port.read64(ptep);
      if (pte === 0n) {
        const cptep = allocLpaeTable(this.d, this.port, this.d.g.granule, lvl + 1);
        if (cptep === null) return { ret: -ENOMEM, mapped: 0 };
        pte = yield* this.installTable(cptep, ptep, 0n);
        if (pte === 0n) {
          table = cptep;
          continue;
        }
        // Lost the race (case C): our table was never visible, free it at once.
        this.d.alloc.freeTable(cptep);
      } else if (!this.d.cfg.coherentWalk && !(pte & ARM_LPAE_PTE_SW_SYNC)) {
        this.sync(ptep, 1);
      }
      if (armLpaeIopteLeaf(pte, lvl)) {
        this.d.warn(`arm-lpae: map over an existing mapping at ${hex(iova)}`);
        return { ret: -EEXIST, mapped: 0 };
      }
      table = armLpaeIopteToPaddr(pte);
    }
  }

  /** __arm_lpae_free_pgtable: reads the table (another CPU may still be writing it) and frees the subtree. */
  private *freePgtable(lvl: number, table: number): Op<void> {
    const size = this.tableSize(lvl);
    if (lvl < LAST_LVL) {
      for (let off = 0; off < size; off += 8) {
        const pte = yield* this.port.read64(table + off);
        if (pte === 0n || armLpaeIopteLeaf(pte, lvl)) continue;
        yield* this.freePgtable(lvl + 1, armLpaeIopteToPaddr(pte));
      }
    }
    this.d.alloc.freeTable(table);
  }

  /** Unmap part of a block: a next-level table maps the rest, installed over the block with cmpxchg. */
  private *splitBlkUnmap(gather: IommuIotlbGather | null, iova: number, size: number, blkPte: ArmLpaeIopte, lvl: number, ptep: number, pgcount: number): Op<number> {
    const tablep = allocLpaeTable(this.d, this.port, this.d.g.granule, lvl);
    if (tablep === null) return 0;
    const splitSz = this.d.blockSize[lvl]!;
    const ptes = this.d.ptesPerTable[lvl]!;
    let start = -1;
    let num = 0;
    if (size === splitSz) {
      start = this.idx(iova, lvl);
      num = Math.min(pgcount, ptes - start);
    }
    const blkPaddr = armLpaeIopteToPaddr(blkPte);
    const leaf = leafAttrs((blkPte & ARM_LPAE_PTE_ATTR_MASK) | (lvl === LAST_LVL ? ARM_LPAE_PTE_TYPE_PAGE : ARM_LPAE_PTE_TYPE_BLOCK));
    for (let i = 0; i < ptes; i++) {
      if (i >= start && i < start + num) continue;
      yield* this.writeLeaves(blkPaddr + i * splitSz, leaf, lvl, 1, tablep + i * 8);
    }
    const old = yield* this.installTable(tablep, ptep, blkPte);
    let next = tablep;
    if (old !== blkPte) {
      this.d.alloc.freeTable(tablep);
      // Someone split it first; anything but their table means the unmap was bogus.
      if (armLpaeIopteType(old) !== TYPE_TABLE) return 0;
      next = armLpaeIopteToPaddr(old);
    } else if (start >= 0) {
      const tlb = this.d.cfg.tlb;
      if (tlb?.tlbAddPage) for (let i = 0; i < num; i++) yield* tlb.tlbAddPage(gather, iova + i * size, size);
      return num * size;
    }
    return yield* this.unmapLvl(gather, iova, size, pgcount, lvl, next);
  }

  /**
   * The matching level in ~v6.10+ (with 'refuse'): tables first (each cleared, walks flushed, subtree
   * freed), then every entry cleared with one sync, then tlb_add_page for every entry, tables
   * included, and only with a gather that is not queued.
   */
  private *unmapEntries(gather: IommuIotlbGather | null, iova: number, size: number, lvl: number, ptep: number, num: number): Op<number> {
    const tlb = this.d.cfg.tlb;
    let i = 0;
    for (; i < num; i++) {
      const pte = yield* this.port.read64(ptep + i * 8);
      if (pte === 0n) {
        this.d.warn(`arm-lpae: unmap of unmapped ${hex(iova + i * size)} (size ${hex(size)})`);
        break;
      }
      if (!armLpaeIopteLeaf(pte, lvl)) {
        yield* this.port.write64(ptep + i * 8, 0n);
        this.sync(ptep + i * 8, 1);
        if (tlb) yield* tlb.tlbFlushWalk(iova + i * size, size, this.d.g.granule);
        yield* this.freePgtable(lvl + 1, armLpaeIopteToPaddr(pte));
      }
    }
    for (let j = 0; j < i; j++) yield* this.port.write64(ptep + j * 8, 0n);
    if (i) this.sync(ptep, i);
    if (gather && !gather.queued && tlb?.tlbAddPage) for (let j = 0; j < i; j++) yield* tlb.tlbAddPage(gather, iova + j * size, size);
    return i * size;
  }

  private *unmapLvl(gather: IommuIotlbGather | null, iova: number, size: number, pgcount: number, lvl: number, table: number): Op<number> {
    for (; ; lvl++) {
      const idx = this.idx(iova, lvl);
      let ptep = table + idx * 8;
      let pte = yield* this.port.read64(ptep);
      if (pte === 0n) {
        this.d.warn(`arm-lpae: unmap of unmapped ${hex(iova)} (size ${hex(size)})`);
        return 0;
      }
      if (size === this.d.blockSize[lvl]) {
        const num = Math.min(pgcount, this.d.ptesPerTable[lvl]! - idx);
        if (this.d.variant.partialUnmap === 'refuse') return yield* this.unmapEntries(gather, iova, size, lvl, ptep, num);
        let i = 0;
        for (; i < num; i++, ptep += 8) {
          // Read again: the first read only decided the level.
          pte = yield* this.port.read64(ptep);
          if (pte === 0n) {
            this.d.warn(`arm-lpae: unmap of unmapped ${hex(iova + i * size)} (size ${hex(size)})`);
            break;
          }
          yield* this.port.write64(ptep, 0n);
          this.sync(ptep, 1);
          if (!armLpaeIopteLeaf(pte, lvl)) {
            // A table under a block-sized unmap, assumed full (case A): flush walks, then free it.
            if (this.d.cfg.tlb) yield* this.d.cfg.tlb.tlbFlushWalk(iova + i * size, size, this.d.g.granule);
            yield* this.freePgtable(lvl + 1, armLpaeIopteToPaddr(pte));
          } else if (!gather?.queued) {
            if (this.d.cfg.tlb?.tlbAddPage) yield* this.d.cfg.tlb.tlbAddPage(gather, iova + i * size, size);
          }
        }
        return i * size;
      }
      if (armLpaeIopteLeaf(pte, lvl)) {
        if (this.d.variant.partialUnmap === 'refuse') {
          this.d.warn(`arm-lpae: partial unmap of large IOPTE at ${hex(iova)} not allowed`);
          return 0;
        }
        return yield* this.splitBlkUnmap(gather, iova, size, pte, lvl + 1, ptep, pgcount);
      }
      table = armLpaeIopteToPaddr(pte);
    }
  }

  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, _gfp: Gfp): Op<MapResult> {
    const cfg = this.d.cfg;
    const w = this.d.warn;
    if (!isSupportedPgsize(cfg.pgsizeBitmap, pgsize)) return warnOp(w, `arm-lpae: unsupported page size ${hex(pgsize)}`, { ret: -EINVAL, mapped: 0 });
    if (iova >= this.d.iovaLimit || paddr >= this.d.paLimit) return warnOp(w, `arm-lpae: map of ${hex(iova)} -> ${hex(paddr)} out of range`, { ret: -ERANGE, mapped: 0 });
    // "If no access, then nothing to do" until v6.12 made it an error.
    if (!(prot & PROT_RW)) return warnOp(w, null, { ret: this.d.variant.partialUnmap === 'split-upstream' ? 0 : -EINVAL, mapped: 0 });
    let attrs = this.d.protCache.get(prot);
    if (attrs === undefined) {
      const a = armLpaeProtToPte(prot, cfg.quirks);
      attrs = Array.from({ length: ARM_LPAE_MAX_LEVELS }, (_, lvl) => leafAttrs(a | (lvl === LAST_LVL ? ARM_LPAE_PTE_TYPE_PAGE : ARM_LPAE_PTE_TYPE_BLOCK)));
      this.d.protCache.set(prot, attrs);
    }
    return this.map(iova, paddr, pgsize, pgcount, attrs);
  }

  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): Op<number> {
    const w = this.d.warn;
    if (!isSupportedPgsize(this.d.cfg.pgsizeBitmap, pgsize) || pgcount < 1) return warnOp(w, `arm-lpae: bad unmap of ${pgcount} x ${hex(pgsize)}`, 0);
    if (iova >= this.d.iovaLimit) return warnOp(w, `arm-lpae: unmap of ${hex(iova)} out of range`, 0);
    return this.unmapLvl(gather, iova, pgsize, pgcount, this.d.g.startLevel, this.d.pgd);
  }

  *iovaToPhys(iova: number): Op<number> {
    let table = this.d.pgd;
    for (let lvl = this.d.g.startLevel; lvl < ARM_LPAE_MAX_LEVELS; lvl++) {
      const pte = yield* this.port.read64(table + this.idx(iova, lvl) * 8);
      if (pte === 0n) return 0;
      if (armLpaeIopteLeaf(pte, lvl)) return armLpaeIopteToPaddr(pte) + (iova % this.d.blockSize[lvl]!);
      table = armLpaeIopteToPaddr(pte);
    }
    return 0;
  }

  *free(): Op<void> {
    // free_io_pgtable_ops: flush everything the context may still cache, then the format's free.
    if (this.d.cfg.tlb) yield* this.d.cfg.tlb.tlbFlushAll();
    yield* this.freePgtable(this.d.g.startLevel, this.d.pgd);
  }
}

/** arm_lpae_restrict_pgsizes: the granule (4K preferred, as PAGE_SIZE) and the page sizes that go with it. */
function restrictPgsizes(cfg: IoPgtableCfg): number {
  const bm = cfg.pgsizeBitmap;
  let granule = 0;
  if (bm & SZ_4K) granule = SZ_4K;
  else if (bm & SZ_16K) granule = SZ_16K;
  else if (bm & SZ_64K) granule = SZ_64K;
  const sizes: Record<number, number> = { [SZ_4K]: SZ_4K | SZ_2M | SZ_1G, [SZ_16K]: SZ_16K | SZ_32M, [SZ_64K]: SZ_64K | SZ_512M };
  cfg.pgsizeBitmap &= sizes[granule] ?? 0;
  return granule;
}

function tcrValue(t: Omit<ArmLpaeTcr, 'value'>): number {
  const lo = (t.t0sz | (t.irgn << 8) | (t.orgn << 10) | (t.sh << 12) | (t.tg << 14) | (t.epd1 ? 1 << 23 : 0)) >>> 0;
  return t.ips * 2 ** 32 + lo;
}

/**
 * arm_64_lpae_alloc_pgtable_s1: checks the config, picks the granule, fills in cfg.armLpaeS1Cfg
 * (TTBR, TCR, MAIR) and allocates the pgd. null when the config cannot be served (as Linux).
 */
export function armLpaeS1AllocPgtable(cfg: IoPgtableCfg, env: IoPgtableEnv): IoPgtableOps | null {
  if (cfg.quirks & ~IO_PGTABLE_QUIRK_ARM_NS) return null;
  if (cfg.ias > ARM_LPAE_MAX_ADDR_BITS || cfg.oas > ARM_LPAE_MAX_ADDR_BITS) return null;
  const granule = restrictPgsizes(cfg);
  if (!granule) return null;
  const ips = TCR_IPS[cfg.oas];
  if (ips === undefined) return null;
  const g = armLpaeGeometry(granule, cfg.ias);
  if (g.levels < 1 || g.levels > ARM_LPAE_MAX_LEVELS) return null;

  const blockSize: number[] = [];
  const ptesPerTable: number[] = [];
  const idxMask: number[] = [];
  for (let lvl = 0; lvl < ARM_LPAE_MAX_LEVELS; lvl++) {
    const bits = lvl === g.startLevel ? g.pgdBits : g.bitsPerLevel;
    blockSize.push(2 ** armLpaeLvlShift(g, lvl));
    ptesPerTable.push(2 ** bits);
    idxMask.push(2 ** bits - 1);
  }
  const d: LpaeData = {
    cfg,
    alloc: env.alloc,
    variant: resolveVariant(env.variant),
    warn: env.warn ?? (() => {}),
    g,
    pgd: 0,
    blockSize,
    ptesPerTable,
    idxMask,
    iovaLimit: 2 ** cfg.ias,
    paLimit: 2 ** cfg.oas,
    protCache: new Map(),
  };
  const pgd = allocLpaeTable(d, env.port, g.pgdSize, g.startLevel);
  if (pgd === null) return null;
  d.pgd = pgd;

  const coherent = cfg.coherentWalk;
  const tcr = {
    t0sz: 64 - cfg.ias,
    irgn: coherent ? TCR_RGN_WBWA : TCR_RGN_NC,
    orgn: coherent ? TCR_RGN_WBWA : TCR_RGN_NC,
    sh: coherent ? TCR_SH_IS : TCR_SH_OS,
    tg: granule === SZ_4K ? TCR_TG0_4K : granule === SZ_16K ? TCR_TG0_16K : TCR_TG0_64K,
    ips,
    epd1: true,
  };
  // Upstream ORs int shifts and assigns the int to a u64: 0xf4 << 24 is negative, so the value
  // sign-extends and MAIR1 (Attr4..7) is programmed as 0xffffffff. JS shifts are int32 too.
  const mair =
    (MAIR_ATTR_NC << (8 * ARM_LPAE_MAIR_ATTR_IDX_NC)) |
    (MAIR_ATTR_WBRWA << (8 * ARM_LPAE_MAIR_ATTR_IDX_CACHE)) |
    (MAIR_ATTR_DEVICE << (8 * ARM_LPAE_MAIR_ATTR_IDX_DEV)) |
    (MAIR_ATTR_INC_OWBRWA << (8 * ARM_LPAE_MAIR_ATTR_IDX_INC_OCACHE));
  cfg.armLpaeS1Cfg = { ttbr: pgd, tcr: { ...tcr, value: tcrValue(tcr) }, mair: BigInt.asUintN(64, BigInt(mair)) };
  return new ArmLpaePgtable(d, env.port);
}
