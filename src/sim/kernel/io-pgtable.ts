/**
 * io-pgtable: the page-table formats IOMMU drivers share, after Linux's drivers/iommu/io-pgtable*.c.
 * A format owns its tables and exposes map_pages / unmap_pages / iova_to_phys / free over a
 * config (page sizes, address widths, quirks, coherency, TLB callbacks). Every access to table
 * memory goes through the KernelPort as a generator step, so a scheduler can run another CPU (or a
 * walking IOMMU) between any two page-table accesses: the races of the lockless code are real here.
 */
import type { Op } from '../core/coop';
import type { KernelPort } from './port';

/* Protection flags (include/linux/iommu.h). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;
export const IOMMU_NOEXEC = 1 << 3;
export const IOMMU_MMIO = 1 << 4;
export const IOMMU_PRIV = 1 << 5;

/* Quirks (include/linux/io-pgtable.h). */
export const IO_PGTABLE_QUIRK_ARM_NS = 1 << 0;
export const IO_PGTABLE_QUIRK_NO_PERMS = 1 << 1;
export const IO_PGTABLE_QUIRK_ARM_MTK_EXT = 1 << 3;

export const SZ_4K = 0x1000;
export const SZ_16K = 0x4000;
export const SZ_64K = 0x10000;
export const SZ_1M = 0x100000;
export const SZ_2M = 0x200000;
export const SZ_16M = 0x1000000;
export const SZ_32M = 0x2000000;
export const SZ_512M = 0x20000000;
export const SZ_1G = 0x40000000;

export type IoPgtableFmt = 'arm-v7s' | 'arm-64-lpae-s1';

/** Allocation context of the caller: dma-iommu maps with GFP_ATOMIC, setup with GFP_KERNEL. */
export type Gfp = 'GFP_KERNEL' | 'GFP_ATOMIC';

/** Who a table belongs to, for the page allocator's leak and use-after-free reports. */
export interface PgtableOwner {
  fmt: IoPgtableFmt;
  /** Table level (v7s: 1 or 2; LPAE: start level..3). */
  level: number;
}

/**
 * The page allocator as io-pgtable needs it. A table comes back zeroed in the CPU's view (kzalloc:
 * the zeroes may sit in dirty cache lines); the format itself cleans it to RAM for a non-coherent
 * walker, as Linux's dma_map_single(DMA_TO_DEVICE) on a new table does.
 */
export interface PgtableAllocator {
  allocTable(size: number, align: number, owner: PgtableOwner): number | null;
  freeTable(pa: number): void;
  /** Explorer checkpoints: the allocator's own bookkeeping. */
  snapshot?(): unknown;
  restore?(s: unknown): void;
}

/**
 * struct iommu_iotlb_gather: the range of leaf invalidations an unmap has queued, flushed by
 * iommu_iotlb_sync. `end` is inclusive. `freelist` holds table pages that may only be freed once
 * the invalidation is done; the driver's sync frees them (Linux: iommu_put_pages_list).
 */
export class IommuIotlbGather {
  start = Number.MAX_SAFE_INTEGER;
  end = 0;
  pgsize = 0;
  freelist: number[] = [];
  /** A flush queue will flush everything later: per-page invalidation is skipped. */
  queued = false;

  init(): void {
    this.start = Number.MAX_SAFE_INTEGER;
    this.end = 0;
    this.pgsize = 0;
    this.freelist = [];
  }

  isEmpty(): boolean {
    return this.end === 0 && this.start === Number.MAX_SAFE_INTEGER;
  }

  addRange(iova: number, size: number): void {
    const end = iova + size - 1;
    if (this.start > iova) this.start = iova;
    if (this.end < end) this.end = end;
  }

  /** Non-empty, and [iova, iova+size) neither overlaps nor touches the gathered range. */
  isDisjoint(iova: number, size: number): boolean {
    const end = iova + size - 1;
    return !this.isEmpty() && (end + 1 < this.start || iova > this.end + 1);
  }

  /**
   * iommu_iotlb_gather_add_page: a different page size or a disjoint range cannot be merged, so
   * the pending invalidation is synced first.
   */
  *addPage(iova: number, size: number, sync: (g: IommuIotlbGather) => Op<void>): Op<void> {
    if ((this.pgsize && this.pgsize !== size) || this.isDisjoint(iova, size)) yield* iommuIotlbSync(this, sync);
    this.pgsize = size;
    this.addRange(iova, size);
  }
}

/** iommu_iotlb_sync: the driver's sync, then the gather starts afresh. */
export function* iommuIotlbSync(gather: IommuIotlbGather, sync: (g: IommuIotlbGather) => Op<void>): Op<void> {
  yield* sync(gather);
  gather.init();
}

/** struct iommu_flush_ops: the driver's TLB maintenance, called from inside the format. */
export interface IommuFlushOps {
  /** Blocking invalidation of everything cached for this context. */
  tlbFlushAll(): Op<void>;
  /** Blocking invalidation of walk-cache (non-leaf) and leaf entries of a range: before a table is freed. */
  tlbFlushWalk(iova: number, size: number, granule: number): Op<void>;
  /** Queue (or do) the invalidation of one leaf; optional as in Linux. */
  tlbAddPage?(gather: IommuIotlbGather | null, iova: number, granule: number): Op<void>;
}

/** Register values a v7s table needs (TTBR, TCR, PRRR, NMRR), hardware-facts §3.10. */
export interface ArmV7sRegs {
  ttbr: number;
  tcr: number;
  prrr: number;
  nmrr: number;
}

/** TCR fields for TTBR0 of a stage-1 LPAE context, hardware-facts §4.6. */
export interface ArmLpaeTcr {
  t0sz: number;
  irgn: number;
  orgn: number;
  sh: number;
  tg: number;
  ips: number;
  epd1: boolean;
  /** The same packed as the AArch64 TCR: T0SZ[5:0] IRGN0[9:8] ORGN0[11:10] SH0[13:12] TG0[15:14] EPD1[23] IPS[34:32]. */
  value: number;
}

export interface ArmLpaeS1Regs {
  ttbr: number;
  tcr: ArmLpaeTcr;
  /** u64 as upstream computes it: MAIR0 is the low word, MAIR1 the high word. */
  mair: bigint;
}

/** struct io_pgtable_cfg. The format narrows pgsizeBitmap/ias/oas and fills in its register values. */
export interface IoPgtableCfg {
  quirks: number;
  pgsizeBitmap: number;
  ias: number;
  oas: number;
  /** The IOMMU snoops CPU caches; if false every PTE write is cleaned to RAM. */
  coherentWalk: boolean;
  tlb: IommuFlushOps | null;
  armV7sCfg?: ArmV7sRegs;
  armLpaeS1Cfg?: ArmLpaeS1Regs;
}

/**
 * How an unmap smaller than the leaf it hits is handled, and with it which upstream era the format
 * follows (README "Historic driver variants"):
 * - 'split': the leaf is split and the rest stays mapped, as the API promises. LPAE as upstream
 *   before ~v6.10 (one pass over the entries, split_blk_unmap); v7s as its split-era code meant to,
 *   with the output address kept. Map entry checks as ~v6.12+ (no READ/WRITE: -EINVAL).
 * - 'split-upstream': the split-era code exactly, bugs included (v7s until v6.12): a section split
 *   loses the output address (and the MediaTek PA bits 32..34), a page unmap in the 2nd..16th MiB of
 *   a supersection splits it and returns 0, a sub-4 KiB unmap inside a section never terminates; a
 *   map without READ/WRITE returns 0 and maps nothing. LPAE's split had none of these bugs.
 * - 'refuse': ~v6.13+ (WARN, return 0); LPAE unmaps in two passes (tables first, then the leaves
 *   cleared together, then tlb_add_page for every entry, none without a gather), as ~v6.16.
 */
export type PartialUnmap = 'split' | 'split-upstream' | 'refuse';

const PARTIAL_UNMAP: readonly PartialUnmap[] = ['split', 'split-upstream', 'refuse'];

/**
 * Kernel variants the simulator can run, buggy or fixed:
 * - tableInstall: 'cmpxchg' (lockless since v4.13) or 'store' (the plain store before it: P2).
 * - splitLock: v7s serialises the split of a 16-entry contiguous group (P3).
 * - partialUnmap: see PartialUnmap.
 */
export interface IoPgtableVariant {
  tableInstall: 'cmpxchg' | 'store';
  splitLock: boolean;
  partialUnmap: PartialUnmap;
}

export const DEFAULT_VARIANT: IoPgtableVariant = { tableInstall: 'cmpxchg', splitLock: true, partialUnmap: 'split' };

/**
 * The modelled kernel code would loop forever here (an upstream bug). The call is abandoned with
 * this error after a WARN-level report, instead of hanging the simulation.
 */
export class IoPgtableHang extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IoPgtableHang';
  }
}

/** What a format is built over. */
export interface IoPgtableEnv {
  /** The CPU the setup (and, unless bound elsewhere, every call) runs on. */
  port: KernelPort;
  alloc: PgtableAllocator;
  variant?: Partial<IoPgtableVariant>;
  /** WARN()s of the format (Linux prints a backtrace and carries on). */
  warn?: (msg: string) => void;
}

export interface MapResult {
  /** 0 or a negative errno. */
  ret: number;
  /** Bytes mapped, possibly fewer than asked: the caller loops, as __iommu_map does. */
  mapped: number;
}

/** struct io_pgtable_ops plus what the simulator needs to drive it. */
export interface IoPgtableOps {
  readonly fmt: IoPgtableFmt;
  readonly cfg: IoPgtableCfg;
  /** Physical address of the top-level table. */
  readonly pgd: number;
  mapPages(iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, gfp: Gfp): Op<MapResult>;
  /** Bytes unmapped; 0 when nothing was there (after a WARN). */
  unmapPages(iova: number, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): Op<number>;
  iovaToPhys(iova: number): Op<number>;
  /** free_io_pgtable_ops: tlb_flush_all, then every table freed; the caller guarantees no walker still uses them. */
  free(): Op<void>;
  /** The same page table driven from another CPU (its own port, shared tables and locks). */
  bind(port: KernelPort): IoPgtableOps;
  /** Explorer checkpoints: top-level table, locks, table allocator. */
  snapshot(): unknown;
  restore(s: unknown): void;
}

/**
 * An operation that only WARNs (if msg) and returns value: entry points check their arguments
 * eagerly and hand back either this or the real walk, one generator frame fewer on the hot path.
 */
// eslint-disable-next-line require-yield
export function* warnOp<T>(warn: (msg: string) => void, msg: string | null, value: T): Op<T> {
  if (msg) warn(msg);
  return value;
}

export function resolveVariant(v: Partial<IoPgtableVariant> | undefined): IoPgtableVariant {
  const r = { ...DEFAULT_VARIANT, ...v };
  if (!PARTIAL_UNMAP.includes(r.partialUnmap)) throw new Error(`io-pgtable variant partialUnmap: ${JSON.stringify(r.partialUnmap)} is none of ${PARTIAL_UNMAP.map((x) => `'${x}'`).join(', ')}`);
  return r;
}

/** One power-of-two size present in the bitmap. */
export function isSupportedPgsize(pgsizeBitmap: number, pgsize: number): boolean {
  return pgsize > 0 && (pgsize & (pgsize - 1)) === 0 && (pgsizeBitmap & pgsize) === pgsize;
}
