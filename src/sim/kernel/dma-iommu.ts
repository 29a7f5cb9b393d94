/**
 * The DMA API over an IOMMU (drivers/iommu/dma-iommu.c, ~v6.16 behaviour; §5): map/unmap single,
 * map/unmap sg with segment merging, coherent allocations with contiguous or page-array backing.
 * Devices without an IOMMU, or whose default domain is identity, get dma-direct (IOVA = PA).
 *
 * Problem P5: beside the kernel's own logic, a ledger records every IOVA range this layer handed out
 * and every unmap. An unmap of a range that is not live (double unmap, never mapped) or whose size,
 * start or device differs from the mapping is reported naming both calls, the IOVA and the sizes.
 * Then the kernel's behaviour runs on regardless (the same WARNs, the IOVA freed anyway into the
 * rcache), so the consequences (aliasing, a later fault) happen as on a real system.
 */
import type { Op } from '../core/coop';
import type { FindingSink } from '../core/findings';
import type { Trace } from '../core/trace';
import { EINVAL, ENOMEM, hex } from './errno';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, IotlbGather, type IommuCore, type IommuDomain } from './iommu-core';
import { orderBase2, type IovaDomain } from './iova';
import { KernelLog } from './klog';
import { MAX_ORDER, PAGE_SIZE, type PageAllocator } from './page-alloc';
import type { KernelPort } from './port';

export type DmaDirection = 'to-device' | 'from-device' | 'bidirectional';

/** What a failed mapping returns (DMA_MAPPING_ERROR, ~0 in the kernel). */
export const DMA_MAPPING_ERROR = -1;

/** A master as the DMA API sees it. */
export interface DmaDevice {
  name: string;
  /** dev_is_dma_coherent: no CPU cache maintenance needed. */
  coherent: boolean;
  dmaMask: number;
  coherentDmaMask: number;
  /** dma_get_max_seg_size: 64 KiB unless the driver raised it. */
  maxSegSize: number;
  /** dma_get_seg_boundary; 0 = none (ULONG_MAX). */
  segBoundaryMask: number;
}

export interface DmaSegment {
  iova: number;
  len: number;
}

export type CoherentBacking = 'contiguous' | 'pages';

export interface CoherentBuffer {
  iova: number;
  /** First page (the whole buffer for contiguous backing). */
  pa: number;
  /** Every page, in IOVA order. */
  pages: number[];
}

type Call = 'dma_map_single' | 'dma_unmap_single' | 'dma_map_sg' | 'dma_unmap_sg' | 'dma_alloc_coherent' | 'dma_free_coherent';

interface CallInfo {
  call: Call;
  site: string | undefined;
  time: number;
}

/** One IOVA range this layer handed out. */
interface Mapping extends CallInfo {
  dev: string;
  /** Granule-aligned start and length of the mapping. */
  iova: number;
  size: number;
  /** What the IOVA allocator handed out (rounded up). */
  allocated: number;
  /** The segments of a map_sg (for CPU syncs at unmap_sg). */
  sg?: readonly { pa: number; len: number }[];
  backing?: { kind: 'contiguous'; pa: number; order: number } | { kind: 'pages'; pages: number[] };
}

interface Unmapped extends CallInfo {
  mapping: Mapping;
}

/** What the ledger knows of one IOVA: its live mapping, or the unmap that ended the last one. */
interface LedgerEntry {
  live: Mapping | undefined;
  freed: Unmapped | undefined;
}

/** By granule-aligned IOVA. Entries are updated in place: a map/unmap cycle adds or deletes no key. */
type Ledger = Map<number, LedgerEntry>;

export interface DmaIommuOptions {
  core: IommuCore;
  pages: PageAllocator;
  port: KernelPort;
  now: () => number;
  trace?: Trace;
  findings?: FindingSink;
  /** Where the current DMA API call comes from (a script line), for P5 reports. */
  callSite?: () => string | undefined;
}

function prot(dir: DmaDirection, coherent: boolean): number {
  const p = coherent ? IOMMU_CACHE : 0;
  if (dir === 'to-device') return p | IOMMU_READ;
  if (dir === 'from-device') return p | IOMMU_WRITE;
  return p | IOMMU_READ | IOMMU_WRITE;
}

function copyLedger(l: Ledger): Ledger {
  return new Map([...l].map(([iova, e]) => [iova, { live: e.live, freed: e.freed }]));
}

function fmtCall(c: CallInfo): string {
  return `${c.call}${c.site ? ` at ${c.site}` : ''} (t=${c.time})`;
}

export class DmaIommu {
  private devices = new Map<string, DmaDevice>();
  private ledgers = new Map<number, Ledger>();
  private readonly log: KernelLog;
  private readonly core: IommuCore;

  constructor(private readonly opts: DmaIommuOptions) {
    this.core = opts.core;
    this.log = new KernelLog(opts.now, opts.trace, opts.findings);
  }

  addDevice(d: Partial<DmaDevice> & { name: string }): void {
    this.devices.set(d.name, {
      name: d.name,
      coherent: d.coherent ?? false,
      dmaMask: d.dmaMask ?? 2 ** 32 - 1,
      coherentDmaMask: d.coherentDmaMask ?? d.dmaMask ?? 2 ** 32 - 1,
      maxSegSize: d.maxSegSize ?? 0x10000,
      segBoundaryMask: d.segBoundaryMask ?? 0,
    });
  }

  device(name: string): DmaDevice {
    const d = this.devices.get(name);
    if (!d) throw new Error(`DMA API: no device '${name}'`);
    return d;
  }

  /** Live mappings of a device (or all), for views and checkers. */
  mappings(dev?: string): { dev: string; iova: number; size: number; call: string; site?: string; time: number }[] {
    const out: { dev: string; iova: number; size: number; call: string; site?: string; time: number }[] = [];
    for (const l of this.ledgers.values()) {
      for (const { live: m } of l.values()) if (m && (!dev || m.dev === dev)) out.push({ dev: m.dev, iova: m.iova, size: m.size, call: m.call, site: m.site, time: m.time });
    }
    return out.sort((a, b) => a.iova - b.iova);
  }

  /** Explorer checkpoints: the ledgers (mappings and unmaps are immutable records; entries are not). */
  snapshot(): [number, Ledger][] {
    return [...this.ledgers].map(([id, l]) => [id, copyLedger(l)]);
  }

  restore(s: [number, Ledger][]): void {
    this.ledgers = new Map(s.map(([id, l]) => [id, copyLedger(l)]));
  }

  private ledger(d: IommuDomain): Ledger {
    let l = this.ledgers.get(d.id);
    if (!l) {
      l = new Map();
      this.ledgers.set(d.id, l);
    }
    return l;
  }

  private info(call: Call): CallInfo {
    return { call, site: this.opts.callSite?.(), time: this.opts.now() };
  }

  /** arch_sync_dma_for_device (arm64 cleans to PoC whatever the direction). */
  private syncForDevice(dev: DmaDevice, pa: number, len: number): void {
    if (!dev.coherent) this.opts.port.cleanDcache(pa, len);
  }

  /** arch_sync_dma_for_cpu: nothing for to-device, else invalidate. */
  private syncForCpu(dev: DmaDevice, pa: number, len: number, dir: DmaDirection): void {
    if (!dev.coherent && dir !== 'to-device') this.opts.port.invalidateDcache(pa, len);
  }

  /** iommu_dma_alloc_iova: the IOVA (0 on failure) below min(mask, aperture if forced). */
  private allocIova(d: IommuDomain, iovad: IovaDomain, size: number, mask: number): number {
    let limit = mask;
    if (d.geometry.forceAperture) limit = Math.min(limit, d.geometry.apertureEnd);
    const pfn = iovad.allocFast(size / iovad.granule, Math.floor(limit / iovad.granule), true);
    return pfn * iovad.granule;
  }

  private record(d: IommuDomain, iovad: IovaDomain, call: CallInfo, dev: string, iova: number, size: number, extra?: Pick<Mapping, 'sg' | 'backing'>): void {
    const l = this.ledger(d);
    let pages = size / iovad.granule;
    if (pages < 32) pages = 1 << orderBase2(pages);
    const m: Mapping = { call: call.call, site: call.site, time: call.time, dev, iova, size, allocated: pages * iovad.granule, sg: extra?.sg, backing: extra?.backing };
    const e = l.get(iova);
    if (e) {
      e.live = m;
      e.freed = undefined;
    } else l.set(iova, { live: m, freed: undefined });
  }

  /**
   * The P5 check for an unmap of [dmaAddr, +size) by dev: the live mapping it ends, or undefined.
   * Reports double-unmap / unmap-mismatch naming this call and the earlier one.
   */
  private checkUnmap(d: IommuDomain, iovad: IovaDomain, dev: string, dmaAddr: number, size: number, now: CallInfo): Mapping | undefined {
    const l = this.ledger(d);
    const iova = dmaAddr - iovad.iovaOffset(dmaAddr);
    const len = iovad.iovaAlign(size + iovad.iovaOffset(dmaAddr));
    const e = l.get(iova);
    const m = e?.live;
    if (m && m.size === len && m.dev === dev) {
      e!.live = undefined;
      e!.freed = { call: now.call, site: now.site, time: now.time, mapping: m };
      return m;
    }
    const where = { device: dev, iova: hex(dmaAddr), size, iommu: d.iommu, domain: d.id, ...(now.site ? { site: now.site } : {}) };
    const what = `${now.call}(${dev}, ${hex(dmaAddr)}, size ${hex(size)}) ${fmtCall(now).slice(now.call.length + 1)}`;
    if (!m) {
      const f = e?.freed;
      if (f) {
        this.opts.findings?.report({
          kind: 'double-unmap',
          severity: 'error',
          message: `double unmap: ${what}; IOVA ${hex(iova)} was already unmapped by ${fmtCall(f)}; it was mapped by ${fmtCall(f.mapping)} with size ${hex(f.mapping.size)}`,
          where: { ...where, firstUnmap: fmtCall(f), mappedSize: f.mapping.size },
        });
        return undefined;
      }
      const inside = [...l.values()].find((x) => x.live && iova > x.live.iova && iova < x.live.iova + x.live.size)?.live;
      this.opts.findings?.report(
        inside
          ? {
              kind: 'unmap-mismatch',
              severity: 'error',
              message: `unmap does not match the mapping: ${what} points inside the mapping at ${hex(inside.iova)} (size ${hex(inside.size)}) made by ${fmtCall(inside)}`,
              where: { ...where, mappedIova: hex(inside.iova), mappedSize: inside.size, mappedBy: fmtCall(inside) },
            }
          : {
              kind: 'double-unmap',
              severity: 'error',
              message: `unmap of an IOVA that was never mapped: ${what}`,
              where,
            },
      );
      return undefined;
    }
    const why = m.dev !== dev ? `it was mapped for ${m.dev}` : `size ${hex(len)} differs from the mapped size ${hex(m.size)} (the IOVA allocator handed out ${hex(m.allocated)})`;
    this.opts.findings?.report({
      kind: 'unmap-mismatch',
      severity: 'error',
      message: `unmap does not match the mapping: ${what}: ${why}; mapped by ${fmtCall(m)}`,
      where: { ...where, mappedSize: m.size, allocatedSize: m.allocated, mappedBy: fmtCall(m) },
    });
    e!.live = undefined;
    e!.freed = { ...now, mapping: m };
    return m;
  }

  /**
   * __iommu_dma_unmap: unmap the granule-aligned range, WARN if the page tables held a different
   * amount, sync the IOTLB, and free the IOVA (into the rcache: no check) whatever happened.
   */
  private *dmaUnmap(d: IommuDomain, iovad: IovaDomain, dmaAddr: number, size: number, reported: boolean): Op<void> {
    const off = iovad.iovaOffset(dmaAddr);
    const iova = dmaAddr - off;
    const len = iovad.iovaAlign(size + off);
    const gather = new IotlbGather();
    const unmapped = yield* this.core.unmapFast(d, iova, len, gather);
    if (unmapped !== len) {
      const msg = `WARN: __iommu_dma_unmap: unmapped ${hex(unmapped)} != size ${hex(len)} at IOVA ${hex(iova)}`;
      if (reported) this.log.printk('warn', msg, d.iommu);
      else this.log.warn(msg, { iova: hex(iova), iommu: d.iommu });
    }
    yield* this.core.iotlbSync(d, gather);
    iovad.freeFast(iova / iovad.granule, len / iovad.granule);
  }

  /** The device's DMA domain and its IOVA domain, or null for dma-direct. */
  private dmaDomain(dev: string): IommuDomain | null {
    const d = this.core.dmaDomain(dev);
    return d && d.iovad ? d : null;
  }

  // --- map / unmap single ---------------------------------------------------------------------

  /** dma_map_single / dma_map_page: the DMA address, or DMA_MAPPING_ERROR. */
  *mapSingle(devName: string, pa: number, size: number, dir: DmaDirection): Op<number> {
    const dev = this.device(devName);
    const call = this.info('dma_map_single');
    this.syncForDevice(dev, pa, size);
    const d = this.dmaDomain(devName);
    if (!d) return pa;
    const iovad = d.iovad!;
    const off = iovad.iovaOffset(pa);
    const len = iovad.iovaAlign(size + off);
    const iova = this.allocIova(d, iovad, len, dev.dmaMask);
    if (iova === 0) return DMA_MAPPING_ERROR;
    const r = yield* this.core.map(d, iova, pa - off, len, prot(dir, dev.coherent));
    if (r < 0) {
      iovad.freeFast(iova / iovad.granule, len / iovad.granule);
      return DMA_MAPPING_ERROR;
    }
    this.record(d, iovad, call, devName, iova, len);
    this.log.event(call.call, devName, { iova: iova + off, pa, size, dir });
    return iova + off;
  }

  /**
   * dma_unmap_single / dma_unmap_page (modern): the handle is translated first; if it is not
   * mapped, WARN and return with nothing unmapped or freed.
   */
  *unmapSingle(devName: string, handle: number, size: number, dir: DmaDirection): Op<void> {
    const dev = this.device(devName);
    const call = this.info('dma_unmap_single');
    const d = this.dmaDomain(devName);
    if (!d) {
      this.syncForCpu(dev, handle, size, dir);
      return;
    }
    const iovad = d.iovad!;
    const m = this.checkUnmap(d, iovad, devName, handle, size, call);
    this.log.event(call.call, devName, { iova: handle, size, dir });
    const phys = yield* this.core.iovaToPhys(d, handle);
    if (phys === 0) {
      this.log.printk('warn', `WARN: iommu_dma_unmap_page: ${hex(handle)} is not mapped`, d.iommu);
      return;
    }
    this.syncForCpu(dev, phys, size, dir);
    yield* this.dmaUnmap(d, iovad, handle, size, m === undefined || m.size !== iovad.iovaAlign(size + iovad.iovaOffset(handle)));
  }

  // --- scatter-gather -------------------------------------------------------------------------

  /**
   * dma_map_sg: one IOVA range for all segments (each rounded out to whole granules), mapped with
   * physically contiguous neighbours merged; then __finalise_sg merges segments into DMA segments.
   * The DMA segments, or -errno.
   */
  *mapSg(devName: string, segs: readonly { pa: number; len: number }[], dir: DmaDirection): Op<DmaSegment[] | number> {
    const dev = this.device(devName);
    const call = this.info('dma_map_sg');
    for (const s of segs) this.syncForDevice(dev, s.pa, s.len);
    const d = this.dmaDomain(devName);
    if (!d) return segs.map((s) => ({ iova: s.pa, len: s.len }));
    const iovad = d.iovad!;
    const offs: number[] = [];
    const aligned: { pa: number; len: number }[] = [];
    let iovaLen = 0;
    const mask = dev.segBoundaryMask;
    for (const s of segs) {
      const off = iovad.iovaOffset(s.pa);
      const len = iovad.iovaAlign(s.len + off);
      offs.push(off);
      // Pad the previous segment (its mapping grows too) so this one does not cross a boundary.
      if (mask && aligned.length > 0) {
        const pad = (mask - iovaLen + 1) & mask;
        if (pad && pad < len - 1) {
          aligned[aligned.length - 1]!.len += pad;
          iovaLen += pad;
        }
      }
      aligned.push({ pa: s.pa - off, len });
      iovaLen += len;
    }
    if (iovaLen === 0) return [];
    const iova = this.allocIova(d, iovad, iovaLen, dev.dmaMask);
    if (iova === 0) return -ENOMEM;
    const r = yield* this.core.mapSg(d, iova, aligned, prot(dir, dev.coherent));
    if (r < iovaLen) {
      iovad.freeFast(iova / iovad.granule, iovaLen / iovad.granule);
      return r < 0 ? r : -EINVAL;
    }
    // __finalise_sg.
    const out: DmaSegment[] = [];
    let curLen = 0;
    let dmaAddr = iova;
    for (let i = 0; i < segs.length; i++) {
      const sOff = offs[i]!;
      const sLen = segs[i]!.len;
      const sIovaLen = aligned[i]!.len;
      const cur = out[out.length - 1];
      if (cur && curLen && !sOff && (!mask || dmaAddr % (mask + 1) !== 0) && curLen + sLen <= dev.maxSegSize) {
        curLen += sLen;
        cur.len = curLen;
      } else {
        curLen = sLen;
        out.push({ iova: dmaAddr + sOff, len: curLen });
      }
      dmaAddr += sIovaLen;
      if (sLen + sOff < sIovaLen) curLen = 0;
    }
    this.record(d, iovad, call, devName, iova, iovaLen, { sg: segs.map((x) => ({ pa: x.pa, len: x.len })) });
    this.log.event(call.call, devName, { iova, segments: segs.length, dmaSegments: out.length, size: iovaLen, dir });
    return out;
  }

  /** dma_unmap_sg: one unmap from the first DMA segment to the end of the last non-empty one. */
  *unmapSg(devName: string, dmaSegs: readonly DmaSegment[], dir: DmaDirection): Op<void> {
    const dev = this.device(devName);
    const call = this.info('dma_unmap_sg');
    const d = this.dmaDomain(devName);
    if (!d || dmaSegs.length === 0) {
      if (!d) for (const s of dmaSegs) this.syncForCpu(dev, s.iova, s.len, dir);
      return;
    }
    const iovad = d.iovad!;
    const start = dmaSegs[0]!.iova;
    let end = start;
    for (const s of dmaSegs) if (s.len) end = s.iova + s.len;
    const m = this.ledger(d).get(start - iovad.iovaOffset(start))?.live;
    if (m?.sg) for (const ph of m.sg) this.syncForCpu(dev, ph.pa, ph.len, dir);
    const checked = this.checkUnmap(d, iovad, devName, start, end - start, call);
    this.log.event(call.call, devName, { iova: start, size: end - start, dir });
    yield* this.dmaUnmap(d, iovad, start, end - start, checked === undefined || checked.size !== iovad.iovaAlign(end - start + iovad.iovaOffset(start)));
  }

  // --- coherent allocations -------------------------------------------------------------------

  /**
   * dma_alloc_coherent: zeroed memory mapped for the device. 'pages' (default, a blocking gfp):
   * pages in the largest orders the domain's page sizes allow, one IOVA range, map_sg.
   * 'contiguous' (DMA_ATTR_FORCE_CONTIGUOUS): one block, one map. null on failure.
   */
  *allocCoherent(devName: string, size: number, opts: { backing?: CoherentBacking; singlePages?: boolean } = {}): Op<CoherentBuffer | null> {
    const dev = this.device(devName);
    const call = this.info('dma_alloc_coherent');
    const d = this.dmaDomain(devName);
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    const owner = { kind: 'dma-buffer' as const, dev: devName };
    const backing = d ? (opts.backing ?? 'pages') : 'contiguous';
    if (backing === 'contiguous') {
      const order = Math.ceil(Math.log2(bytes / PAGE_SIZE));
      const pa = this.opts.pages.allocPages(order, owner, { zero: true });
      if (pa === null) return null;
      // arch_dma_prep_coherent: the zeroes reach RAM, no line stays cached for the uncached alias.
      if (!dev.coherent) this.flush(pa, bytes);
      const pages = Array.from({ length: bytes / PAGE_SIZE }, (_, i) => pa + i * PAGE_SIZE);
      if (!d) return { iova: pa, pa, pages };
      const iovad = d.iovad!;
      const len = iovad.iovaAlign(bytes);
      const iova = this.allocIova(d, iovad, len, dev.coherentDmaMask);
      const r = iova === 0 ? -ENOMEM : yield* this.core.map(d, iova, pa, len, prot('bidirectional', dev.coherent));
      if (r < 0) {
        if (iova !== 0) iovad.freeFast(iova / iovad.granule, len / iovad.granule);
        this.opts.pages.freePages(pa, order);
        return null;
      }
      this.record(d, iovad, call, devName, iova, len, { backing: { kind: 'contiguous', pa, order } });
      this.log.event(call.call, devName, { iova, pa, size: bytes, backing });
      return { iova, pa, pages };
    }
    const dd = d!;
    const iovad = dd.iovad!;
    let orderMask = opts.singlePages ? 1 : Math.floor(dd.pgsizeBitmap / PAGE_SIZE) & ((2 << MAX_ORDER) - 1);
    if (orderMask === 0) orderMask = 1;
    const pages: number[] = [];
    let count = bytes / PAGE_SIZE;
    while (count > 0) {
      let got: number | null = null;
      let orderSize = 1;
      for (let o = MAX_ORDER; o >= 0; o--) {
        if (!(orderMask & (1 << o)) || 1 << o > count) continue;
        orderSize = 1 << o;
        got = this.opts.pages.allocPages(o, owner, { zero: true });
        if (got === null) continue;
        if (o > 0) this.opts.pages.splitPage(got);
        break;
      }
      if (got === null) {
        for (const p of pages) this.opts.pages.freePages(p, 0);
        return null;
      }
      for (let i = 0; i < orderSize; i++) pages.push(got + i * PAGE_SIZE);
      count -= orderSize;
    }
    const len = iovad.iovaAlign(bytes);
    const iova = this.allocIova(dd, iovad, len, dev.coherentDmaMask);
    const segs = pages.map((pa) => ({ pa, len: PAGE_SIZE }));
    if (!dev.coherent) for (const p of pages) this.flush(p, PAGE_SIZE);
    const r = iova === 0 ? -ENOMEM : yield* this.core.mapSg(dd, iova, segs, prot('bidirectional', dev.coherent));
    if (r < len) {
      if (iova !== 0) iovad.freeFast(iova / iovad.granule, len / iovad.granule);
      for (const p of pages) this.opts.pages.freePages(p, 0);
      return null;
    }
    this.record(dd, iovad, call, devName, iova, len, { backing: { kind: 'pages', pages } });
    this.log.event(call.call, devName, { iova, pages: pages.length, size: bytes, backing });
    return { iova, pa: pages[0]!, pages };
  }

  /** dma_free_coherent: unmap, then release the backing the mapping was made with. */
  *freeCoherent(devName: string, size: number, handle: number): Op<void> {
    const call = this.info('dma_free_coherent');
    const d = this.dmaDomain(devName);
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    if (!d) {
      this.opts.pages.freePages(handle);
      return;
    }
    const iovad = d.iovad!;
    const m = this.checkUnmap(d, iovad, devName, handle, bytes, call);
    this.log.event(call.call, devName, { iova: handle, size: bytes });
    yield* this.dmaUnmap(d, iovad, handle, bytes, m === undefined || m.size !== iovad.iovaAlign(bytes));
    if (!m?.backing) return;
    if (m.backing.kind === 'contiguous') this.opts.pages.freePages(m.backing.pa, m.backing.order);
    else for (const p of m.backing.pages) this.opts.pages.freePages(p, 0);
  }

  /** dma_sync_single_for_cpu. */
  syncSingleForCpu(devName: string, handle: number, size: number, dir: DmaDirection): Op<void> {
    return this.sync(devName, handle, size, dir, true);
  }

  /** dma_sync_single_for_device. */
  syncSingleForDevice(devName: string, handle: number, size: number, dir: DmaDirection): Op<void> {
    return this.sync(devName, handle, size, dir, false);
  }

  private *sync(devName: string, handle: number, size: number, dir: DmaDirection, forCpu: boolean): Op<void> {
    const dev = this.device(devName);
    if (dev.coherent) return;
    const d = this.dmaDomain(devName);
    const pa = d ? yield* this.core.iovaToPhys(d, handle) : handle;
    if (forCpu) this.syncForCpu(dev, pa, size, dir);
    else this.syncForDevice(dev, pa, size);
  }

  private flush(pa: number, len: number): void {
    this.opts.port.cleanDcache(pa, len);
    this.opts.port.invalidateDcache(pa, len);
  }

  /** Which path a device's DMA takes. */
  path(devName: string): 'iommu' | 'direct' {
    return this.dmaDomain(devName) ? 'iommu' : 'direct';
  }
}
