/**
 * Shapes of the page-table, IOVA-map and page-owner views. Plain data (numbers and strings: a 64-bit
 * descriptor travels as hex text), kept apart from the walkers so the session API and the renderer's
 * type check see only these.
 */

/** A table as the walker reaches it: where it is, its level, and the first IOVA it translates. */
export interface TableRef {
  pa: number;
  level: number;
  iova: number;
}

/** One IOMMU domain as the page-table view lists it. */
export interface DomainInfo {
  id: number;
  iommu: string;
  /** Driver / hardware model, e.g. 'sun50i-h6', 'arm-lpae'. */
  model: string;
  type: 'blocked' | 'identity' | 'unmanaged' | 'dma' | 'dma-fq';
  /** Devices whose group is attached to this domain now. */
  devices: string[];
  /** Devices whose default domain this is. */
  defaultFor: string[];
  /** The hardware walks this domain's tables now: its root is programmed and translation is on. */
  live: boolean;
  /** iommu_domain_free ran (its tables may be reused memory now). */
  freed: boolean;
  /** Table format, e.g. 'arm-lpae 4K, 48-bit IOVA'; null for a domain without tables. */
  format: string | null;
  /** The top-level table, or null for a domain without tables. */
  root: TableRef | null;
  /** IOVA aperture [start, end] (inclusive end). */
  aperture: { start: number; end: number };
  /** Page sizes the domain maps with, largest first. */
  pgsizes: number[];
}

/** One decoded descriptor field, e.g. { name: 'AP', value: 'RW, EL0' }. */
export interface PtField {
  name: string;
  value: string;
}

export type PtEntryKind = 'invalid' | 'table' | 'page' | 'block' | 'fault';

/** One descriptor of a table, decoded as the hardware's walker reads it. */
export interface PtEntry {
  index: number;
  /** Physical address of the descriptor. */
  pa: number;
  /** The descriptor as the walker reads it (RAM, or RAM plus CPU cache for a coherent walker), hex. */
  raw: string;
  /**
   * What the CPU cache holds for the descriptor when that differs from what the walker reads: a table
   * write not cleaned to memory, invisible to a non-coherent walker.
   */
  cpuRaw?: string;
  /** 'page' and 'block' are leaves; 'fault' is a valid-looking descriptor the walker faults on. */
  kind: PtEntryKind;
  /** IOVA range this entry translates: [iova, iova + span). */
  iova: number;
  span: number;
  /** Next-level table (kind 'table') or the output address of the IOVA at `iova` (leaves). */
  out?: number;
  /** Leaf size: a v7s large page or supersection covers 16 entries' spans. */
  size?: number;
  /** Access a DMA master gets: 'RW', 'R', 'W' or 'none'. */
  perms?: string;
  fields: PtField[];
  /** One line, as a driver developer would say it. */
  meaning: string;
  /** Where the walker goes next (kind 'table'). */
  next?: TableRef;
}

export interface PtTable {
  domain: number;
  ref: TableRef;
  /** Table format label (as DomainInfo.format). */
  format: string;
  /** Descriptors in the table and their size in bytes. */
  entries: number;
  entrySize: 4 | 8;
  /** Valid descriptors (anything the walker does not fault on at once). */
  valid: number;
  /** Rows: valid descriptors only, or every one when asked. Ascending index. */
  rows: PtEntry[];
  /** Who holds the table's memory when it is not this domain (a freed or reused page): use-after-free. */
  ownerProblem?: string;
  /** The table lies outside RAM: the walker gets a bus error. */
  notRam?: boolean;
}

/** One step of a hardware walk for one IOVA. */
export interface WalkStep {
  level: number;
  tablePa: number;
  index: number;
  descPa: number;
  raw: string;
  cpuRaw?: string;
  kind: PtEntryKind;
  meaning: string;
  ownerProblem?: string;
}

export interface IovaWalk {
  domain: number;
  iova: number;
  steps: WalkStep[];
  /** Where the walk ends: the physical address, or the fault. */
  result: { ok: true; pa: number; size: number; perms: string } | { ok: false; fault: string };
}

/** A run of IOVA mapped to contiguous PA with one page size and one set of permissions. */
export interface IovaRun {
  iova: number;
  size: number;
  pa: number;
  pageSize: number;
  perms: string;
  /** A table on the way to these leaves is not owned by the domain (freed or reused). */
  ownerProblem?: string;
}

export interface IovaMap {
  domain: number;
  aperture: { start: number; end: number };
  runs: IovaRun[];
  mappedBytes: number;
  /** More runs existed than are listed. */
  truncated: boolean;
}

/** One allocation of the kernel's page allocator overlapping a range (memory view labels). */
export interface PageOwnerInfo {
  pa: number;
  bytes: number;
  kind: 'pgtable' | 'dma-buffer' | 'script' | 'driver' | 'slab';
  /** e.g. 'page table (domain 3, level 2, iommu0)'. */
  label: string;
  domain?: number;
  level?: number;
  iommu?: string;
}
