/**
 * Stale translation detection for the TLB view: every cached translation and walk-cache entry is
 * compared with what a walk of the tables in memory would give now. A mismatch means the driver
 * changed a table without the invalidation that should follow (problems.md P1/P3/P5), or did it in
 * the wrong order. The re-walk reads memory as the IOMMU's walker does (RAM, or RAM plus dirty CPU
 * lines for a coherent walker) and has no side effects: no findings, no cache fills, no time.
 */
import type { TlbEntry } from '../hw/types';
import { RK_PTE_READABLE, RK_PTE_WRITABLE, RK_VALID, rkDecodeAddr, rkDteIndex, rkPteIndex, type RkVersion } from '../hw/rockchip-format';
import type { Soc } from '../soc';
import type { CheckedTlbEntry, CheckedWalkCacheEntry } from './types';

/** What the tables in memory say about one IOVA now. */
export type Walked =
  | { ok: true; pa: number; perms: ('read' | 'write')[]; attrs?: Record<string, number> }
  | { ok: false; reason: string };

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Reads one 32-bit word of a table as the IOMMU's walker would; null off RAM. */
type TableReader = (pa: number) => number | null;

function tableReader(soc: Soc, coherent: boolean): TableReader {
  return (pa) => {
    if (!soc.ram.contains(pa, 4)) return null;
    if (coherent && soc.cache.isDirty(pa)) {
      const b = soc.cache.peek(pa, 4);
      return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    }
    return soc.ram.read32(pa);
  };
}

/** Allwinner H6: DTE (bits 1:0 = 01, PT base in 31:10), PTE (bit 1 valid, PA in 31:12, ACI in 7:4). */
export function walkH6(read: TableReader, ttb: number, iova: number): Walked {
  const dtePa = ((ttb & 0xffffc000) >>> 0) + (iova >>> 20) * 4;
  const dte = read(dtePa);
  if (dte === null) return { ok: false, reason: `DTE at ${hex(dtePa)} is not in RAM` };
  if ((dte & 3) !== 1) return { ok: false, reason: `DTE at ${hex(dtePa)} is invalid (${hex(dte)})` };
  const ptePa = ((dte & 0xfffffc00) >>> 0) + ((iova >>> 12) & 0xff) * 4;
  const pte = read(ptePa);
  if (pte === null) return { ok: false, reason: `PTE at ${hex(ptePa)} is not in RAM` };
  if ((pte & 2) === 0) return { ok: false, reason: `PTE at ${hex(ptePa)} is invalid (${hex(pte)})` };
  return { ok: true, pa: (pte & 0xfffff000) >>> 0, perms: ['read', 'write'], attrs: { aci: (pte >>> 4) & 0xf } };
}

/** Rockchip: DTE and PTE with bit 0 valid; PTE bits 1 and 2 readable and writable. */
export function walkRockchip(read: TableReader, version: RkVersion, dteAddr: number, iova: number): Walked {
  const dtBase = rkDecodeAddr(version, dteAddr);
  const dtePa = dtBase + rkDteIndex(iova) * 4;
  const dte = read(dtePa);
  if (dte === null) return { ok: false, reason: `DTE at ${hex(dtePa)} is not in RAM` };
  if (!(dte & RK_VALID)) return { ok: false, reason: `DTE at ${hex(dtePa)} is invalid (${hex(dte)})` };
  const ptePa = rkDecodeAddr(version, dte) + rkPteIndex(iova) * 4;
  const pte = read(ptePa);
  if (pte === null) return { ok: false, reason: `PTE at ${hex(ptePa)} is not in RAM` };
  if (!(pte & RK_VALID)) return { ok: false, reason: `PTE at ${hex(ptePa)} is invalid (${hex(pte)})` };
  const perms: ('read' | 'write')[] = [];
  if (pte & RK_PTE_READABLE) perms.push('read');
  if (pte & RK_PTE_WRITABLE) perms.push('write');
  return { ok: true, pa: rkDecodeAddr(version, pte), perms, attrs: {} };
}

/** Compare one cached translation with a fresh walk; null when they agree. */
export function staleness(e: TlbEntry, now: Walked, comparePerms: boolean): string | null {
  if (!now.ok) return `cached ${hex(e.iova)} → ${hex(e.pa)}, but ${now.reason}`;
  if (now.pa !== e.pa) return `cached ${hex(e.iova)} → ${hex(e.pa)}, tables now map it to ${hex(now.pa)}`;
  if (comparePerms && now.perms.join() !== e.perms.join()) return `cached perms ${e.perms.join('+') || 'none'}, tables now say ${now.perms.join('+') || 'none'}`;
  for (const [k, v] of Object.entries(now.attrs ?? {})) {
    const cached = e.attrs?.[k];
    if (cached !== undefined && cached !== v) return `cached ${k} ${cached}, tables now say ${v}`;
  }
  return null;
}

/** The walk for each TLB entry of an IOMMU instance, by model. Null for models without a re-walk. */
function walkerFor(soc: Soc, iommu: string): ((e: TlbEntry) => Walked) | null {
  const model = soc.iommu(iommu);
  const cfg = soc.config.iommus.find((c) => c.name === iommu);
  const read = tableReader(soc, cfg?.coherentWalk ?? false);
  const files = model.registerFiles();
  if (model.model === 'sun50i-h6') {
    const regs = files[0]!.regs;
    return (e) => walkH6(read, regs.get('TTB'), e.iova);
  }
  if (model.model === 'rockchip') {
    const version = (cfg?.options?.version ?? 'v1') as RkVersion;
    // Levels are 'iotlb' (one instance) or 'iotlb<n>': the instance whose DTE_ADDR the entry came from.
    return (e) => {
      const n = e.level && e.level !== 'iotlb' ? Number(e.level.slice('iotlb'.length)) : 0;
      const regs = (files[n] ?? files[0]!).regs;
      return walkRockchip(read, version, regs.get('DTE_ADDR'), e.iova);
    };
  }
  return null;
}

/** TLB entries with each one checked against the tables in memory. */
export function checkTlb(soc: Soc, iommu: string): CheckedTlbEntry[] {
  const model = soc.iommu(iommu);
  const walk = walkerFor(soc, iommu);
  // The H6 keeps permissions in DM_AUT_CTRL (read live on every access), not in the cached entry.
  const comparePerms = model.model !== 'sun50i-h6';
  return model.tlb().map((e) => {
    if (!walk || !e.valid) return { ...e, stale: false };
    const why = staleness(e, walk(e), comparePerms);
    return why === null ? { ...e, stale: false } : { ...e, stale: true, staleReason: why };
  });
}

/** Walk-cache entries whose cached descriptors differ from the words in memory now. */
export function checkWalkCache(soc: Soc, iommu: string): CheckedWalkCacheEntry[] {
  const cfg = soc.config.iommus.find((c) => c.name === iommu);
  const read = tableReader(soc, cfg?.coherentWalk ?? false);
  return soc
    .iommu(iommu)
    .walkCache()
    .map((e) => {
      for (let i = 0; i < e.entries.length; i++) {
        const pa = e.tablePa + 4 * i;
        const mem = read(pa);
        if (mem !== null && mem !== e.entries[i]) {
          return { ...e, stale: true, staleReason: `cached ${hex(e.entries[i]!)} at ${hex(pa)}, memory now holds ${hex(mem)}` };
        }
      }
      return { ...e, stale: false };
    });
}
