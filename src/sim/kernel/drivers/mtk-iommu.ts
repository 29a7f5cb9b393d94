/**
 * mtk_iommu: the MediaTek M4U driver (hardware-facts §3.11), as upstream ~v5.14 has it for MT8183:
 * one M4U, one group for every larb port, v7s tables with ARM_NS | NO_PERMS | ARM_MTK_EXT, invalidation
 * by range (START/END, poll CPE_DONE, fall back to a full flush on timeout) from iotlb_sync and
 * iotlb_sync_map, a full flush from flush_iotlb_all and the fault handler. The first attach resumes the
 * M4U, runs hw_init and programs PT_BASE; attach enables the device's larb ports.
 *
 * Deviations, for scripts: unmanaged domains are allowed beside the DMA one; attaching another domain
 * reprograms PT_BASE and flushes everything (v5.14 keeps the first domain for good); the larb ports'
 * MMU_EN bits are written into the model's LARBn_MMU_EN stand-in registers (upstream the SMI larb
 * driver writes them on larb resume).
 *
 * Variants (kernel.driver(name).variant; io-pgtable ones apply to domains allocated afterwards):
 * - tableInstall 'cmpxchg' | 'store', splitLock, partialUnmap 'split' | 'split-upstream' | 'refuse': passed to v7s (P2, P3).
 * - tlbOps: true gives io-pgtable the flush callbacks of kernels up to v5.12 (tlb_flush_walk = a range
 *   sync before an L2 table is freed); false is v5.13+, where v7s frees the table at once and the range
 *   is only invalidated at iotlb_sync.
 */
import type { Op } from '../../core/coop';
import { num } from '../../config/types';
import { mtkLarbRemap, mtkM4uId, mtkM4uToLarb, mtkM4uToPort, MTK_INT_CLR, MTK_INV_ALL, MTK_INV_RANGE, MTK_INVLD_EN0, MTK_INVLD_EN1, MTK_NUM_LARBS } from '../../hw/mtk-v7s';
import { EINVAL, ENOMEM, ETIMEDOUT, hex } from '../errno';
import { IO_PGTABLE_QUIRK_ARM_MTK_EXT, IO_PGTABLE_QUIRK_ARM_NS, IO_PGTABLE_QUIRK_NO_PERMS, SZ_16M, SZ_1M, SZ_4K, SZ_64K, type IoPgtableCfg, type IoPgtableOps, type PartialUnmap } from '../io-pgtable';
import { allocIoPgtableOps } from '../io-pgtable-alloc';
import type { IommuDomain, IommuOps, IotlbGather } from '../iommu-core';
import type { DriverContext, KernelDriver } from '../kernel';
import { SpinLock } from '../spinlock';
import { PagePgtableAllocator } from './io-pgtable-pages';
import { variantFrom } from './variant';

const REG_MMU_PT_BASE_ADDR = 0x000;
const MMU_PT_ADDR_MASK = 0xffffff80;
const REG_MMU_INVALIDATE = 0x020;
const REG_MMU_INVLD_START_A = 0x024;
const REG_MMU_INVLD_END_A = 0x028;
const REG_MMU_INV_SEL_GEN1 = 0x038;
const REG_MMU_MISC_CTRL = 0x048;
const REG_MMU_DCM_DIS = 0x050;
const REG_MMU_WR_LEN_CTRL = 0x054;
const REG_MMU_CTRL_REG = 0x110;
const F_MMU_TF_PROT_TO_PROGRAM_ADDR = 2 << 4;
const REG_MMU_IVRP_PADDR = 0x114;
const REG_MMU_VLD_PA_RNG = 0x118;
const REG_MMU_INT_CONTROL0 = 0x120;
/** L2_MULIT_HIT, TABLE_WALK_FAULT, PREETCH/MISS_FIFO_OVERFLOW, PREFETCH/MISS_FIFO_ERR. */
const INT_CONTROL0_ENABLES = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 6);
const REG_MMU_INT_MAIN_CONTROL = 0x124;
/** Every fault type of MMU0 (bits 6:0) and MMU1 (13:7). */
const INT_MAIN_ENABLES = 0x3fff;
const REG_MMU_CPE_DONE = 0x12c;
const REG_MMU_FAULT_ST1 = 0x134;
const F_REG_MMU0_FAULT_MASK = 0x7f;
const REG_MMU0_FAULT_VA = 0x13c;
const REG_MMU0_INVLD_PA = 0x140;
const REG_MMU1_FAULT_VA = 0x144;
const REG_MMU1_INVLD_PA = 0x148;
const REG_MMU0_INT_ID = 0x150;
const REG_MMU1_INT_ID = 0x154;
/** Model stand-in for the larbs' per-port MMU_EN bits. */
const REG_LARB_MMU_EN = (larb: number): number => 0xf00 + 4 * larb;

/** readl_poll_timeout_atomic(CPE_DONE, tmp != 0, 10, 1000). */
const POLL_US = 10;
const POLL_TIMEOUT_US = 1000;
const TWO32 = 0x1_0000_0000;

/** MTK_IOMMU_TLB_ADDR: VA[31:12] | upper_32_bits(VA). */
const tlbAddr = (iova: number): number => ((iova % TWO32) & 0xfffff000) | Math.floor(iova / TWO32);

export interface MtkVariant {
  tableInstall: 'cmpxchg' | 'store';
  splitLock: boolean;
  partialUnmap: PartialUnmap;
  tlbOps: boolean;
}

const DEFAULT_VARIANT: MtkVariant = { tableInstall: 'cmpxchg', splitLock: true, partialUnmap: 'split', tlbOps: true };

export const MTK_SYMBOLS = [
  'mtk_iommu_map',
  'mtk_iommu_unmap',
  'mtk_iommu_tlb_flush_all',
  'mtk_iommu_tlb_flush_range_sync',
  'mtk_iommu_attach_device',
  'mtk_iommu_isr',
] as const;

interface MtkDomain {
  iop: IoPgtableOps;
  cfg: IoPgtableCfg;
  alloc: PagePgtableAllocator;
}

const priv = (d: IommuDomain): MtkDomain => d.priv as MtkDomain;

/** Register values saved over runtime suspend (struct mtk_iommu_suspend_reg). */
const SAVED_REGS = [REG_MMU_WR_LEN_CTRL, REG_MMU_MISC_CTRL, REG_MMU_DCM_DIS, REG_MMU_CTRL_REG, REG_MMU_INT_CONTROL0, REG_MMU_INT_MAIN_CONTROL, REG_MMU_IVRP_PADDR, REG_MMU_VLD_PA_RNG];

export function mtkIommuDriver(): KernelDriver {
  return {
    model: 'mtk-v7s',
    *probe(ctx: DriverContext): Op<IommuOps | number> {
      const { port, pages, pm, log, kprobes, core } = ctx;
      const name = ctx.config.name;
      const base = num(ctx.config.reg[0]!.base);
      const opts = ctx.config.options ?? {};
      const variant = variantFrom(DEFAULT_VARIANT, opts);
      const larbRemap = mtkLarbRemap(opts.larbIdRemap);
      const oas = typeof opts.oas === 'number' ? opts.oas : 35;
      // tlb_flush_range_sync takes a runtime-PM reference only when the M4U has a power domain.
      const hasPm = ctx.config.powerDomain !== undefined;
      const tlbLock = new SpinLock(`${name}.tlb_lock`);
      const pollCycles = POLL_US * ctx.cyclesPerUs;
      kprobes.declare(MTK_SYMBOLS);
      // The protect buffer faulting transactions are sent to (MTK_PROTECT_PA_ALIGN).
      const protect = pages.allocPages(0, { kind: 'driver', name }, { zero: true });
      if (protect === null) return -ENOMEM;
      /** data->m4u_dom. */
      let current: IommuDomain | null = null;
      /** larb_imu[larb].mmu: the ports whose MMU_EN the larb gets. */
      const larbMmu = new Uint32Array(MTK_NUM_LARBS);
      const saved = new Map<number, number>();

      const rd = (off: number): Op<number> => port.readl(base + off);
      const wr = (v: number, off: number): Op<void> => port.writel(v >>> 0, base + off);
      const probe = (sym: string, when: 'entry' | 'return'): void => {
        if (kprobes.active) kprobes.hit(sym, when);
      };
      const masterOf = (dev: string): number => ctx.devices.find((x) => x.name === dev)?.masterId ?? 0;

      function* tlbFlushAll(): Op<void> {
        probe('mtk_iommu_tlb_flush_all', 'entry');
        if (pm.getIfInUse(name) <= 0) return;
        yield* wr(MTK_INVLD_EN1 | MTK_INVLD_EN0, REG_MMU_INV_SEL_GEN1);
        yield* wr(MTK_INV_ALL, REG_MMU_INVALIDATE);
        yield* pm.put(name);
      }

      function* tlbFlushRangeSync(iova: number, size: number): Op<void> {
        probe('mtk_iommu_tlb_flush_range_sync', 'entry');
        if (hasPm && pm.getIfInUse(name) <= 0) return;
        yield* tlbLock.lock();
        yield* wr(MTK_INVLD_EN1 | MTK_INVLD_EN0, REG_MMU_INV_SEL_GEN1);
        yield* wr(tlbAddr(iova), REG_MMU_INVLD_START_A);
        yield* wr(tlbAddr(iova + size - 1), REG_MMU_INVLD_END_A);
        yield* wr(MTK_INV_RANGE, REG_MMU_INVALIDATE);
        let r = 0;
        for (let t = 0; ; t += POLL_US) {
          if ((yield* rd(REG_MMU_CPE_DONE)) !== 0) break;
          if (t >= POLL_TIMEOUT_US) {
            r = -ETIMEDOUT;
            break;
          }
          yield* port.delay(pollCycles);
        }
        if (r) {
          log.printk('warn', `${name}: Partial TLB flush timed out, falling back to full flush`, name);
          yield* tlbFlushAll();
        }
        // Clear the CPE status.
        yield* wr(0, REG_MMU_CPE_DONE);
        tlbLock.unlock();
        if (hasPm) yield* pm.put(name);
      }

      function* hwInit(): Op<number> {
        yield* wr((yield* rd(REG_MMU_CTRL_REG)) | F_MMU_TF_PROT_TO_PROGRAM_ADDR, REG_MMU_CTRL_REG);
        yield* wr(INT_CONTROL0_ENABLES, REG_MMU_INT_CONTROL0);
        yield* wr(INT_MAIN_ENABLES, REG_MMU_INT_MAIN_CONTROL);
        yield* wr(protect!, REG_MMU_IVRP_PADDR);
        yield* wr(0, REG_MMU_DCM_DIS);
        // RESET_AXI parts: the register is STANDARD_AXI_MODE and gets 0.
        yield* wr(0, REG_MMU_MISC_CTRL);
        return 0;
      }

      function* writeLarbs(): Op<void> {
        for (let larb = 0; larb < MTK_NUM_LARBS; larb++) yield* wr(larbMmu[larb]!, REG_LARB_MMU_EN(larb));
      }

      pm.setOps(name, {
        *runtimeSuspend() {
          for (const off of SAVED_REGS) saved.set(off, yield* rd(off));
          return 0;
        },
        *runtimeResume() {
          // The first resume must not overwrite the reset values with nothing.
          if (!current) return 0;
          for (const off of SAVED_REGS) yield* wr(saved.get(off) ?? 0, off);
          yield* wr(priv(current).cfg.armV7sCfg!.ttbr & MMU_PT_ADDR_MASK, REG_MMU_PT_BASE_ADDR);
          yield* writeLarbs();
          return 0;
        },
      });
      pm.enable(name);

      const ops: IommuOps = {
        name,
        model: 'mtk-v7s',
        variant,
        pgsizeBitmap: SZ_4K | SZ_64K | SZ_1M | SZ_16M,
        groupPolicy: 'single',
        defDomainType: 'dma',
        snapshot: () => ({ current, larbMmu: larbMmu.slice(), saved: new Map(saved), lock: tlbLock.snapshot() }),
        restore(s) {
          const x = s as { current: IommuDomain | null; larbMmu: Uint32Array; saved: Map<number, number>; lock: string | null };
          current = x.current;
          larbMmu.set(x.larbMmu);
          saved.clear();
          for (const [k, v] of x.saved) saved.set(k, v);
          tlbLock.restore(x.lock);
        },
        snapshotDomain: (d) => priv(d).iop.snapshot(),
        restoreDomain: (d, s) => priv(d).iop.restore(s),
        *probeDevice(dev) {
          // Stands in for the master → larb → smi-common → M4U runtime-PM chain.
          yield* pm.linkAdd(dev, name, ['stateless', 'pm-runtime']);
          return 0;
        },
        *releaseDevice(dev) {
          yield* pm.linkDel(dev, name);
        },
        *domainAllocPaging(d) {
          const alloc = new PagePgtableAllocator(pages, d.id, name);
          const cfg: IoPgtableCfg = {
            quirks: IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT,
            pgsizeBitmap: ops.pgsizeBitmap,
            ias: 32,
            oas,
            coherentWalk: ctx.config.coherentWalk ?? false,
            tlb: variant.tlbOps
              ? {
                  tlbFlushAll,
                  tlbFlushWalk: (iova, size) => tlbFlushRangeSync(iova, size),
                  tlbAddPage: (gather, iova, granule) => (gather ? core.gatherAddPage(d, gather, iova, granule) : noop()),
                }
              : null,
          };
          const iop = allocIoPgtableOps('arm-v7s', cfg, {
            port,
            alloc,
            variant: { tableInstall: variant.tableInstall, splitLock: variant.splitLock, partialUnmap: variant.partialUnmap },
            warn: (msg) => log.warn(msg, { iommu: name, domain: d.id }),
          });
          if (!iop) {
            log.printk('err', `${name}: Failed to alloc io pgtable`, name);
            return -EINVAL;
          }
          d.priv = { iop, cfg, alloc } satisfies MtkDomain;
          d.pgsizeBitmap = cfg.pgsizeBitmap;
          d.geometry = { apertureStart: 0, apertureEnd: TWO32 - 1, forceAperture: true };
          return 0;
        },
        *domainFree(d) {
          const dom = priv(d);
          // free_io_pgtable_ops (flush_all first, when the format has the callbacks).
          yield* dom.iop.free();
        },
        *attachDev(d, dev) {
          probe('mtk_iommu_attach_device', 'entry');
          if (current !== d) {
            const r = yield* pm.resumeAndGet(name);
            if (r < 0) return r;
            const first = current === null;
            if (first) yield* hwInit();
            current = d;
            yield* wr(priv(d).cfg.armV7sCfg!.ttbr & MMU_PT_ADDR_MASK, REG_MMU_PT_BASE_ADDR);
            // Another domain's translations must not survive the switch.
            if (!first) yield* tlbFlushAll();
            yield* pm.put(name);
          }
          // mtk_iommu_config(data, dev, true).
          const id = masterOf(dev);
          const larb = mtkM4uToLarb(id);
          larbMmu[larb] = (larbMmu[larb]! | (1 << mtkM4uToPort(id))) >>> 0;
          yield* wr(larbMmu[larb]!, REG_LARB_MMU_EN(larb));
          return 0;
        },
        *mapPages(d, iova, paddr, pgsize, pgcount, prot, out) {
          probe('mtk_iommu_map', 'entry');
          const r = yield* priv(d).iop.mapPages(iova, paddr, pgsize, pgcount, prot, 'GFP_ATOMIC');
          out.mapped += r.mapped;
          return r.ret;
        },
        unmapPages(d, iova, pgsize, pgcount, gather) {
          probe('mtk_iommu_unmap', 'entry');
          gather.addRange(iova, pgsize * pgcount);
          return priv(d).iop.unmapPages(iova, pgsize, pgcount, gather);
        },
        iovaToPhys(d, iova) {
          return priv(d).iop.iovaToPhys(iova);
        },
        *iotlbSyncMap(_d, iova, size) {
          yield* tlbFlushRangeSync(iova, size);
          return 0;
        },
        *iotlbSync(_d, gather: IotlbGather) {
          if (gather.isEmpty()) return;
          yield* tlbFlushRangeSync(gather.start, gather.end - gather.start + 1);
        },
        flushIotlbAll: () => tlbFlushAll(),
        *irq() {
          return yield* isr();
        },
      };

      /** mtk_iommu_isr: report the fault, clear the interrupt, flush everything. */
      function* isr(): Op<boolean> {
        probe('mtk_iommu_isr', 'entry');
        const intState = yield* rd(REG_MMU_FAULT_ST1);
        if (intState === 0) return false;
        const mmu0 = (intState & F_REG_MMU0_FAULT_MASK) !== 0;
        const regval = yield* rd(mmu0 ? REG_MMU0_INT_ID : REG_MMU1_INT_ID);
        const faultIova = yield* rd(mmu0 ? REG_MMU0_FAULT_VA : REG_MMU1_FAULT_VA);
        const faultPa = yield* rd(mmu0 ? REG_MMU0_INVLD_PA : REG_MMU1_INVLD_PA);
        const layer = faultIova & 1;
        const write = (faultIova & 2) !== 0;
        const larbPort = (regval >>> 2) & 0x1f;
        const larb = larbRemap[(regval >>> 7) & 7]!;
        const dev = ctx.devices.find((x) => (x.masterId ?? 0) === mtkM4uId(larb, larbPort))?.name ?? name;
        const r = current ? core.reportFault(current, dev, faultIova, write ? 1 : 0) : -EINVAL;
        if (r) {
          log.printk(
            'err',
            `${name}: fault type=${hex(intState)} iova=${hex(faultIova)} pa=${hex(faultPa)} larb=${larb} port=${larbPort} layer=${layer} ${write ? 'write' : 'read'}`,
            name,
          );
        }
        yield* wr((yield* rd(REG_MMU_INT_CONTROL0)) | MTK_INT_CLR, REG_MMU_INT_CONTROL0);
        yield* tlbFlushAll();
        return true;
      }

      return ops;
    },
  };
}

// eslint-disable-next-line require-yield
function* noop(): Op<void> {}
