import type { Clock } from '../core/clock';
import type { FindingSink } from '../core/findings';
import type { Rng } from '../core/rng';
import type { Snapshotable } from '../core/snapshot';
import type { Trace } from '../core/trace';
import type { Bus, MmioRegion } from '../mem/bus';
import type { BlockDecl, RegisterFile } from '../regs/dsl';

export type AccessKind = 'read' | 'write';

/** Permission bits of a cached translation. */
export const PERM_READ = 1;
export const PERM_WRITE = 2;

/** script-api.md TlbEntry. */
export interface TlbEntry {
  iova: number;
  pa: number;
  size: number;
  perms: AccessKind[];
  master?: string;
  valid: boolean;
  /** Which TLB of the IOMMU holds it (e.g. 'micro0', 'macro', 'iotlb'). */
  level?: string;
  /** Model-specific attributes the entry carries (e.g. { aci: 4 } on the H6). */
  attrs?: Record<string, number>;
}

/** script-api.md WalkCacheEntry: a cached table entry (or line of entries) the walker read. */
export interface WalkCacheEntry {
  /** IOVA the cached entry covers (start) and the span it covers. */
  iova: number;
  span: number;
  /** Physical address of the table entry or line that was read. */
  tablePa: number;
  /** The cached descriptor value(s) as read from memory. */
  entries: number[];
  valid: boolean;
}

export type FaultReason =
  | 'dte-invalid'
  | 'pte-invalid'
  | 'permission'
  | 'bus-error'
  | 'reserved-bits'
  | 'translation-disabled'
  | 'powered-off'
  /** The master's path through the IOMMU is held in reset (H6 RESET register). */
  | 'master-reset'
  | 'address-size'
  /** The master waited for a stalled IOMMU (a stall or an unacknowledged page fault) and gave up. */
  | 'stalled';

/** script-api.md Fault. */
export interface Fault {
  iova: number;
  master: string;
  access: AccessKind;
  reason: FaultReason;
  time: number;
  iommu?: string;
}

export interface IommuStats {
  hits: number;
  misses: number;
  walks: number;
  faults: number;
}

/**
 * How a model produced a successful translation, so the checkers re-walk only what could differ from
 * the tables in memory. 'walk': every table level was read from memory just now (consistent with
 * memory by construction). 'walk-cache': a walk that took one level from the walk cache (the word
 * cachedValue of the table at cachedPa) and read the others from memory just now. 'tlb': a TLB hit.
 * A model that does not say (undefined) has its translations checked in full, as do 'tlb' hits.
 */
export type TranslationSource = 'walk' | 'walk-cache' | 'tlb';

/**
 * The result of translating one DMA beat. A successful result may be an object the model reuses on
 * its next call (the hit path allocates nothing): read it at once, do not keep it.
 */
export type Translation =
  | { ok: true; pa: number; coherent: boolean; source?: TranslationSource; cachedPa?: number; cachedValue?: number }
  | { ok: false; fault: Fault };

/**
 * What the checkers (src/sim/check) are told by the hardware. Called synchronously on the walk and
 * DMA paths, so implementations must be cheap and must not touch the hardware they watch.
 */
export interface HwObserver {
  /** A table walker (agent: the IOMMU instance) read the word at pa while walking iova. */
  walkRead(agent: string, pa: number, value: number, iova: number | undefined): void;
  /** A DMA beat of master at iova was translated by iommu; t is read at once, not kept. */
  beat(master: MasterPort, iommu: IommuModel, iova: number, access: AccessKind, t: Translation): void;
  /** A DMA transfer was refused because the master itself is powered off. */
  masterOff(master: MasterPort, iova: number, access: AccessKind): void;
  /** What the memory at pa is, for messages (e.g. "page table (domain 3, level 2, iommu0)"). */
  describe(pa: number): { label: string; domain?: number } | undefined;
}

/** What every hardware model is given: the shared SoC fabric, passed explicitly. */
export interface HwContext {
  bus: Bus;
  clock: Clock;
  trace: Trace;
  findings: FindingSink;
  rng: Rng;
  /** Drive an interrupt line (GIC SPI number) to a level. */
  setIrq(line: number, level: boolean): void;
  /** The checkers' view of the hardware, when the SoC has them. */
  observer?: HwObserver;
  /**
   * Time passed while a master waits and the CPUs are free: the SoC delivers pending interrupts to
   * their handlers here (a stalled master's fault handler can release it).
   */
  idle?: () => void;
}

/** A master's identity as its IOMMU sees it. */
export interface MasterPort {
  /** Device name from the config. */
  name: string;
  /** Stream / master ID the IOMMU uses (H6 master ID, MTK larb port, SMMU stream ID). */
  id: number;
}

/** The contract every IOMMU model fulfils; the SoC, masters, checkers and UI use nothing else. */
export interface IommuModel extends Snapshotable {
  readonly name: string;
  /** e.g. 'sun50i-h6', 'rockchip', 'mtk-v7s', 'arm-lpae'. */
  readonly model: string;
  /** Register declaration (one per window; multi-instance IOMMUs have several windows). */
  readonly decl: BlockDecl;
  /** Register windows, as mapped on the bus. */
  mmio(): MmioRegion[];
  /** Live registers by window name (inspector; several for multi-instance Rockchip IOMMUs). */
  registerFiles(): { window: string; base: number; regs: RegisterFile }[];
  /** Translate one beat from master at iova. Records faults, raises IRQs, updates caches. */
  translate(master: MasterPort, iova: number, access: AccessKind): Translation;
  /**
   * Why the master's next access waits instead of being translated (the IOMMU stalls it), or null.
   * Only IOMMUs that stall traffic have it (Rockchip: ENABLE_STALL, an unacknowledged page fault).
   */
  stallOf?(master: MasterPort, access: AccessKind): string | null;
  tlb(): TlbEntry[];
  walkCache(): WalkCacheEntry[];
  faults(): Fault[];
  stats(): IommuStats;
  /** Power domain transitions: off loses all state (registers, TLBs, caches). */
  setPowered(on: boolean): void;
  isPowered(): boolean;
}
