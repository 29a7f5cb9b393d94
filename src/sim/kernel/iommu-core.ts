/**
 * The IOMMU core (drivers/iommu/iommu.c): domains, groups, default domains, attach/detach, and the
 * map/unmap API that splits ranges into the driver's page sizes and drives the iotlb gather.
 * Drivers plug in through IommuOps (the iommu_ops + iommu_domain_ops of one probed instance).
 * Everything that reaches a driver is a generator, so driver MMIO and table accesses interleave.
 */
import type { Op } from '../core/coop';
import type { FindingSink } from '../core/findings';
import type { Trace } from '../core/trace';
import { EBUSY, EINVAL, ENODEV, ENOSYS, errname, hex } from './errno';
import { IommuIotlbGather as IotlbGather } from './io-pgtable';
import { IovaDomain, type IovaSnapshot } from './iova';
import { KernelLog } from './klog';
import { ownerLabel, type PageAllocator } from './page-alloc';

export { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from './io-pgtable';
/** struct iommu_iotlb_gather, shared with io-pgtable. */
export { IommuIotlbGather as IotlbGather } from './io-pgtable';
export const IOMMU_FAULT_READ = 0;
export const IOMMU_FAULT_WRITE = 1;

/** §7.2: 'dma-fq' is DMA with deferred invalidation. */
export type DomainType = 'blocked' | 'identity' | 'unmanaged' | 'dma' | 'dma-fq';

/** What scripts hold: plain data, resolved by id. */
export interface DomainHandle {
  id: number;
  iommu: string;
  type: DomainType;
}

export interface DomainGeometry {
  apertureStart: number;
  apertureEnd: number;
  forceAperture: boolean;
}

export type FaultHandler = (domain: IommuDomain, dev: string, iova: number, flags: number) => number;

/** struct iommu_domain. `priv` is the driver's per-domain state. */
export interface IommuDomain {
  readonly id: number;
  /** The driver instance's ops (kept here so hot paths need no lookup). */
  readonly ops: IommuOps;
  readonly type: DomainType;
  /** The IOMMU instance it was allocated for. */
  readonly iommu: string;
  /** The driver (config model) that owns it: domains do not cross drivers. */
  readonly model: string;
  pgsizeBitmap: number;
  geometry: DomainGeometry;
  priv: unknown;
  /** The dma-iommu cookie of DMA domains. */
  iovad: IovaDomain | null;
  /** Static identity/blocked domain of a driver: never freed. */
  readonly isStatic: boolean;
  freed: boolean;
  faultHandler: FaultHandler | null;
  /** Supported page sizes, largest first (derived from pgsizeBitmap). */
  pgsizes: number[];
}

/** struct iommu_group. */
export interface IommuGroup {
  readonly id: number;
  readonly iommu: string;
  devices: string[];
  defaultDomain: IommuDomain | null;
  domain: IommuDomain | null;
  blockingDomain: IommuDomain | null;
}

/** A successful map_pages call reports the bytes it mapped here, also on partial failure. */
export interface MapOut {
  mapped: number;
}

/** Reserved IOVA regions a driver reports for a device (get_resv_regions). */
export interface ResvRegion {
  start: number;
  length: number;
  type: 'direct' | 'reserved' | 'msi' | 'sw-msi';
}

/**
 * One probed IOMMU instance: iommu_ops + iommu_domain_ops. Return conventions follow the kernel:
 * 0 or -errno; unmapPages returns bytes unmapped (0 at a hole); iovaToPhys returns 0 if unmapped.
 */
export interface IommuOps {
  readonly name: string;
  readonly model: string;
  /** The driver's historic variants (script-api kernel.driver(iommu).variant); read at each op. */
  variant: Record<string, string | number | boolean>;
  /** Page sizes the hardware supports, as a bitmap (bit n = 2^n bytes). */
  pgsizeBitmap: number;
  /** 'single': one group for the instance (generic_single_device_group); 'per-device'. */
  groupPolicy: 'single' | 'per-device';
  /** def_domain_type, if the driver insists. */
  defDomainType?: 'dma' | 'identity';
  /** Static identity / blocked domains (≥ v6.6 drivers: "detach" = attach the identity one). */
  identityDomain?: boolean;
  blockedDomain?: boolean;
  probeDevice(dev: string): Op<number>;
  releaseDevice?(dev: string): Op<void>;
  getResvRegions?(dev: string): ResvRegion[];
  /** Set up driver state in domain.priv (and adjust pgsizeBitmap/geometry). 0 or -ENOMEM. */
  domainAllocPaging(domain: IommuDomain): Op<number>;
  domainFree(domain: IommuDomain): Op<void>;
  /** Attach any domain, including the static identity/blocked ones. */
  attachDev(domain: IommuDomain, dev: string): Op<number>;
  /** ≤ v6.2 drivers: detach_dev, used only when the group has no default domain to return to. */
  detachDev?(domain: IommuDomain, dev: string): Op<void>;
  mapPages(domain: IommuDomain, iova: number, paddr: number, pgsize: number, pgcount: number, prot: number, out: MapOut): Op<number>;
  unmapPages(domain: IommuDomain, iova: number, pgsize: number, pgcount: number, gather: IotlbGather): Op<number>;
  iovaToPhys(domain: IommuDomain, iova: number): Op<number>;
  iotlbSyncMap?(domain: IommuDomain, iova: number, size: number): Op<number>;
  iotlbSync?(domain: IommuDomain, gather: IotlbGather): Op<void>;
  flushIotlbAll?(domain: IommuDomain): Op<void>;
  /** After kernel.driver(name).setVariant changed the variant object. */
  variantChanged?(): void;
  /** The instance's interrupt handler: true for IRQ_HANDLED. */
  irq?(): Op<boolean>;
  /** Explorer checkpoints: the driver's own state (what its probe keeps in locals). */
  snapshot?(): unknown;
  restore?(s: unknown): void;
  /** False while snapshot cannot run (a C driver's call is suspended inside it). */
  snapshotReady?(): boolean;
  /** Explorer checkpoints: a domain's driver state (domain.priv); priv itself is kept by reference. */
  snapshotDomain?(domain: IommuDomain): unknown;
  restoreDomain?(domain: IommuDomain, s: unknown): void;
}

/** What the checkers (src/sim/check) are told of the core's work: mappings made and removed, domains freed. */
export interface IommuCoreObserver {
  /** [iova, +size) → pa is mapped in d (iommu_map_nosync succeeded). */
  mapped(d: IommuDomain, iova: number, pa: number, size: number): void;
  /** size bytes from iova were unmapped from d (before the IOTLB sync). */
  unmapped(d: IommuDomain, iova: number, size: number): void;
  /** iommu_unmap of [iova, +size) unmapped only `unmapped` bytes: the range was not (all) mapped. */
  unmapIncomplete(d: IommuDomain, iova: number, size: number, unmapped: number): void;
  /** The driver's domain_free returned. */
  domainFreed(d: IommuDomain): void;
}

export interface IommuCoreOptions {
  now: () => number;
  observer?: IommuCoreObserver;
  trace?: Trace;
  findings?: FindingSink;
  /** For the table-leak check at domain free. */
  pages?: PageAllocator;
}

const TWO32 = 2 ** 32;

/** Index of the lowest set bit of a non-negative integer < 2^53 (Infinity for 0). */
function ffs(x: number): number {
  if (x === 0) return Infinity;
  const lo = x % TWO32;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Math.floor(x / TWO32);
  return 32 + 31 - Math.clz32(hi & -hi);
}

function pgsizesOf(bitmap: number): number[] {
  const out: number[] = [];
  for (let b = 30; b >= 0; b--) if (bitmap & (1 << b)) out.push(2 ** b);
  return out;
}

export function isPaging(t: DomainType): boolean {
  return t === 'unmanaged' || t === 'dma' || t === 'dma-fq';
}

interface DomainState {
  d: IommuDomain;
  pgsizeBitmap: number;
  geometry: DomainGeometry;
  priv: unknown;
  privState: unknown;
  iovad: IovaDomain | null;
  iovadState: IovaSnapshot | null;
  freed: boolean;
  faultHandler: FaultHandler | null;
  pgsizes: number[];
}

interface GroupState {
  g: IommuGroup;
  devices: string[];
  defaultDomain: IommuDomain | null;
  domain: IommuDomain | null;
  blockingDomain: IommuDomain | null;
}

export interface IommuCoreSnapshot {
  domains: DomainState[];
  groups: GroupState[];
  devGroup: [string, IommuGroup][];
  devIommu: [string, IommuOps][];
  nextDomainId: number;
  nextGroupId: number;
  drivers: { ops: IommuOps; variant: Record<string, string | number | boolean>; state: unknown }[];
}

export class IommuCore {
  private iommus = new Map<string, IommuOps>();
  private domains = new Map<number, IommuDomain>();
  private groups: IommuGroup[] = [];
  private devGroup = new Map<string, IommuGroup>();
  private devIommu = new Map<string, IommuOps>();
  private staticDomains = new Map<string, { identity: IommuDomain | null; blocked: IommuDomain | null }>();
  private nextDomainId = 1;
  private nextGroupId = 0;
  readonly log: KernelLog;
  /** iommu_pgsize's page count, returned beside the page size without an allocation. */
  private pgcount = 0;

  constructor(private readonly opts: IommuCoreOptions) {
    this.log = new KernelLog(opts.now, opts.trace, opts.findings);
  }

  /** iommu_device_register: the instance's static domains are created here. */
  registerIommu(ops: IommuOps): void {
    this.iommus.set(ops.name, ops);
    this.staticDomains.set(ops.name, {
      identity: ops.identityDomain ? this.newDomain(ops, 'identity', true) : null,
      blocked: ops.blockedDomain ? this.newDomain(ops, 'blocked', true) : null,
    });
  }

  iommu(name: string): IommuOps | undefined {
    return this.iommus.get(name);
  }

  iommuNames(): string[] {
    return [...this.iommus.keys()];
  }

  domain(id: number): IommuDomain | undefined {
    return this.domains.get(id);
  }

  /** Every domain ever allocated for an instance (freed ones included, marked). */
  domainsOf(iommu: string): IommuDomain[] {
    return [...this.domains.values()].filter((d) => d.iommu === iommu);
  }

  handle(d: IommuDomain): DomainHandle {
    return { id: d.id, iommu: d.iommu, type: d.type };
  }

  groupOf(dev: string): IommuGroup | undefined {
    return this.devGroup.get(dev);
  }

  groupList(): readonly IommuGroup[] {
    return this.groups;
  }

  /** The IOMMU a device sits behind, once probed. */
  iommuOf(dev: string): IommuOps | undefined {
    return this.devIommu.get(dev);
  }

  /** iommu_get_dma_domain: the group's default domain if it is a DMA domain. */
  dmaDomain(dev: string): IommuDomain | null {
    const d = this.devGroup.get(dev)?.defaultDomain;
    return d && (d.type === 'dma' || d.type === 'dma-fq') ? d : null;
  }

  private newDomain(ops: IommuOps, type: DomainType, isStatic: boolean): IommuDomain {
    const d: IommuDomain = {
      id: this.nextDomainId++,
      ops,
      type,
      iommu: ops.name,
      model: ops.model,
      pgsizeBitmap: ops.pgsizeBitmap,
      geometry: { apertureStart: 0, apertureEnd: TWO32 - 1, forceAperture: false },
      priv: null,
      iovad: null,
      isStatic,
      freed: false,
      faultHandler: null,
      pgsizes: pgsizesOf(ops.pgsizeBitmap),
    };
    this.domains.set(d.id, d);
    return d;
  }

  /**
   * iommu_domain_alloc / iommu_paging_domain_alloc: a domain of the given type on an instance,
   * or -errno. Identity and blocked return the driver's static domain (-EINVAL without one).
   */
  *domainAlloc(iommu: string, type: DomainType): Op<IommuDomain | number> {
    const ops = this.iommus.get(iommu);
    if (!ops) return -ENODEV;
    if (!isPaging(type)) {
      const s = this.staticDomains.get(iommu)!;
      const d = type === 'identity' ? s.identity : s.blocked;
      return d ?? -EINVAL;
    }
    const d = this.newDomain(ops, type, false);
    const r = yield* ops.domainAllocPaging(d);
    if (r < 0) {
      this.domains.delete(d.id);
      return r;
    }
    d.pgsizes = pgsizesOf(d.pgsizeBitmap);
    if (type === 'dma' || type === 'dma-fq') {
      const granule = d.pgsizes[d.pgsizes.length - 1]!;
      d.iovad = new IovaDomain(granule, Math.floor(d.geometry.apertureStart / granule));
    }
    this.log.event('domain_alloc', iommu, { domain: d.id, type });
    return d;
  }

  /**
   * iommu_domain_free. The core does not stop a free of an attached domain (the driver decides
   * what happens; the hardware checkers see the consequences); it records it in the trace. Table
   * pages the domain still owns after the driver's free are reported as leaked.
   */
  *domainFree(d: IommuDomain): Op<void> {
    if (d.freed) {
      this.log.warn(`iommu_domain_free: domain ${d.id} freed twice`, { domain: d.id, iommu: d.iommu });
      return;
    }
    if (d.isStatic) return;
    const users = this.groups.filter((g) => g.domain === d || g.defaultDomain === d);
    if (users.length > 0) {
      this.log.event('domain_free_attached', d.iommu, { domain: d.id, groups: users.map((g) => g.id).join(',') }, 'attach');
    }
    const ops = d.ops;
    yield* ops.domainFree(d);
    d.freed = true;
    this.log.event('domain_free', d.iommu, { domain: d.id });
    this.opts.observer?.domainFreed(d);
    const left = this.opts.pages?.tablesOf(d.id) ?? [];
    if (left.length > 0) {
      this.opts.findings?.report({
        kind: 'table-leak',
        severity: 'error',
        message: `domain ${d.id} (${d.iommu}) freed with ${left.length} page-table allocation(s) still held: ${left
          .slice(0, 8)
          .map((a) => `${hex(a.pa)} (${ownerLabel(a.owner)}, ${a.bytes} bytes)`)
          .join(', ')}${left.length > 8 ? ', ...' : ''}`,
        where: { iommu: d.iommu, domain: d.id },
      });
    }
  }

  /**
   * iommu_probe_device: the driver's probe_device, the device's group (the driver's policy), and,
   * for the group's first device, its default domain; then the device joins the group's current
   * domain. 0 or -errno (the device then does DMA without the IOMMU).
   */
  *probeDevice(dev: string, iommu: string, defaultType: 'dma' | 'identity' = 'dma'): Op<number> {
    const ops = this.iommus.get(iommu);
    if (!ops) return -ENODEV;
    const r = yield* ops.probeDevice(dev);
    if (r < 0) return r;
    this.devIommu.set(dev, ops);
    let g = ops.groupPolicy === 'single' ? this.groups.find((x) => x.iommu === iommu) : undefined;
    if (!g) {
      g = { id: this.nextGroupId++, iommu, devices: [], defaultDomain: null, domain: null, blockingDomain: this.staticDomains.get(iommu)?.blocked ?? null };
      this.groups.push(g);
    }
    g.devices.push(dev);
    this.devGroup.set(dev, g);
    this.log.event('add_device', iommu, { device: dev, group: g.id });
    if (!g.defaultDomain) {
      const want = ops.defDomainType ?? defaultType;
      let d = yield* this.domainAlloc(iommu, want);
      if (typeof d === 'number' && want === 'identity') d = yield* this.domainAlloc(iommu, 'dma');
      if (typeof d === 'number') {
        this.log.printk('err', `${dev}: failed to allocate default IOMMU domain: ${errname(d)}`, iommu);
        return 0;
      }
      g.defaultDomain = d;
    }
    const dd = g.defaultDomain;
    if (dd.iovad && ops.getResvRegions) {
      for (const rr of ops.getResvRegions(dev)) {
        if (rr.type === 'sw-msi') continue;
        const gran = dd.iovad.granule;
        dd.iovad.reserve(Math.floor(rr.start / gran), Math.floor((rr.start + rr.length - 1) / gran));
      }
    }
    const target = g.domain ?? dd;
    const ar = yield* ops.attachDev(target, dev);
    if (ar < 0) {
      this.log.printk('err', `${dev}: attach to default domain failed: ${errname(ar)}`, iommu);
      return ar;
    }
    g.domain = target;
    return 0;
  }

  /** iommu_release_device. */
  *releaseDevice(dev: string): Op<void> {
    const g = this.devGroup.get(dev);
    const ops = this.devIommu.get(dev);
    if (!g || !ops) return;
    g.devices = g.devices.filter((x) => x !== dev);
    this.devGroup.delete(dev);
    this.devIommu.delete(dev);
    if (ops.releaseDevice) yield* ops.releaseDevice(dev);
  }

  /**
   * iommu_attach_device (§7.3): -ENODEV for a device without IOMMU; -EINVAL for a group of several
   * devices (those attach with iommu_attach_group), then as attachGroup.
   */
  *attachDevice(d: IommuDomain, dev: string): Op<number> {
    const g = this.devGroup.get(dev);
    if (!g) return -ENODEV;
    if (g.devices.length !== 1) return -EINVAL;
    return yield* this.attachToGroup(d, g, `iommu_attach_device(${dev})`);
  }

  /**
   * iommu_attach_group: -EINVAL for a freed domain or one of another driver; -EBUSY if the group
   * is on a domain other than its default or blocking one; then attach_dev for every device of the
   * group, rolled back to the previous domain on failure.
   */
  *attachGroup(d: IommuDomain, group: string): Op<number> {
    return yield* this.attachToGroup(d, this.groupNamed(group), `iommu_attach_group(${group})`);
  }

  private *attachToGroup(d: IommuDomain, g: IommuGroup, call: string): Op<number> {
    if (d.freed) {
      this.log.warn(`${call}: domain ${d.id} was freed`, { domain: d.id, group: g.id });
      return -EINVAL;
    }
    const ops = this.iommus.get(g.iommu)!;
    if (d.model !== ops.model) return -EINVAL;
    if (g.domain && g.domain !== g.defaultDomain && g.domain !== g.blockingDomain) return -EBUSY;
    return yield* this.groupSetDomain(g, d);
  }

  /** iommu_detach_device: a group of several devices WARNs and stays; otherwise as detachGroup. */
  *detachDevice(d: IommuDomain, dev: string): Op<void> {
    const g = this.devGroup.get(dev);
    if (!g) return;
    if (g.devices.length !== 1) {
      this.log.warn(`iommu_detach_device(${dev}): group ${g.id} has ${g.devices.length} devices`, { domain: d.id, device: dev });
      return;
    }
    yield* this.detachFromGroup(d, g, `iommu_detach_device(${dev})`);
  }

  /**
   * iommu_detach_group: WARN unless the domain is the group's current one; then back to the core
   * domain (default domain; or detach_dev for old drivers with none).
   */
  *detachGroup(d: IommuDomain, group: string): Op<void> {
    yield* this.detachFromGroup(d, this.groupNamed(group), `iommu_detach_group(${group})`);
  }

  private *detachFromGroup(d: IommuDomain, g: IommuGroup, call: string): Op<void> {
    if (d !== g.domain) {
      this.log.warn(`${call}: domain ${d.id} is not attached (group ${g.id} is on ${g.domain ? `domain ${g.domain.id}` : 'no domain'})`, { domain: d.id, group: g.id });
      return;
    }
    if (g.defaultDomain) {
      yield* this.groupSetDomain(g, g.defaultDomain);
      return;
    }
    const ops = this.iommus.get(g.iommu)!;
    if (ops.detachDev) for (const x of g.devices) yield* ops.detachDev(d, x);
    g.domain = null;
    this.log.event('detach', g.iommu, { domain: d.id, group: g.id }, 'attach');
  }

  /** The name scripts know a group by: its number, as in /sys/kernel/iommu_groups. */
  groupName(dev: string): string {
    const g = this.devGroup.get(dev);
    if (!g) throw new Error(`${dev} is in no IOMMU group (no IOMMU, or not probed)`);
    return String(g.id);
  }

  private groupNamed(group: string): IommuGroup {
    const g = this.groups.find((x) => String(x.id) === group);
    if (!g) throw new Error(`no IOMMU group '${group}' (have: ${this.groups.map((x) => x.id).join(', ')})`);
    return g;
  }

  private *groupSetDomain(g: IommuGroup, d: IommuDomain): Op<number> {
    if (g.domain === d) return 0;
    const ops = this.iommus.get(g.iommu)!;
    const prev = g.domain;
    for (let i = 0; i < g.devices.length; i++) {
      const r = yield* ops.attachDev(d, g.devices[i]!);
      if (r < 0) {
        this.log.printk('err', `attach of domain ${d.id} to ${g.devices[i]} failed: ${errname(r)}`, g.iommu);
        if (prev) for (let j = 0; j < i; j++) yield* ops.attachDev(prev, g.devices[j]!);
        return r;
      }
    }
    g.domain = d;
    this.log.event('attach', g.iommu, { domain: d.id, type: d.type, group: g.id, devices: g.devices.join(',') }, 'attach');
    return 0;
  }

  /**
   * iommu_pgsize: the largest supported page size that fits the remaining size and the alignment
   * of iova and paddr; the count (in this.pgcount) stops where a larger page size becomes usable.
   */
  private pgsize(d: IommuDomain, iova: number, paddr: number, size: number): number {
    const sizes = d.pgsizes;
    const align = Math.min(ffs(iova), ffs(paddr));
    let idx = -1;
    for (let i = 0; i < sizes.length; i++) {
      const s = sizes[i]!;
      if (s <= size && 2 ** align >= s) {
        idx = i;
        break;
      }
    }
    const pg = sizes[idx]!;
    let sz = size;
    if (idx > 0) {
      const next = sizes[idx - 1]!;
      const off = iova % next;
      if (off === paddr % next) {
        const offset = next - off;
        if (offset + next <= sz) sz = offset;
      }
    }
    this.pgcount = Math.floor(sz / pg);
    return pg;
  }

  private minPagesz(d: IommuDomain): number {
    return d.pgsizes[d.pgsizes.length - 1] ?? 0;
  }

  /** iommu_map: map_nosync then iotlb_sync_map; a failed sync unmaps the range again. */
  *map(d: IommuDomain, iova: number, paddr: number, size: number, prot: number): Op<number> {
    const r = yield* this.mapNosync(d, iova, paddr, size, prot);
    if (r < 0) return r;
    const ops = d.ops;
    if (ops.iotlbSyncMap) {
      const s = yield* ops.iotlbSyncMap(d, iova, size);
      if (s < 0) {
        yield* this.unmap(d, iova, size);
        return s;
      }
    }
    return 0;
  }

  /** iommu_map_nosync: the page-size loop; whatever was mapped is unmapped again on error. */
  *mapNosync(d: IommuDomain, iova: number, paddr: number, size: number, prot: number): Op<number> {
    if (!this.checkLive(d, 'iommu_map')) return -EINVAL;
    if (!isPaging(d.type)) return -EINVAL;
    const ops = d.ops;
    const min = this.minPagesz(d);
    if (min === 0) return -ENODEV;
    if (iova % min !== 0 || paddr % min !== 0 || size % min !== 0) {
      this.log.printk('err', `unaligned: iova ${hex(iova)} pa ${hex(paddr)} size ${hex(size)} min_pagesz ${hex(min)}`, d.iommu);
      return -EINVAL;
    }
    const out: MapOut = { mapped: 0 };
    let left = size;
    let va = iova;
    let pa = paddr;
    let ret = 0;
    while (left > 0) {
      const pg = this.pgsize(d, va, pa, left);
      out.mapped = 0;
      ret = yield* ops.mapPages(d, va, pa, pg, this.pgcount, prot, out);
      left -= out.mapped;
      if (ret < 0) break;
      va += out.mapped;
      pa += out.mapped;
    }
    if (ret < 0) {
      if (size - left > 0) yield* this.unmap(d, iova, size - left);
      return ret;
    }
    this.opts.observer?.mapped(d, iova, paddr, size);
    return 0;
  }

  /** iommu_unmap: bytes unmapped (stops at the first hole), then one iotlb_sync. */
  *unmap(d: IommuDomain, iova: number, size: number): Op<number> {
    const gather = new IotlbGather();
    const n = yield* this.unmapFast(d, iova, size, gather);
    yield* this.iotlbSync(d, gather);
    if (n < size && !d.freed) this.opts.observer?.unmapIncomplete(d, iova, size, n);
    return n;
  }

  /** iommu_unmap_fast / __iommu_unmap: the caller syncs the gather. */
  *unmapFast(d: IommuDomain, iova: number, size: number, gather: IotlbGather): Op<number> {
    if (!this.checkLive(d, 'iommu_unmap')) return 0;
    if (!isPaging(d.type)) return 0;
    const ops = d.ops;
    const min = this.minPagesz(d);
    if (min === 0) return 0;
    if (iova % min !== 0 || size % min !== 0) {
      this.log.printk('err', `unaligned: iova ${hex(iova)} size ${hex(size)} min_pagesz ${hex(min)}`, d.iommu);
      return 0;
    }
    let unmapped = 0;
    let va = iova;
    while (unmapped < size) {
      const pg = this.pgsize(d, va, va, size - unmapped);
      const n = yield* ops.unmapPages(d, va, pg, this.pgcount, gather);
      if (n === 0) break;
      va += n;
      unmapped += n;
    }
    if (unmapped > 0) this.opts.observer?.unmapped(d, iova, unmapped);
    return unmapped;
  }

  /** iommu_iotlb_sync: the driver's iotlb_sync, then the gather starts over. */
  *iotlbSync(d: IommuDomain, gather: IotlbGather): Op<void> {
    const ops = d.ops;
    if (ops.iotlbSync && !d.freed) yield* ops.iotlbSync(d, gather);
    gather.init();
  }

  /**
   * iommu_iotlb_gather_add_page (for drivers and io-pgtable): a different page size or a disjoint
   * range syncs what was gathered first.
   */
  *gatherAddPage(d: IommuDomain, gather: IotlbGather, iova: number, size: number): Op<void> {
    if ((gather.pgsize && gather.pgsize !== size) || gather.isDisjoint(iova, size)) yield* this.iotlbSync(d, gather);
    gather.pgsize = size;
    gather.addRange(iova, size);
  }

  /** iommu_flush_iotlb_all. */
  *flushIotlbAll(d: IommuDomain): Op<void> {
    const ops = d.ops;
    if (ops.flushIotlbAll) yield* ops.flushIotlbAll(d);
  }

  /**
   * iommu_map_sg: physically contiguous neighbours are mapped in one go; one iotlb_sync_map for
   * everything. Bytes mapped, or -errno after unmapping what was done.
   */
  *mapSg(d: IommuDomain, iova: number, segs: readonly { pa: number; len: number }[], prot: number): Op<number> {
    let mapped = 0;
    let start = 0;
    let len = 0;
    let ret = 0;
    for (let i = 0; i <= segs.length; i++) {
      const s = segs[Math.min(i, segs.length - 1)];
      const flush = i === segs.length || (len > 0 && s!.pa !== start + len);
      if (flush && len > 0) {
        ret = yield* this.mapNosync(d, iova + mapped, start, len, prot);
        if (ret < 0) break;
        mapped += len;
        len = 0;
      }
      if (i === segs.length) break;
      if (len > 0) len += s!.len;
      else {
        len = s!.len;
        start = s!.pa;
      }
    }
    if (ret === 0) {
      const ops = d.ops;
      if (ops.iotlbSyncMap) ret = yield* ops.iotlbSyncMap(d, iova, mapped);
    }
    if (ret < 0) {
      if (mapped > 0) yield* this.unmap(d, iova, mapped);
      return ret;
    }
    return mapped;
  }

  /** iommu_iova_to_phys: identity returns the IOVA, blocked 0, paging domains ask the driver. */
  *iovaToPhys(d: IommuDomain, iova: number): Op<number> {
    if (d.type === 'identity') return iova;
    if (d.type === 'blocked') return 0;
    if (!this.checkLive(d, 'iommu_iova_to_phys')) return 0;
    return yield* d.ops.iovaToPhys(d, iova);
  }

  /** iommu_set_fault_handler: refused (WARN) on DMA-API domains. */
  setFaultHandler(d: IommuDomain, handler: FaultHandler | null): void {
    if (d.iovad) {
      this.log.warn(`iommu_set_fault_handler: domain ${d.id} is a DMA domain`, { domain: d.id });
      return;
    }
    d.faultHandler = handler;
  }

  /** report_iommu_fault: the domain's handler's result, or -ENOSYS; always traced. */
  reportFault(d: IommuDomain, dev: string, iova: number, flags: number): number {
    this.log.event('io_page_fault', d.iommu, { device: dev, iova: hex(iova), flags, domain: d.id }, 'fault');
    return d.faultHandler ? d.faultHandler(d, dev, iova, flags) : -ENOSYS;
  }

  /** Whether every driver can be snapshotted now. */
  snapshotReady(): boolean {
    return [...this.iommus.values()].every((ops) => ops.snapshotReady?.() ?? true);
  }

  /**
   * Explorer checkpoints: domains (objects kept, fields restored; domains allocated later vanish),
   * groups, device bindings, and each driver's state through its snapshot hooks.
   */
  snapshot(): IommuCoreSnapshot {
    const domains: DomainState[] = [];
    for (const d of this.domains.values()) {
      if (d.priv !== null && !d.ops.snapshotDomain) throw new Error(`${d.iommu}: the ${d.model} driver cannot be checkpointed (no snapshotDomain)`);
      domains.push({
        d,
        pgsizeBitmap: d.pgsizeBitmap,
        geometry: { ...d.geometry },
        priv: d.priv,
        privState: d.priv === null ? null : d.ops.snapshotDomain!(d),
        iovad: d.iovad,
        iovadState: d.iovad?.snapshot() ?? null,
        freed: d.freed,
        faultHandler: d.faultHandler,
        pgsizes: d.pgsizes.slice(),
      });
    }
    return {
      domains,
      groups: this.groups.map((g) => ({ g, devices: g.devices.slice(), defaultDomain: g.defaultDomain, domain: g.domain, blockingDomain: g.blockingDomain })),
      devGroup: [...this.devGroup],
      devIommu: [...this.devIommu],
      nextDomainId: this.nextDomainId,
      nextGroupId: this.nextGroupId,
      drivers: [...this.iommus.values()].map((ops) => ({ ops, variant: { ...ops.variant }, state: ops.snapshot?.() })),
    };
  }

  restore(s: IommuCoreSnapshot): void {
    this.domains = new Map();
    for (const x of s.domains) {
      const d = x.d;
      this.domains.set(d.id, d);
      d.pgsizeBitmap = x.pgsizeBitmap;
      d.geometry = { ...x.geometry };
      d.priv = x.priv;
      if (x.priv !== null) d.ops.restoreDomain!(d, x.privState);
      d.iovad = x.iovad;
      if (x.iovad && x.iovadState) x.iovad.restore(x.iovadState);
      d.freed = x.freed;
      d.faultHandler = x.faultHandler;
      d.pgsizes = x.pgsizes.slice();
    }
    this.groups = s.groups.map((x) => {
      Object.assign(x.g, { devices: x.devices.slice(), defaultDomain: x.defaultDomain, domain: x.domain, blockingDomain: x.blockingDomain });
      return x.g;
    });
    this.devGroup = new Map(s.devGroup);
    this.devIommu = new Map(s.devIommu);
    this.nextDomainId = s.nextDomainId;
    this.nextGroupId = s.nextGroupId;
    for (const x of s.drivers) {
      for (const k of Object.keys(x.ops.variant)) if (!(k in x.variant)) delete x.ops.variant[k];
      Object.assign(x.ops.variant, x.variant);
      x.ops.restore?.(x.state);
    }
  }


  /** An op on a freed domain is a use-after-free in the caller: WARN, and refuse. */
  private checkLive(d: IommuDomain, what: string): boolean {
    if (!d.freed) return true;
    this.log.warn(`${what}: domain ${d.id} (${d.iommu}) was freed`, { domain: d.id, iommu: d.iommu });
    return false;
  }
}
