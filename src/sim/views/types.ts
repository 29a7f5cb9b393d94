/**
 * Shapes of the console's view data. Kept apart from the helpers (which need the whole Soc) so the
 * session API, and through it the renderer's type check, see only these plain types.
 */
import type { TraceEvent } from '../core/trace';
import type { TlbEntry, WalkCacheEntry } from '../hw/types';

export interface CheckedTlbEntry extends TlbEntry {
  /** The entry no longer matches the tables in memory. */
  stale: boolean;
  /** Why, in the words a driver developer would use. */
  staleReason?: string;
}

export interface CheckedWalkCacheEntry extends WalkCacheEntry {
  stale: boolean;
  staleReason?: string;
}

export interface TraceWindow {
  /** Events overlapping [from, to], in time order; at most `limit` of them. */
  events: TraceEvent[];
  /** How many events overlap the window in all (more than events.length when thinned). */
  total: number;
  /** Earliest start and latest end of every event in the ring (the timeline's extent), or null when empty. */
  extent: { start: number; end: number } | null;
}

export interface TreeIommu {
  name: string;
  model: string;
  windows: { name: string; base: number; size: number }[];
  irq: number | null;
  coherentWalk: boolean;
  powerDomain: string | null;
  powered: boolean;
}

export interface TreeDevice {
  name: string;
  iommu: string | null;
  masterId: number;
  powerDomain: string | null;
  powered: boolean;
  coherent: boolean;
  compatible: string | null;
}

export interface TreeDomain {
  name: string;
  on: boolean;
  members: string[];
}

export interface DeviceTree {
  name: string;
  memory: { name: string; base: number; size: number }[];
  iommus: TreeIommu[];
  devices: TreeDevice[];
  powerDomains: TreeDomain[];
}
