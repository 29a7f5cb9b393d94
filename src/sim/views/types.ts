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
  /** seq[i]: events[i]'s sequence number in the run (1 = the first event emitted): its moment. */
  seq: number[];
  /** How many events overlap the window in all (more than events.length when thinned). */
  total: number;
  /** Earliest start and latest end of every event in the ring (the timeline's extent), or null when empty. */
  extent: { start: number; end: number } | null;
}

/** Runtime-PM status of a device as the kernel sees it (null before the kernel is booted). */
export type TreeRpmStatus = 'active' | 'resuming' | 'suspended' | 'suspending';

export interface TreeIommu {
  name: string;
  model: string;
  /** The device tree node the config entry was imported from (its "dtPath"), if any. */
  dtPath: string | null;
  windows: { name: string; base: number; size: number }[];
  irq: number | null;
  coherentWalk: boolean;
  powerDomain: string | null;
  powered: boolean;
  /** Runtime-PM status of the IOMMU's device; null until something boots the kernel. */
  rpm: TreeRpmStatus | null;
}

export interface TreeDevice {
  name: string;
  /** The device tree node the config entry was imported from (its "dtPath"), if any. */
  dtPath: string | null;
  iommu: string | null;
  masterId: number;
  powerDomain: string | null;
  powered: boolean;
  coherent: boolean;
  compatible: string | null;
  /** Runtime-PM status; null until something boots the kernel. */
  rpm: TreeRpmStatus | null;
  /** The domain the device's IOMMU group is attached to now (null: none, or no kernel yet). */
  attached: { id: number; type: string; default: boolean } | null;
}

/** A device link (device_link_add): the consumer's runtime PM keeps the supplier's up. */
export interface TreeLink {
  consumer: string;
  supplier: string;
  flags: string[];
  /** References the link holds on the supplier (rpm_active - 1). */
  refs: number;
}

export interface TreeDomain {
  name: string;
  dtPath: string | null;
  on: boolean;
  members: string[];
}

export interface DeviceTree {
  name: string;
  memory: { name: string; base: number; size: number; dtPath: string | null }[];
  iommus: TreeIommu[];
  devices: TreeDevice[];
  powerDomains: TreeDomain[];
  /** Device links of the kernel's runtime PM (empty until the kernel is booted). */
  links: TreeLink[];
  /** Clock gates and reset controller lines, with their state now. */
  clocks: { name: string; on: boolean }[];
  resets: { name: string; asserted: boolean }[];
}
