/**
 * sun50i-iommu: the Allwinner H6 IOMMU driver (hardware-facts §1) as mainline has it since the
 * identity-domain / map_pages conversion (v6.7: static identity domain, domain_alloc_paging,
 * map_pages one 4 KiB page at a time, generic_single_device_group), reaching the hardware only
 * through the KernelPort.
 *
 * One IOMMU, one group, one TTB. As upstream: a paging domain's refcount is 1 at alloc and +1 per
 * attach_dev; attaching another paging domain drops a reference of the current one (tearing it
 * down only at zero) and runs the enable sequence for the new one, which rewrites TTB with ENABLE
 * still 1; the identity attach drops a reference too, so translation goes on through the old
 * domain until its count reaches zero. domain_free frees the DT only: the PTs are freed only by a
 * teardown, so freeing a domain leaks them (the checkers say `table-leak`) and freeing the live
 * one leaves TTB pointing at freed memory (`live-domain-free`). map before the domain's first
 * attach dereferences sun50i_domain->iommu, still NULL: an oops.
 *
 * Historic variants (kernel.driver(name).variant):
 * - flushTables: false: table writes are never cleaned to memory for the non-coherent walker (P6).
 * - detachBeforeFree: true: Robin Murphy's suggestion on the first posting: domain_free detaches a
 *   live domain (TTB off, everything invalidated) and frees its PTs with the DT (P7's fix).
 * - programInResumeOnly: true: the first posting's design, hardware programmed only from runtime-PM
 *   resume when a domain is attached; nothing is programmed with CONFIG_PM=n or power/control=on (P8).
 * - invalidateOnSwitch: false: the enable sequence leaves the TLBs and the PTW cache alone, so a
 *   domain switch keeps the old domain's translations (P9).
 * - leaveDomain: 'disable': this console's earlier model: leaving a domain (identity attach or a
 *   switch) disables at once (ENABLE=0, TTB=0), with no refcount: a switch has an untranslated window.
 * - mapBeforeAttach: 'ok': map and iotlb_sync_map of a never-attached domain succeed (no zap).
 */
import type { Op } from '../../core/coop';
import { num } from '../../config/types';
import { EBUSY, EFAULT, ENOMEM, ETIMEDOUT, hex } from '../errno';
import { IOMMU_READ, IOMMU_WRITE, type IommuDomain, type IommuOps } from '../iommu-core';
import type { DriverContext, KernelDriver } from '../kernel';
import type { PageOwner } from '../page-alloc';
import { SpinLock } from '../spinlock';
import { variantFrom } from './variant';

// Registers (offsets as the driver defines them).
const RESET_REG = 0x010;
const ENABLE_REG = 0x020;
const AUTO_GATING_REG = 0x040;
const TTB_REG = 0x050;
const TLB_PREFETCH_REG = 0x070;
const TLB_FLUSH_REG = 0x080;
const TLB_IVLD_ADDR_REG = 0x090;
const TLB_IVLD_ADDR_MASK_REG = 0x094;
const TLB_IVLD_ENABLE_REG = 0x098;
const PC_IVLD_ADDR_REG = 0x0a0;
const PC_IVLD_ENABLE_REG = 0x0a8;
const DM_AUT_CTRL_REG = (aci: number): number => 0x0b0 + ((aci >>> 1) << 2);
const INT_ENABLE_REG = 0x100;
const INT_CLR_REG = 0x104;
const INT_STA_REG = 0x108;
const INT_ERR_ADDR_REG = (m: number): number => 0x110 + 4 * m;
const INT_ERR_ADDR_L1_REG = 0x130;
const INT_ERR_ADDR_L2_REG = 0x134;
const INT_ERR_DATA_REG = (m: number): number => 0x150 + 4 * m;
const L1PG_INT_REG = 0x180;
const L2PG_INT_REG = 0x184;

const NUM_MASTERS = 6;
const MASTER_MASK = (1 << NUM_MASTERS) - 1;
const INT_INVALID_L1PG = 1 << 16;
const INT_INVALID_L2PG = 1 << 17;
const INT_MASK = INT_INVALID_L1PG | INT_INVALID_L2PG | MASTER_MASK;
const FLUSH_ALL = (1 << 17) | (1 << 16) | MASTER_MASK;
const TLB_PREFETCH_ALL = MASTER_MASK;

const ACI_NONE = 1;
const ACI_RD = 2;
const ACI_WR = 3;
const ACI_RD_WR = 4;
const autRd = (aci: number, m: number): number => 1 << ((aci & 1) * 16 + 2 * m);
const autWr = (aci: number, m: number): number => 1 << ((aci & 1) * 16 + 2 * m + 1);
const allMasters = (bit: (m: number) => number): number => {
  let v = 0;
  for (let m = 0; m < NUM_MASTERS; m++) v |= bit(m);
  return v >>> 0;
};

const SPAGE = 4096;
const SZ_1M = 1 << 20;
const DT_SIZE = 16 * 1024;
const DT_ORDER = 2;
const NUM_DT_ENTRIES = 4096;
const PT_SIZE = 1024;
const NUM_PT_ENTRIES = 256;

/** readl_poll_timeout_atomic(..., 1, 2000): 1 µs steps, 2 ms budget. */
const POLL_US = 1;
const POLL_TIMEOUT_US = 2000;

const dteIndex = (iova: number): number => iova >>> 20;
const pteIndex = (iova: number): number => (iova >>> 12) & 0xff;
const dteValid = (dte: number): boolean => (dte & 3) === 1;
const ptAddress = (dte: number): number => (dte & 0xfffffc00) >>> 0;
const pteValid = (pte: number): boolean => (pte & 2) !== 0;
const pageAddress = (pte: number): number => (pte & 0xfffff000) >>> 0;
const mkDte = (pt: number): number => ((pt & 0xfffffc00) | 1) >>> 0;

/** §1.4: READ|WRITE → RD_WR, READ → RD, WRITE → WR, neither → NONE. */
function aciOf(prot: number): number {
  const r = (prot & IOMMU_READ) !== 0;
  const w = (prot & IOMMU_WRITE) !== 0;
  return r && w ? ACI_RD_WR : r ? ACI_RD : w ? ACI_WR : ACI_NONE;
}

const mkPte = (pa: number, prot: number): number => ((pa & 0xfffff000) | (aciOf(prot) << 4) | 2) >>> 0;

export interface Sun50iVariant {
  flushTables: boolean;
  detachBeforeFree: boolean;
  programInResumeOnly: boolean;
  invalidateOnSwitch: boolean;
  leaveDomain: 'refcount' | 'disable';
  mapBeforeAttach: 'oops' | 'ok';
}

const DEFAULT_VARIANT: Sun50iVariant = {
  flushTables: true,
  detachBeforeFree: false,
  programInResumeOnly: false,
  invalidateOnSwitch: true,
  leaveDomain: 'refcount',
  mapBeforeAttach: 'oops',
};

/** Probe-able functions (kernel.kprobe / kernel.kretprobe). */
export const SUN50I_SYMBOLS = [
  'sun50i_iommu_map',
  'sun50i_iommu_unmap',
  'sun50i_iommu_zap_range',
  'sun50i_iommu_flush_all_tlb',
  'sun50i_iommu_enable',
  'sun50i_iommu_disable',
  'sun50i_iommu_attach_device',
  'sun50i_iommu_identity_attach',
  'sun50i_iommu_domain_free',
] as const;

interface Sun50iDomain {
  /** DT physical address (16 KiB, order 2). */
  dt: number;
  /** Whether the domain was ever bound to the IOMMU (sun50i_domain->iommu). */
  bound: boolean;
  /** sun50i_domain->refcnt: 1 at alloc, +1 per attach_dev, -1 per identity attach. */
  refcnt: number;
}

const priv = (d: IommuDomain): Sun50iDomain => d.priv as Sun50iDomain;

export function sun50iIommuDriver(): KernelDriver {
  return {
    model: 'sun50i-h6',
    *probe(ctx: DriverContext): Op<IommuOps | number> {
      const { port, pages, pm, log, kprobes } = ctx;
      const name = ctx.config.name;
      const base = num(ctx.config.reg[0]!.base);
      const variant = variantFrom(DEFAULT_VARIANT, ctx.config.options);
      const ptPool = pages.createCache(`${name}-pt`, PT_SIZE);
      const lock = new SpinLock(`${name}.iommu_lock`);
      const pollCycles = POLL_US * ctx.cyclesPerUs;
      kprobes.declare(SUN50I_SYMBOLS);
      /**
       * iommu->domain: 'identity' from probe (the static identity domain), a paging domain once
       * attached, null after a teardown (sun50i_iommu_detach_domain sets NULL).
       */
      let current: IommuDomain | 'identity' | null = 'identity';
      const live = (): IommuDomain | null => (current === 'identity' ? null : current);
      /** The usage reference attach takes in the first posting's design. */
      let rpmHeld = false;
      let rpmEnabled = false;

      const rd = (off: number): Op<number> => port.readl(base + off);
      const wr = (v: number, off: number): Op<void> => port.writel(v >>> 0, base + off);
      const probe = (sym: string, when: 'entry' | 'return'): void => {
        if (kprobes.active) kprobes.hit(sym, when);
      };
      const tableFlush = (pa: number, count: number): void => {
        if (variant.flushTables) port.cleanDcache(pa, count * 4);
      };

      function* pollZero(off: number): Op<number> {
        for (let t = 0; ; t += POLL_US) {
          if ((yield* rd(off)) === 0) return 0;
          if (t >= POLL_TIMEOUT_US) return -ETIMEDOUT;
          yield* port.delay(pollCycles);
        }
      }

      /** Caller holds iommu_lock. */
      function* flushAllTlb(): Op<number> {
        probe('sun50i_iommu_flush_all_tlb', 'entry');
        yield* wr(FLUSH_ALL, TLB_FLUSH_REG);
        const r = yield* pollZero(TLB_FLUSH_REG);
        if (r) log.printk('warn', `${name}: TLB Flush timed out!`, name);
        return r;
      }

      function* zapIova(iova: number): Op<void> {
        yield* wr(iova, TLB_IVLD_ADDR_REG);
        yield* wr(0xfffff000, TLB_IVLD_ADDR_MASK_REG);
        yield* wr(1, TLB_IVLD_ENABLE_REG);
        if (yield* pollZero(TLB_IVLD_ENABLE_REG)) log.printk('warn', `${name}: TLB invalidation timed out!`, name);
      }

      function* zapPtwCache(iova: number): Op<void> {
        yield* wr(iova, PC_IVLD_ADDR_REG);
        yield* wr(1, PC_IVLD_ENABLE_REG);
        if (yield* pollZero(PC_IVLD_ENABLE_REG)) log.printk('warn', `${name}: PTW cache invalidation timed out!`, name);
      }

      /** §1.8, caller holds iommu_lock: the neighbouring page and MiB follow the vendor BSP. */
      function* zapRange(iova: number, size: number): Op<void> {
        probe('sun50i_iommu_zap_range', 'entry');
        yield* wr(0, AUTO_GATING_REG);
        yield* zapIova(iova);
        yield* zapIova(iova + SPAGE);
        if (size > SPAGE) {
          yield* zapIova(iova + size);
          yield* zapIova(iova + size + SPAGE);
        }
        yield* zapPtwCache(iova);
        yield* zapPtwCache(iova + SZ_1M);
        if (size > SZ_1M) {
          yield* zapPtwCache(iova + size);
          yield* zapPtwCache(iova + size + SZ_1M);
        }
        yield* wr(1, AUTO_GATING_REG);
        probe('sun50i_iommu_zap_range', 'return');
      }

      /** §1.9 enable sequence for the current domain. */
      function* enable(): Op<number> {
        const d = live();
        if (!d) return 0;
        probe('sun50i_iommu_enable', 'entry');
        let r = ctx.reset.deassert();
        if (r) return r;
        r = ctx.clk.prepareEnable();
        if (r) {
          ctx.reset.assert();
          return r;
        }
        yield* lock.lock();
        yield* wr(priv(d).dt, TTB_REG);
        yield* wr(TLB_PREFETCH_ALL, TLB_PREFETCH_REG);
        yield* wr(INT_MASK, INT_ENABLE_REG);
        yield* wr(allMasters((m) => autRd(ACI_NONE, m) | autWr(ACI_NONE, m)), DM_AUT_CTRL_REG(ACI_NONE));
        // ACI 2 and 3 share one register: two plain stores, as upstream (hardware-facts §1.4).
        yield* wr(allMasters((m) => autWr(ACI_RD, m)), DM_AUT_CTRL_REG(ACI_RD));
        yield* wr(allMasters((m) => autRd(ACI_WR, m)), DM_AUT_CTRL_REG(ACI_WR));
        if (variant.invalidateOnSwitch) {
          const f = yield* flushAllTlb();
          if (f) {
            lock.unlock();
            ctx.clk.disableUnprepare();
            ctx.reset.assert();
            return f;
          }
        }
        yield* wr(1, AUTO_GATING_REG);
        yield* wr(1, ENABLE_REG);
        lock.unlock();
        probe('sun50i_iommu_enable', 'return');
        return 0;
      }

      function* disable(): Op<void> {
        probe('sun50i_iommu_disable', 'entry');
        yield* lock.lock();
        yield* wr(0, ENABLE_REG);
        yield* wr(0, TTB_REG);
        lock.unlock();
        ctx.clk.disableUnprepare();
        ctx.reset.assert();
      }

      /** sun50i_iommu_attach_domain: dma_map_single of the DT (a clean), then enable. */
      function* attachDomain(d: IommuDomain): Op<number> {
        current = d;
        priv(d).bound = true;
        port.cleanDcache(priv(d).dt, DT_SIZE);
        return yield* enable();
      }

      /** The PTs of a domain back to the pool (their DTEs cleared and flushed first when `clear`). */
      function* freePageTables(d: IommuDomain, clear: boolean): Op<void> {
        const dt = priv(d).dt;
        for (let i = 0; i < NUM_DT_ENTRIES; i++) {
          const dteAddr = dt + i * 4;
          const dte = yield* port.read32(dteAddr);
          if (!dteValid(dte)) continue;
          if (clear) {
            yield* port.write32(dteAddr, 0);
            tableFlush(dteAddr, 1);
          }
          ptPool.free(ptAddress(dte));
        }
      }

      /** sun50i_iommu_detach_domain: the refcount reached zero: PTs freed, translation off, iommu->domain NULL. */
      function* detachDomain(d: IommuDomain): Op<void> {
        yield* freePageTables(d, true);
        yield* disable();
        current = null;
      }

      /** The first posting: leaving a domain hands the hardware to the suspend callback. */
      function* leaveForResumeOnly(): Op<void> {
        current = 'identity';
        // The reference is dropped synchronously so the suspend has run before the next attach takes one again.
        if (rpmHeld) {
          rpmHeld = false;
          yield* pm.putSync(name);
        }
      }

      /** sun50i_iommu_identity_attach: the current paging domain loses a reference. */
      function* identityAttach(): Op<number> {
        probe('sun50i_iommu_identity_attach', 'entry');
        if (current === 'identity') return 0;
        if (variant.programInResumeOnly) {
          yield* leaveForResumeOnly();
          return 0;
        }
        if (variant.leaveDomain === 'disable') {
          current = 'identity';
          yield* disable();
          return 0;
        }
        if (current === null) {
          log.oops('sun50i_iommu_identity_attach', `${name}: iommu->domain is NULL after a teardown (to_sun50i_domain(NULL)->refcnt)`, name);
          return -EFAULT;
        }
        const d = current;
        if (--priv(d).refcnt === 0) yield* detachDomain(d);
        return 0;
      }

      /** The first posting enabled runtime PM at probe; a variant switched on later does it now. */
      const ensureRpm = (): void => {
        if (variant.programInResumeOnly && !rpmEnabled) {
          rpmEnabled = true;
          pm.enable(name);
        }
      };

      pm.setOps(name, {
        *runtimeResume() {
          const d = live();
          if (!variant.programInResumeOnly || !d) return 0;
          port.cleanDcache(priv(d).dt, DT_SIZE);
          return yield* enable();
        },
        *runtimeSuspend() {
          if (!variant.programInResumeOnly) return 0;
          yield* disable();
          return 0;
        },
      });
      ensureRpm();

      function* allocPageTable(d: IommuDomain): Op<number> {
        const owner: PageOwner = { kind: 'pgtable', domain: d.id, level: 2, iommu: name };
        const pt = ptPool.alloc(owner, { zero: true });
        if (pt === null) return -ENOMEM;
        // dma_map_single(PT_SIZE, DMA_TO_DEVICE) cleans the zeroed table.
        port.cleanDcache(pt, PT_SIZE);
        return pt;
      }

      /** Lock-free PT creation: the cmpxchg loser frees its table and uses the winner's. */
      function* dteGetPageTable(d: IommuDomain, iova: number): Op<number> {
        const dteAddr = priv(d).dt + dteIndex(iova) * 4;
        const dte = yield* port.read32(dteAddr);
        if (dteValid(dte)) return ptAddress(dte);
        let pt = yield* allocPageTable(d);
        if (pt < 0) return pt;
        const old = yield* port.cmpxchg32(dteAddr, 0, mkDte(pt));
        if (old !== 0) {
          ptPool.free(pt);
          pt = ptAddress(old);
        }
        tableFlush(pt, NUM_PT_ENTRIES);
        tableFlush(dteAddr, 1);
        return pt;
      }

      /** sun50i_domain->iommu is still NULL before the first attach: upstream dereferences it. */
      function unattached(d: IommuDomain, fn: string, caller: string): boolean {
        if (priv(d).bound || variant.mapBeforeAttach === 'ok') return false;
        log.oops(fn, `${name}: domain ${d.id} was never attached, so sun50i_domain->iommu is NULL (called from ${caller})`, name);
        return true;
      }

      function* flushIotlbAll(d: IommuDomain): Op<void> {
        if (!priv(d).bound) return;
        yield* lock.lock();
        yield* flushAllTlb();
        lock.unlock();
      }

      const ops: IommuOps = {
        name,
        model: 'sun50i-h6',
        variant,
        pgsizeBitmap: SPAGE,
        groupPolicy: 'single',
        identityDomain: true,
        variantChanged: ensureRpm,
        snapshot: () => ({ current, rpmHeld, rpmEnabled, lock: lock.snapshot() }),
        restore(x) {
          const st = x as { current: IommuDomain | 'identity' | null; rpmHeld: boolean; rpmEnabled: boolean; lock: string | null };
          ({ current, rpmHeld, rpmEnabled } = st);
          lock.restore(st.lock);
        },
        snapshotDomain: (d) => ({ ...priv(d) }),
        restoreDomain(d, x) {
          Object.assign(priv(d), x as Sun50iDomain);
        },
        *probeDevice() {
          return 0;
        },
        *domainAllocPaging(d) {
          const dt = pages.allocPages(DT_ORDER, { kind: 'pgtable', domain: d.id, level: 1, iommu: name }, { zero: true });
          if (dt === null) return -ENOMEM;
          d.priv = { dt, bound: false, refcnt: 1 } satisfies Sun50iDomain;
          d.geometry = { apertureStart: 0, apertureEnd: 0xffffffff, forceAperture: true };
          return 0;
        },
        *domainFree(d) {
          probe('sun50i_iommu_domain_free', 'entry');
          if (variant.detachBeforeFree) {
            if (d === current) {
              current = 'identity';
              if (rpmHeld) {
                rpmHeld = false;
                yield* pm.putSync(name);
              }
              // Invalidate while the clock still runs: disable gates it and asserts the reset.
              yield* lock.lock();
              yield* flushAllTlb();
              lock.unlock();
              yield* disable();
            }
            yield* freePageTables(d, false);
          }
          pages.freePages(priv(d).dt, DT_ORDER);
        },
        *attachDev(d) {
          if (d.type === 'identity') return yield* identityAttach();
          probe('sun50i_iommu_attach_device', 'entry');
          if (variant.programInResumeOnly) {
            if (current === d) return 0;
            yield* identityAttach();
            ensureRpm();
            current = d;
            priv(d).bound = true;
            const r = yield* pm.getSync(name);
            rpmHeld = true;
            return r < 0 ? r : 0;
          }
          if (variant.leaveDomain === 'refcount') priv(d).refcnt++;
          if (current === d) return 0;
          yield* identityAttach();
          // Upstream ignores the result of attach_domain.
          yield* attachDomain(d);
          return 0;
        },
        *mapPages(d, iova, paddr, pgsize, _pgcount, prot, out) {
          probe('sun50i_iommu_map', 'entry');
          if (unattached(d, 'sun50i_iommu_alloc_page_table', 'sun50i_iommu_map')) return -EFAULT;
          const pt = yield* dteGetPageTable(d, iova);
          if (pt < 0) return pt;
          const pteAddr = pt + pteIndex(iova) * 4;
          const pte = yield* port.read32(pteAddr);
          if (pteValid(pte)) {
            log.printk('err', `${name}: iova ${hex(iova)} already mapped to ${hex(pageAddress(pte))} cannot remap to ${hex(paddr)} prot: ${hex(prot)}`, name);
            return -EBUSY;
          }
          yield* port.write32(pteAddr, mkPte(paddr, prot));
          tableFlush(pteAddr, 1);
          out.mapped += pgsize;
          return 0;
        },
        *unmapPages(d, iova) {
          probe('sun50i_iommu_unmap', 'entry');
          const dte = yield* port.read32(priv(d).dt + dteIndex(iova) * 4);
          if (!dteValid(dte)) return 0;
          const pteAddr = ptAddress(dte) + pteIndex(iova) * 4;
          if (!pteValid(yield* port.read32(pteAddr))) return 0;
          yield* port.write32(pteAddr, 0);
          tableFlush(pteAddr, 1);
          return SPAGE;
        },
        *iovaToPhys(d, iova) {
          const dte = yield* port.read32(priv(d).dt + dteIndex(iova) * 4);
          if (!dteValid(dte)) return 0;
          const pte = yield* port.read32(ptAddress(dte) + pteIndex(iova) * 4);
          if (!pteValid(pte)) return 0;
          return pageAddress(pte) + (iova & (SPAGE - 1));
        },
        *iotlbSyncMap(d, iova, size) {
          if (!priv(d).bound) return 0;
          yield* lock.lock();
          yield* zapRange(iova, size);
          lock.unlock();
          return 0;
        },
        *iotlbSync(d) {
          yield* flushIotlbAll(d);
        },
        flushIotlbAll,
        *irq() {
          return yield* handleIrq();
        },
      };

      /** §1.11: report the fault, zap it, acknowledge, pulse the offending masters' resets. */
      function* handleIrq(): Op<boolean> {
        yield* lock.lock();
        const status = yield* rd(INT_STA_REG);
        if (!(status & INT_MASK)) {
          lock.unlock();
          return false;
        }
        const l1 = yield* rd(L1PG_INT_REG);
        const l2 = yield* rd(L2PG_INT_REG);
        let iova: number;
        let master: number;
        let write = false;
        if (status & (INT_INVALID_L2PG | INT_INVALID_L1PG)) {
          const l2fault = (status & INT_INVALID_L2PG) !== 0;
          iova = yield* rd(l2fault ? INT_ERR_ADDR_L2_REG : INT_ERR_ADDR_L1_REG);
          master = 31 - Math.clz32((l2fault ? l2 : l1) & MASTER_MASK);
        } else {
          master = 31 - Math.clz32(status & MASTER_MASK);
          iova = yield* rd(INT_ERR_ADDR_REG(master));
          write = ((yield* rd(INT_ERR_DATA_REG(master))) >>> 4) % 16 === ACI_RD;
        }
        log.printk('err', `${name}: Page fault for ${hex(iova)} (master ${master}, dir ${write ? 'wr' : 'rd'})`, name);
        const dev = ctx.devices.find((x) => (x.masterId ?? 0) === master)?.name ?? `master${master}`;
        const d = live();
        if (d) ctx.core.reportFault(d, dev, iova, write ? 1 : 0);
        yield* zapRange(iova, SPAGE);
        yield* wr(status, INT_CLR_REG);
        yield* wr(~((status | l1 | l2) & MASTER_MASK), RESET_REG);
        yield* wr(0xffffffff, RESET_REG);
        lock.unlock();
        return true;
      }

      return ops;
    },
  };
}
