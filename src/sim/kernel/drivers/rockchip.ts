/**
 * rockchip-iommu (hardware-facts §2), as the newer upstream driver has it: per domain a 4 KiB
 * directory table and 4 KiB page tables edited under dt_lock, flushed for the non-coherent walker;
 * invalidation is synchronous inside map and unmap (ZAP_ONE_LINE on every instance of every attached
 * IOMMU that is runtime-active); the hardware is programmed from attach (if the IOMMU is active) and
 * from the runtime-PM callbacks, which masters reach through a stateless pm-runtime device link.
 *
 * Historic variant: zapOrder 'before-update' zaps the first and last IOVA before writing the PTEs
 * (the code before "Make sure that page table state is coherent", problems.md P1). pageFaultDone:
 * false is a fault handler that acknowledges the interrupt but never sends PAGE_FAULT_DONE, which
 * leaves the faulting master stalled (a driver bug to show, not an upstream version).
 * reprogramOnResume: false is a runtime_resume that does not run rk_iommu_enable (the v4.14 driver
 * had no runtime-PM callbacks): after its power domain was off, the IOMMU stays at reset.
 */
import type { Op } from '../../core/coop';
import { num } from '../../config/types';
import { RK_PAGE_SIZE, RK_PTE_READABLE, RK_PTE_WRITABLE, RK_VALID, rkDecodeAddr, rkDteIndex, rkEncodeAddr, rkPteIndex, type RkVersion } from '../../hw/rockchip-format';
import { RK_AUTO_GATING_DISABLE_FETCH_DTE_TIME_LIMIT, RK_CMD, RK_INT, RK_STATUS } from '../../hw/rockchip-regs';
import { EADDRINUSE, EFAULT, EINVAL, ENOMEM, ETIMEDOUT, hex } from '../errno';
import { IOMMU_READ, IOMMU_WRITE, type IommuDomain, type IommuOps } from '../iommu-core';
import type { DriverContext, KernelDriver } from '../kernel';
import { SpinLock } from '../spinlock';
import { variantFrom } from './variant';

const MMU_DTE_ADDR = 0x00;
const MMU_STATUS = 0x04;
const MMU_COMMAND = 0x08;
const MMU_PAGE_FAULT_ADDR = 0x0c;
const MMU_ZAP_ONE_LINE = 0x10;
const MMU_INT_CLEAR = 0x18;
const MMU_INT_MASK = 0x1c;
const MMU_INT_STATUS = 0x20;
const MMU_AUTO_GATING = 0x24;

const SPAGE = RK_PAGE_SIZE;
const NUM_DT_ENTRIES = 1024;
const DTE_ADDR_DUMMY = 0xcafebabe;
const FORCE_RESET_TIMEOUT_US = 100_000;
/** readx_poll_timeout(..., RK_MMU_POLL_PERIOD_US = 100, RK_MMU_POLL_TIMEOUT_US = 1000). */
const POLL_PERIOD_US = 100;
const POLL_TIMEOUT_US = 1000;

export interface RockchipVariant {
  zapOrder: 'after-update' | 'before-update';
  pageFaultDone: boolean;
  reprogramOnResume: boolean;
}

const DEFAULT_VARIANT: RockchipVariant = { zapOrder: 'after-update', pageFaultDone: true, reprogramOnResume: true };

export const ROCKCHIP_SYMBOLS = [
  'rk_iommu_map',
  'rk_iommu_unmap',
  'rk_iommu_zap_iova',
  'rk_iommu_zap_iova_first_last',
  'rk_iommu_enable',
  'rk_iommu_disable',
  'rk_iommu_attach_device',
] as const;

/** One probed rk_iommu as the domains it serves see it. */
interface RkIommu {
  readonly name: string;
  zapLines(iova: number, size: number): Op<void>;
}

interface RkDomain {
  version: RkVersion;
  dt: number;
  dtLock: SpinLock;
  /** Attached IOMMUs (iommus_lock is not contended in a model where list edits do not yield). */
  iommus: RkIommu[];
}

const priv = (d: IommuDomain): RkDomain => d.priv as RkDomain;

export function rockchipIommuDriver(): KernelDriver {
  return {
    model: 'rockchip',
    *probe(ctx: DriverContext): Op<IommuOps | number> {
      const { port, pages, pm, log, kprobes } = ctx;
      const name = ctx.config.name;
      const opts = ctx.config.options ?? {};
      const version: RkVersion = opts.version === 'v2' ? 'v2' : 'v1';
      const resetDisabled = opts.disableMmuReset === true;
      const bases = ctx.config.reg.map((r) => num(r.base));
      if (bases.length === 0) return -EINVAL;
      const variant = variantFrom(DEFAULT_VARIANT, opts);
      const pollCycles = POLL_PERIOD_US * ctx.cyclesPerUs;
      kprobes.declare(ROCKCHIP_SYMBOLS);
      /** iommu->domain; null is the identity domain. */
      let current: IommuDomain | null = null;
      let warnedRpm = false;

      const probe = (sym: string, when: 'entry' | 'return'): void => {
        if (kprobes.active) kprobes.hit(sym, when);
      };
      const rd = (b: number, off: number): Op<number> => port.readl(b + off);
      const wr = (b: number, off: number, v: number): Op<void> => port.writel(v >>> 0, b + off);
      /** dma_addr_dte / mk_dtentries: the format's address encoding. */
      const enc = (pa: number): number => rkEncodeAddr(version, pa);
      const dec = (e: number): number => rkDecodeAddr(version, e);
      const mkDte = (pt: number): number => (enc(pt) | RK_VALID) >>> 0;
      const mkPte = (pa: number, prot: number): number =>
        (enc(pa) | (prot & IOMMU_WRITE ? RK_PTE_WRITABLE : 0) | (prot & IOMMU_READ ? RK_PTE_READABLE : 0) | RK_VALID) >>> 0;
      /** rk_table_flush: dma_sync_single_for_device of count entries. */
      const tableFlush = (pa: number, count: number): void => port.cleanDcache(pa, count * 4);

      /** WARN_ON_ONCE(ret < 0) on pm_runtime_get_if_in_use. */
      const getIfInUse = (): number => {
        const r = pm.getIfInUse(name);
        if (r < 0 && !warnedRpm) {
          warnedRpm = true;
          log.warn(`${name}: pm_runtime_get_if_in_use() returned ${r}`, { iommu: name });
        }
        return r;
      };

      function* command(cmd: number): Op<void> {
        for (const b of bases) yield* wr(b, MMU_COMMAND, cmd);
      }

      /** Every instance's STATUS has the bit (set = true) or lacks it. */
      function* allStatus(bit: number, set: boolean): Op<boolean> {
        for (const b of bases) if (((yield* rd(b, MMU_STATUS)) & bit) !== 0 !== set) return false;
        return true;
      }

      function* poll(cond: () => Op<boolean>, timeoutUs = POLL_TIMEOUT_US): Op<number> {
        for (let t = 0; ; t += POLL_PERIOD_US) {
          if (yield* cond()) return 0;
          if (t >= timeoutUs) return -ETIMEDOUT;
          yield* port.delay(pollCycles);
        }
      }

      const stallActive = (): Op<boolean> => allStatus(RK_STATUS.STALL_ACTIVE, true);
      const stallInactive = (): Op<boolean> => allStatus(RK_STATUS.STALL_ACTIVE, false);
      const pagingOn = (): Op<boolean> => allStatus(RK_STATUS.PAGING_ENABLED, true);
      const pagingOff = (): Op<boolean> => allStatus(RK_STATUS.PAGING_ENABLED, false);

      function* timedOut(what: string): Op<void> {
        const st: string[] = [];
        for (const b of bases) st.push(hex(yield* rd(b, MMU_STATUS)));
        log.printk('err', `${name}: ${what} request timed out, status: ${st.join(' ')}`, name);
      }

      function* enableStall(): Op<number> {
        if (yield* stallActive()) return 0;
        // Stall can only be enabled while paging is on.
        if (!(yield* pagingOn())) return 0;
        yield* command(RK_CMD.ENABLE_STALL);
        const r = yield* poll(stallActive);
        if (r) yield* timedOut('Enable stall');
        return r;
      }

      function* disableStall(): Op<number> {
        if (!(yield* stallActive())) return 0;
        yield* command(RK_CMD.DISABLE_STALL);
        const r = yield* poll(stallInactive);
        if (r) yield* timedOut('Disable stall');
        return r;
      }

      function* enablePaging(): Op<number> {
        if (yield* pagingOn()) return 0;
        yield* command(RK_CMD.ENABLE_PAGING);
        const r = yield* poll(pagingOn);
        if (r) yield* timedOut('Enable paging');
        return r;
      }

      function* disablePaging(): Op<number> {
        if (!(yield* pagingOn())) return 0;
        yield* command(RK_CMD.DISABLE_PAGING);
        const r = yield* poll(pagingOff);
        if (r) yield* timedOut('Disable paging');
        return r;
      }

      function* forceReset(): Op<number> {
        if (resetDisabled) return 0;
        // DTE_ADDR must hold what is written to it before a reset can be trusted to clear it.
        const dummy = enc(DTE_ADDR_DUMMY);
        for (const b of bases) {
          yield* wr(b, MMU_DTE_ADDR, dummy);
          if ((yield* rd(b, MMU_DTE_ADDR)) !== dummy) {
            log.printk('err', `${name}: Error during raw reset. MMU_DTE_ADDR is not functioning`, name);
            return -EFAULT;
          }
        }
        yield* command(RK_CMD.FORCE_RESET);
        const r = yield* poll(function* () {
          for (const b of bases) if ((yield* rd(b, MMU_DTE_ADDR)) !== 0) return false;
          return true;
        }, FORCE_RESET_TIMEOUT_US);
        if (r) log.printk('err', `${name}: FORCE_RESET command timed out`, name);
        return r;
      }

      /** §2.5 rk_iommu_enable, for the current paging domain. */
      function* enable(): Op<number> {
        if (!current) return 0;
        probe('rk_iommu_enable', 'entry');
        const dt = priv(current).dt;
        let r = yield* enableStall();
        if (r) return r;
        r = yield* forceReset();
        if (r === 0) {
          for (const b of bases) {
            // mk_dtentries: the DTE encoding, valid bit included, as upstream writes it.
            yield* wr(b, MMU_DTE_ADDR, mkDte(dt));
            yield* wr(b, MMU_COMMAND, RK_CMD.ZAP_CACHE);
            yield* wr(b, MMU_INT_MASK, RK_INT.PAGE_FAULT | RK_INT.BUS_ERROR);
            // Workaround for the IOMMU blocking on DTE fetches.
            const g = yield* rd(b, MMU_AUTO_GATING);
            yield* wr(b, MMU_AUTO_GATING, g | RK_AUTO_GATING_DISABLE_FETCH_DTE_TIME_LIMIT);
          }
          r = yield* enablePaging();
        }
        yield* disableStall();
        probe('rk_iommu_enable', 'return');
        return r;
      }

      /** §2.5 rk_iommu_disable: errors are ignored, it keeps going. */
      function* disable(): Op<void> {
        probe('rk_iommu_disable', 'entry');
        yield* enableStall();
        yield* disablePaging();
        for (const b of bases) {
          yield* wr(b, MMU_INT_MASK, 0);
          yield* wr(b, MMU_DTE_ADDR, 0);
        }
        yield* disableStall();
      }

      const self: RkIommu = {
        name,
        /** rk_iommu_zap_lines: every page of the range on every instance, if the IOMMU is in use. */
        *zapLines(iova, size) {
          const r = getIfInUse();
          if (r <= 0) return;
          for (const b of bases) for (let off = 0; off < size; off += SPAGE) yield* wr(b, MMU_ZAP_ONE_LINE, iova + off);
          yield* pm.put(name);
        },
      };

      function* zapIova(d: IommuDomain, iova: number, size: number): Op<void> {
        probe('rk_iommu_zap_iova', 'entry');
        for (const iommu of priv(d).iommus) yield* iommu.zapLines(iova, size);
        probe('rk_iommu_zap_iova', 'return');
      }

      /** Only the first and last page tables of a range can be shared with other mappings. */
      function* zapIovaFirstLast(d: IommuDomain, iova: number, size: number): Op<void> {
        probe('rk_iommu_zap_iova_first_last', 'entry');
        yield* zapIova(d, iova, SPAGE);
        if (size > SPAGE) yield* zapIova(d, iova + size - SPAGE, SPAGE);
        probe('rk_iommu_zap_iova_first_last', 'return');
      }

      /** Under dt_lock: the PT for iova, created (zeroed, flushed, DTE written and flushed) if absent. */
      function* dteGetPageTable(d: IommuDomain, iova: number): Op<number> {
        const dom = priv(d);
        const dteAddr = dom.dt + rkDteIndex(iova) * 4;
        const dte = yield* port.read32(dteAddr);
        if (dte & RK_VALID) return dec(dte);
        const pt = pages.allocPages(0, { kind: 'pgtable', domain: d.id, level: 2, iommu: name }, { zero: true });
        if (pt === null) return -ENOMEM;
        // dma_map_single of the new table.
        port.cleanDcache(pt, SPAGE);
        yield* port.write32(dteAddr, mkDte(pt));
        tableFlush(dteAddr, 1);
        return pt;
      }

      /** Clear the valid bit of consecutive PTEs until the first invalid one; bytes unmapped. */
      function* unmapIova(pteAddr: number, size: number): Op<number> {
        const count = size / SPAGE;
        let i = 0;
        for (; i < count; i++) {
          const pte = yield* port.read32(pteAddr + i * 4);
          if (!(pte & RK_VALID)) break;
          yield* port.write32(pteAddr + i * 4, (pte & ~RK_VALID) >>> 0);
        }
        tableFlush(pteAddr, i);
        return i * SPAGE;
      }

      function* mapIova(d: IommuDomain, pteAddr: number, iova: number, paddr: number, size: number, prot: number): Op<number> {
        const count = size / SPAGE;
        if (variant.zapOrder === 'before-update') yield* zapIovaFirstLast(d, iova, size);
        for (let i = 0; i < count; i++) {
          const pte = yield* port.read32(pteAddr + i * 4);
          if (pte & RK_VALID) {
            yield* unmapIova(pteAddr, i * SPAGE);
            log.printk('err', `${name}: iova: ${hex(iova + i * SPAGE)} already mapped to ${hex(dec(pte))} cannot remap to phys: ${hex(paddr + i * SPAGE)} prot: ${hex(prot)}`, name);
            return -EADDRINUSE;
          }
          yield* port.write32(pteAddr + i * 4, mkPte(paddr + i * SPAGE, prot));
        }
        tableFlush(pteAddr, count);
        if (variant.zapOrder !== 'before-update') yield* zapIovaFirstLast(d, iova, size);
        return 0;
      }

      function* identityAttach(): Op<number> {
        if (!current) return 0;
        const dom = priv(current);
        current = null;
        dom.iommus = dom.iommus.filter((x) => x !== self);
        const r = getIfInUse();
        if (r > 0) {
          yield* disable();
          yield* pm.put(name);
        }
        return 0;
      }

      pm.setOps(name, {
        *runtimeSuspend() {
          if (current) yield* disable();
          return 0;
        },
        *runtimeResume() {
          return current && variant.reprogramOnResume ? yield* enable() : 0;
        },
      });
      pm.enable(name);

      const ops: IommuOps = {
        name,
        model: 'rockchip',
        variant,
        pgsizeBitmap: 0x007ff000,
        groupPolicy: 'single',
        identityDomain: true,
        *probeDevice(dev) {
          yield* pm.linkAdd(dev, name, ['stateless', 'pm-runtime']);
          return 0;
        },
        *releaseDevice(dev) {
          yield* pm.linkDel(dev, name);
        },
        *domainAllocPaging(d) {
          const dt = pages.allocPages(0, { kind: 'pgtable', domain: d.id, level: 1, iommu: name }, { zero: true });
          if (dt === null) return -ENOMEM;
          port.cleanDcache(dt, SPAGE);
          d.priv = { version, dt, dtLock: new SpinLock(`domain${d.id}.dt_lock`), iommus: [] } satisfies RkDomain;
          d.geometry = { apertureStart: 0, apertureEnd: 0xffffffff, forceAperture: true };
          return 0;
        },
        *domainFree(d) {
          const dom = priv(d);
          if (dom.iommus.length > 0) log.warn(`${name}: rk_iommu_domain_free: domain ${d.id} still attached to ${dom.iommus.map((x) => x.name).join(', ')}`, { iommu: name, domain: d.id });
          for (let i = 0; i < NUM_DT_ENTRIES; i++) {
            const dte = yield* port.read32(dom.dt + i * 4);
            if (dte & RK_VALID) pages.freePages(dec(dte), 0);
          }
          pages.freePages(dom.dt, 0);
        },
        *attachDev(d) {
          if (d.type === 'identity') return yield* identityAttach();
          probe('rk_iommu_attach_device', 'entry');
          if (current === d) return 0;
          if (priv(d).version !== version) return -EINVAL;
          yield* identityAttach();
          current = d;
          priv(d).iommus.push(self);
          const r = getIfInUse();
          if (r <= 0) return 0;
          const e = yield* enable();
          if (e) yield* identityAttach();
          yield* pm.put(name);
          return e;
        },
        *mapPages(d, iova, paddr, pgsize, _pgcount, prot, out) {
          probe('rk_iommu_map', 'entry');
          const dom = priv(d);
          yield* dom.dtLock.lock();
          const pt = yield* dteGetPageTable(d, iova);
          if (pt < 0) {
            dom.dtLock.unlock();
            return pt;
          }
          const r = yield* mapIova(d, pt + rkPteIndex(iova) * 4, iova, paddr, pgsize, prot);
          dom.dtLock.unlock();
          if (r === 0) out.mapped += pgsize;
          return r;
        },
        *unmapPages(d, iova, pgsize) {
          probe('rk_iommu_unmap', 'entry');
          const dom = priv(d);
          yield* dom.dtLock.lock();
          const dte = yield* port.read32(dom.dt + rkDteIndex(iova) * 4);
          if (!(dte & RK_VALID)) {
            dom.dtLock.unlock();
            return 0;
          }
          const n = yield* unmapIova(dec(dte) + rkPteIndex(iova) * 4, pgsize);
          dom.dtLock.unlock();
          // Zap every page unmapped: freshly unused tables must not stay cached.
          if (n > 0) yield* zapIova(d, iova, n);
          return n;
        },
        *iovaToPhys(d, iova) {
          const dom = priv(d);
          yield* dom.dtLock.lock();
          let pa = 0;
          const dte = yield* port.read32(dom.dt + rkDteIndex(iova) * 4);
          if (dte & RK_VALID) {
            const pte = yield* port.read32(dec(dte) + rkPteIndex(iova) * 4);
            if (pte & RK_VALID) pa = dec(pte) + (iova & (SPAGE - 1));
          }
          dom.dtLock.unlock();
          return pa;
        },
        *irq() {
          return yield* handleIrq();
        },
        snapshot: () => ({ current, warnedRpm }),
        restore(s) {
          ({ current, warnedRpm } = s as { current: IommuDomain | null; warnedRpm: boolean });
        },
        snapshotDomain: (d) => ({ dt: priv(d).dt, lock: priv(d).dtLock.snapshot(), iommus: priv(d).iommus.slice() }),
        restoreDomain(d, s) {
          const x = s as { dt: number; lock: string | null; iommus: RkIommu[] };
          const dom = priv(d);
          dom.dt = x.dt;
          dom.dtLock.restore(x.lock);
          dom.iommus = x.iommus.slice();
        },
      };

      /** §2.9: per instance, report a page fault, zap, acknowledge it; clear the status. */
      function* handleIrq(): Op<boolean> {
        if (getIfInUse() <= 0) return false;
        let handled = false;
        for (const b of bases) {
          const status = yield* rd(b, MMU_INT_STATUS);
          if (status === 0) continue;
          handled = true;
          const iova = yield* rd(b, MMU_PAGE_FAULT_ADDR);
          if (status & RK_INT.PAGE_FAULT) {
            const write = ((yield* rd(b, MMU_STATUS)) & RK_STATUS.PAGE_FAULT_IS_WRITE) !== 0;
            log.printk('err', `${name}: Page fault at ${hex(iova)} of type ${write ? 'write' : 'read'}`, name);
            if (current) ctx.core.reportFault(current, ctx.devices[0]?.name ?? name, iova, write ? 1 : 0);
            yield* wr(b, MMU_COMMAND, RK_CMD.ZAP_CACHE);
            if (variant.pageFaultDone) yield* wr(b, MMU_COMMAND, RK_CMD.PAGE_FAULT_DONE);
          }
          if (status & RK_INT.BUS_ERROR) log.printk('err', `${name}: BUS_ERROR occurred at ${hex(iova)}`, name);
          yield* wr(b, MMU_INT_CLEAR, status);
        }
        yield* pm.put(name);
        return handled;
      }

      return ops;
    },
  };
}
