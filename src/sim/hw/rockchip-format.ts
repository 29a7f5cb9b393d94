/**
 * Rockchip IOMMU table formats (hardware-facts.md §2.3, §2.4): a 1024-entry directory table (DT) of
 * DTEs, each pointing at a 1024-entry page table (PT) of PTEs; 4 KiB pages, 32-bit IOVA.
 * v1 ('rockchip,iommu') holds 32-bit physical addresses; v2 ('rockchip,rk3568-iommu') packs a
 * 40-bit address into the same 32-bit entry.
 */
export type RkVersion = 'v1' | 'v2';

export const RK_PAGE_SHIFT = 12;
export const RK_PAGE_SIZE = 1 << RK_PAGE_SHIFT;
/** One DTE covers 4 MiB of IOVA. */
export const RK_DTE_SPAN = 1 << 22;
export const RK_ENTRIES = 1024;

export const rkDteIndex = (iova: number): number => (iova >>> 22) & 0x3ff;
export const rkPteIndex = (iova: number): number => (iova >>> 12) & 0x3ff;

/** Bit 0 of every DTE and PTE. */
export const RK_VALID = 1 << 0;
/** PTE permission bits. */
export const RK_PTE_READABLE = 1 << 1;
export const RK_PTE_WRITABLE = 1 << 2;

/** Descriptor bits with no meaning in each format: setting them is a driver bug worth reporting. */
export const RK_RESERVED = {
  v1: { dte: 0x00000ffe, pte: 0x00000e00 },
  v2: { dte: 0x0000000e, pte: 0x00000000 },
} as const;

const TWO32 = 2 ** 32;
const TWO36 = 2 ** 36;

/** The physical address an entry (or the DTE_ADDR register) holds. */
export function rkDecodeAddr(version: RkVersion, e: number): number {
  const lo = (e & 0xfffff000) >>> 0;
  if (version === 'v1') return lo;
  return lo + ((e >>> 8) & 0xf) * TWO32 + ((e >>> 4) & 0xf) * TWO36;
}

/** The entry bits that hold a 4 KiB-aligned physical address (flags not included). */
export function rkEncodeAddr(version: RkVersion, pa: number): number {
  const lo = pa % TWO32 & 0xfffff000;
  if (version === 'v1') return lo >>> 0;
  const hi = Math.floor(pa / TWO32);
  return (lo | ((hi & 0xf) << 8) | (((hi >>> 4) & 0xf) << 4)) >>> 0;
}

/** Highest physical address the format can express, plus one. */
export const rkPaLimit = (version: RkVersion): number => (version === 'v1' ? TWO32 : 2 ** 40);
