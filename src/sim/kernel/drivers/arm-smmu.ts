/**
 * arm-smmu: the Arm SMMUv2 driver (drivers/iommu/arm/arm-smmu/arm-smmu.c) for stage-1 domains over the
 * LPAE io-pgtable (AArch64 context format, 4 KiB granule). Probe reads ID0..ID2 (page size, numpage,
 * context banks, stream match groups, coherent walks, address sizes) and resets the SMMU: every
 * SMR invalid, every S2CR FAULT (disable_bypass), every bank off, TLBs invalidated, sCR0 with global
 * fault reporting and USFCFG. Each device gets a stream match entry for its stream ID (masterId) at
 * probe and its own group; a domain gets a context bank (ASID = bank index; on SMMUv1 the context interrupt index too) on its first
 * attach, programmed from io-pgtable's armLpaeS1Cfg, and attach points the device's S2CR at it.
 *
 * TLB maintenance as upstream's arm_smmu_s1_tlb_ops: tlb_flush_all = TLBIASID + sync; tlb_flush_walk
 * = TLBIVA per granule over the range + sync; tlb_add_page = TLBIVAL, synced at iotlb_sync (TLBSYNC,
 * then poll TLBSTATUS with a doubling delay up to TLB_LOOP_TIMEOUT).
 *
 * Variants (kernel.driver(name).variant; io-pgtable ones apply to domains allocated afterwards):
 * - tableInstall 'cmpxchg' | 'store', splitLock, partialUnmap 'split' | 'split-upstream' | 'refuse': passed to LPAE.
 * - flushWalk: 'tlbiva' (upstream), 'tlbiasid' (flush_walk_prefer_tlbiasid), or 'tlbival': a walk
 *   flush with leaf-only invalidations, which leaves the walk cache pointing at a table io-pgtable is
 *   about to free (P4's use-after-free).
 */
import type { Op } from '../../core/coop';
import { num } from '../../config/types';
import {
  CB,
  CBA2R_VA64,
  CBAR_TYPE_S1_TRANS_S2_BYPASS,
  FSR_FAULT,
  FSYNR0_WNR,
  S2CR_TYPE_FAULT,
  S2CR_TYPE_TRANS,
  SCR0_CLIENTPD,
  SCR0_GCFGFIE,
  SCR0_GCFGFRE,
  SCR0_GFIE,
  SCR0_GFRE,
  SCR0_PTM,
  SCR0_USFCFG,
  SCR0_VMIDPNE,
  SCTLR_AFE,
  SCTLR_ASIDPNE,
  SCTLR_CFIE,
  SCTLR_CFRE,
  SCTLR_M,
  SCTLR_TRE,
  SMMU_PAGE,
  SMR_VALID,
  TCR_EPD1,
  smmuIdSizeToBits,
} from '../../hw/arm-smmu';
import { EINVAL, ENODEV, ENOSYS, hex } from '../errno';
import { SZ_1G, SZ_2M, SZ_4K, type IoPgtableCfg, type IoPgtableOps, type PartialUnmap } from '../io-pgtable';
import { allocIoPgtableOps } from '../io-pgtable-alloc';
import type { IommuDomain, IommuOps } from '../iommu-core';
import type { DriverContext, KernelDriver } from '../kernel';
import { SpinLock } from '../spinlock';
import { PagePgtableAllocator } from './io-pgtable-pages';
import { variantFrom } from './variant';

const GR0_sCR0 = 0x000;
const GR0_ID0 = 0x020;
const GR0_ID1 = 0x024;
const GR0_ID2 = 0x028;
const GR0_sGFSR = 0x048;
const GR0_sGFSYNR0 = 0x050;
const GR0_sGFSYNR1 = 0x054;
const GR0_TLBIALLNSNH = 0x068;
const GR0_TLBIALLH = 0x06c;
const GR0_sTLBGSYNC = 0x070;
const GR0_sTLBGSTATUS = 0x074;
const GR0_SMR = (n: number): number => 0x800 + 4 * n;
const GR0_S2CR = (n: number): number => 0xc00 + 4 * n;
const GR1_CBAR = (n: number): number => 4 * n;
const GR1_CBFRSYNRA = (n: number): number => 0x400 + 4 * n;
const GR1_CBA2R = (n: number): number => 0x800 + 4 * n;
const ID0_CTTW = 1 << 14;
const ID2_PTFS_4K = 1 << 12;
const sGFSR_FAULT = 0x800000ff;
const CBAR_S1_BPSHCFG_NSH = 3;
const CBAR_S1_MEMATTR_WB = 0xf;
const TCR2_SEP_UPSTREAM = 7;
const TLB_LOOP_TIMEOUT_US = 1_000_000;
const TLB_SPIN_COUNT = 10;
const TWO32 = 0x1_0000_0000;
/** No free context bank or stream match entry (asm-generic/errno-base.h). */
const ENOSPC = 28;

export interface ArmSmmuVariant {
  tableInstall: 'cmpxchg' | 'store';
  splitLock: boolean;
  partialUnmap: PartialUnmap;
  flushWalk: 'tlbiva' | 'tlbiasid' | 'tlbival';
}

const DEFAULT_VARIANT: ArmSmmuVariant = { tableInstall: 'cmpxchg', splitLock: true, partialUnmap: 'split', flushWalk: 'tlbiva' };

export const ARM_SMMU_SYMBOLS = [
  'arm_smmu_map_pages',
  'arm_smmu_unmap_pages',
  'arm_smmu_tlb_inv_context_s1',
  'arm_smmu_tlb_inv_walk_s1',
  'arm_smmu_tlb_add_page_s1',
  'arm_smmu_tlb_sync_context',
  'arm_smmu_attach_dev',
  'arm_smmu_context_fault',
] as const;

interface SmmuDomain {
  iop: IoPgtableOps;
  cfg: IoPgtableCfg;
  /** Context bank (= ASID), or -1 before the first attach. */
  cb: number;
  cbLock: SpinLock;
}

const priv = (d: IommuDomain): SmmuDomain => d.priv as SmmuDomain;

export function armSmmuDriver(): KernelDriver {
  return {
    model: 'arm-lpae',
    *probe(ctx: DriverContext): Op<IommuOps | number> {
      const { port, pages, log, kprobes, core } = ctx;
      const name = ctx.config.name;
      const base = num(ctx.config.reg[0]!.base);
      const variant = variantFrom(DEFAULT_VARIANT, ctx.config.options);
      const usPerCycle = ctx.cyclesPerUs;
      kprobes.declare(ARM_SMMU_SYMBOLS);
      const probe = (sym: string, when: 'entry' | 'return'): void => {
        if (kprobes.active) kprobes.hit(sym, when);
      };

      const gr0r = (off: number): Op<number> => port.readl(base + off);
      const gr0w = (off: number, v: number): Op<void> => port.writel(v >>> 0, base + off);
      const gr1w = (off: number, v: number): Op<void> => port.writel(v >>> 0, base + SMMU_PAGE + off);
      const gr1r = (off: number): Op<number> => port.readl(base + SMMU_PAGE + off);

      // arm_smmu_device_cfg_probe.
      const id0 = yield* gr0r(GR0_ID0);
      const id1 = yield* gr0r(GR0_ID1);
      const id2 = yield* gr0r(GR0_ID2);
      if (id1 & (1 << 31)) {
        log.printk('err', `${name}: 64 KiB register pages are not supported`, name);
        return -ENODEV;
      }
      if (!(id2 & ID2_PTFS_4K)) {
        log.printk('err', `${name}: no AArch64 4K page table format`, name);
        return -ENODEV;
      }
      const numpage = 1 << (((id1 >>> 28) & 7) + 1);
      // Upstream knows the version from the compatible string; here the config says it.
      const smmuV2 = (ctx.config.options?.version ?? 'v2') !== 'v1';
      const numCbs = id1 & 0xff;
      const numSmrs = id0 & 0xff;
      const coherentWalk = (id0 & ID0_CTTW) !== 0;
      const vaSize = smmuIdSizeToBits((id2 >>> 8) & 0xf);
      const ipaSize = smmuIdSizeToBits(id2 & 0xf);
      const cbBase = (n: number): number => base + (numpage + n) * SMMU_PAGE;
      const cbr = (n: number, off: number): Op<number> => port.readl(cbBase(n) + off);
      const cbw = (n: number, off: number, v: number): Op<void> => port.writel(v >>> 0, cbBase(n) + off);
      /** writeq through io-64-nonatomic-hi-lo: the high word first. */
      function* cbwq(n: number, off: number, v: number): Op<void> {
        yield* cbw(n, off + 4, Math.floor(v / TWO32));
        yield* cbw(n, off, v % TWO32);
      }

      const cbDomains: (IommuDomain | null)[] = new Array<IommuDomain | null>(numCbs).fill(null);
      /** Stream match entries: the stream ID each holds (-1 free), and each device's entry. */
      const smrSid = new Array<number>(numSmrs).fill(-1);
      const devSme = new Map<string, number>();
      const sidOf = (dev: string): number => ctx.devices.find((x) => x.name === dev)?.masterId ?? 0;

      /** __arm_smmu_tlb_sync: write the sync register, then spin and back off until it is done. */
      function* tlbSync(sync: () => Op<void>, status: () => Op<number>): Op<void> {
        yield* sync();
        for (let delay = 1; delay < TLB_LOOP_TIMEOUT_US; delay *= 2) {
          for (let spin = TLB_SPIN_COUNT; spin > 0; spin--) if (((yield* status()) & 1) === 0) return;
          yield* port.delay(delay * usPerCycle);
        }
        log.printk('err', `${name}: TLB sync timed out -- SMMU may be deadlocked`, name);
      }

      const syncGlobal = (): Op<void> =>
        tlbSync(
          () => gr0w(GR0_sTLBGSYNC, 0),
          () => gr0r(GR0_sTLBGSTATUS),
        );

      function* syncContext(dom: SmmuDomain): Op<void> {
        probe('arm_smmu_tlb_sync_context', 'entry');
        const cb = dom.cb;
        yield* dom.cbLock.lock();
        yield* tlbSync(
          () => cbw(cb, CB.TLBSYNC, 0),
          () => cbr(cb, CB.TLBSTATUS),
        );
        dom.cbLock.unlock();
      }

      function* invContext(dom: SmmuDomain): Op<void> {
        probe('arm_smmu_tlb_inv_context_s1', 'entry');
        if (dom.cb < 0) return;
        yield* cbw(dom.cb, CB.TLBIASID, dom.cb);
        yield* syncContext(dom);
      }

      /** arm_smmu_tlb_inv_range_s1 (AArch64 format): one operation per granule, VA >> 12 | ASID << 48. */
      function* invRange(dom: SmmuDomain, iova: number, size: number, granule: number, lo: number): Op<void> {
        const asidHi = dom.cb << 16;
        for (let va = iova; va < iova + size; va += granule) {
          const page = Math.floor(va / SZ_4K);
          yield* cbw(dom.cb, lo + 4, asidHi | Math.floor(page / TWO32));
          yield* cbw(dom.cb, lo, page % TWO32);
        }
      }

      function* invWalk(dom: SmmuDomain, iova: number, size: number, granule: number): Op<void> {
        probe('arm_smmu_tlb_inv_walk_s1', 'entry');
        if (dom.cb < 0) return;
        if (variant.flushWalk === 'tlbiasid') return yield* invContext(dom);
        yield* invRange(dom, iova, size, granule, variant.flushWalk === 'tlbival' ? CB.TLBIVAL_LO : CB.TLBIVA_LO);
        yield* syncContext(dom);
      }

      function* addPage(dom: SmmuDomain, iova: number, granule: number): Op<void> {
        probe('arm_smmu_tlb_add_page_s1', 'entry');
        if (dom.cb < 0) return;
        yield* invRange(dom, iova, granule, granule, CB.TLBIVAL_LO);
      }

      /** arm_smmu_write_context_bank for a bank's domain (null: the bank is turned off). */
      function* writeContextBank(n: number, d: IommuDomain | null): Op<void> {
        if (!d) {
          yield* cbw(n, CB.SCTLR, 0);
          return;
        }
        const cfg = priv(d).cfg;
        const s1 = cfg.armLpaeS1Cfg!;
        // As arm_smmu_write_context_bank: CBA2R (SMMUv2 only), CBAR (IRPTNDX only on SMMUv1, where
        // it is the bank index here), TCR2 and TCR, then the TTBRs, MAIRs and SCTLR.
        if (smmuV2) yield* gr1w(GR1_CBA2R(n), CBA2R_VA64);
        yield* gr1w(GR1_CBAR(n), (CBAR_TYPE_S1_TRANS_S2_BYPASS << 16) | (CBAR_S1_BPSHCFG_NSH << 8) | (CBAR_S1_MEMATTR_WB << 12) | (smmuV2 ? 0 : n << 24));
        const t = s1.tcr;
        yield* cbw(n, CB.TCR2, t.ips | (TCR2_SEP_UPSTREAM << 15));
        yield* cbw(n, CB.TCR, (t.tg << 14) | (t.sh << 12) | (t.orgn << 10) | (t.irgn << 8) | t.t0sz | TCR_EPD1);
        yield* cbwq(n, CB.TTBR0_LO, s1.ttbr + n * 2 ** 48);
        yield* cbwq(n, CB.TTBR1_LO, n * 2 ** 48);
        yield* cbw(n, CB.MAIR0, Number(s1.mair & 0xffffffffn));
        yield* cbw(n, CB.MAIR1, Number(s1.mair >> 32n));
        yield* cbw(n, CB.SCTLR, SCTLR_CFIE | SCTLR_CFRE | SCTLR_AFE | SCTLR_TRE | SCTLR_M | SCTLR_ASIDPNE);
      }

      // arm_smmu_device_reset.
      yield* gr0w(GR0_sGFSR, yield* gr0r(GR0_sGFSR));
      for (let i = 0; i < numSmrs; i++) {
        yield* gr0w(GR0_SMR(i), 0);
        yield* gr0w(GR0_S2CR(i), S2CR_TYPE_FAULT << 16);
      }
      for (let n = 0; n < numCbs; n++) {
        yield* writeContextBank(n, null);
        yield* cbw(n, CB.FSR, FSR_FAULT);
      }
      yield* gr0w(GR0_TLBIALLH, 0);
      yield* gr0w(GR0_TLBIALLNSNH, 0);
      let scr0 = yield* gr0r(GR0_sCR0);
      scr0 |= SCR0_GFRE | SCR0_GFIE | SCR0_GCFGFRE | SCR0_GCFGFIE;
      // Disable TLB broadcasting, as upstream.
      scr0 |= SCR0_VMIDPNE | SCR0_PTM;
      scr0 &= ~SCR0_CLIENTPD;
      scr0 |= SCR0_USFCFG;
      yield* syncGlobal();
      yield* gr0w(GR0_sCR0, scr0);

      const ops: IommuOps = {
        name,
        model: 'arm-lpae',
        variant,
        pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G,
        groupPolicy: 'per-device',
        snapshot: () => ({ cbDomains: cbDomains.slice(), smrSid: smrSid.slice(), devSme: new Map(devSme) }),
        restore(s) {
          const x = s as { cbDomains: (IommuDomain | null)[]; smrSid: number[]; devSme: Map<string, number> };
          x.cbDomains.forEach((d, i) => (cbDomains[i] = d));
          x.smrSid.forEach((sid, i) => (smrSid[i] = sid));
          devSme.clear();
          for (const [k, v] of x.devSme) devSme.set(k, v);
        },
        snapshotDomain: (d) => ({ cb: priv(d).cb, lock: priv(d).cbLock.snapshot(), iop: priv(d).iop.snapshot() }),
        restoreDomain(d, s) {
          const x = s as { cb: number; lock: string | null; iop: unknown };
          const dom = priv(d);
          dom.cb = x.cb;
          dom.cbLock.restore(x.lock);
          dom.iop.restore(x.iop);
        },
        *probeDevice(dev) {
          const sid = sidOf(dev);
          // Devices with the same stream ID share an entry (arm_smmu_find_sme).
          let idx = smrSid.indexOf(sid);
          if (idx < 0) idx = smrSid.indexOf(-1);
          if (idx < 0) return -ENOSPC;
          smrSid[idx] = sid;
          devSme.set(dev, idx);
          yield* gr0w(GR0_S2CR(idx), S2CR_TYPE_FAULT << 16);
          yield* gr0w(GR0_SMR(idx), (SMR_VALID | sid) >>> 0);
          return 0;
        },
        *releaseDevice(dev) {
          const idx = devSme.get(dev);
          if (idx === undefined) return;
          devSme.delete(dev);
          if ([...devSme.values()].includes(idx)) return;
          smrSid[idx] = -1;
          yield* gr0w(GR0_SMR(idx), 0);
          yield* gr0w(GR0_S2CR(idx), S2CR_TYPE_FAULT << 16);
        },
        *domainAllocPaging(d) {
          const dom = { cb: -1, cbLock: new SpinLock(`domain${d.id}.cb_lock`) } as SmmuDomain;
          const cfg: IoPgtableCfg = {
            quirks: 0,
            pgsizeBitmap: ops.pgsizeBitmap,
            ias: Math.min(vaSize, 48),
            oas: ipaSize,
            coherentWalk,
            tlb: {
              tlbFlushAll: () => invContext(dom),
              tlbFlushWalk: (iova, size, granule) => invWalk(dom, iova, size, granule),
              tlbAddPage: (_gather, iova, granule) => addPage(dom, iova, granule),
            },
          };
          const iop = allocIoPgtableOps('arm-64-lpae-s1', cfg, {
            port,
            alloc: new PagePgtableAllocator(pages, d.id, name),
            variant: { tableInstall: variant.tableInstall, splitLock: variant.splitLock, partialUnmap: variant.partialUnmap },
            warn: (msg) => log.warn(msg, { iommu: name, domain: d.id }),
          });
          if (!iop) return -EINVAL;
          dom.iop = iop;
          dom.cfg = cfg;
          d.priv = dom;
          d.pgsizeBitmap = cfg.pgsizeBitmap;
          d.geometry = { apertureStart: 0, apertureEnd: 2 ** cfg.ias - 1, forceAperture: true };
          return 0;
        },
        *domainFree(d) {
          const dom = priv(d);
          // arm_smmu_destroy_domain_context: the bank off, then free_io_pgtable_ops (flush_all first).
          if (dom.cb >= 0) yield* writeContextBank(dom.cb, null);
          yield* dom.iop.free();
          if (dom.cb >= 0) cbDomains[dom.cb] = null;
          dom.cb = -1;
        },
        *attachDev(d, dev) {
          probe('arm_smmu_attach_dev', 'entry');
          const dom = priv(d);
          const idx = devSme.get(dev);
          if (idx === undefined) return -ENODEV;
          if (dom.cb < 0) {
            // arm_smmu_init_domain_context: a free bank, ASID and interrupt index = its number.
            const n = cbDomains.indexOf(null);
            if (n < 0) return -ENOSPC;
            cbDomains[n] = d;
            dom.cb = n;
            yield* writeContextBank(n, d);
          }
          yield* gr0w(GR0_S2CR(idx), (S2CR_TYPE_TRANS << 16) | dom.cb);
          return 0;
        },
        *mapPages(d, iova, paddr, pgsize, pgcount, prot, out) {
          probe('arm_smmu_map_pages', 'entry');
          const r = yield* priv(d).iop.mapPages(iova, paddr, pgsize, pgcount, prot, 'GFP_ATOMIC');
          out.mapped += r.mapped;
          return r.ret;
        },
        unmapPages(d, iova, pgsize, pgcount, gather) {
          probe('arm_smmu_unmap_pages', 'entry');
          return priv(d).iop.unmapPages(iova, pgsize, pgcount, gather);
        },
        iovaToPhys(d, iova) {
          return priv(d).iop.iovaToPhys(iova);
        },
        *iotlbSync(d) {
          const dom = priv(d);
          if (dom.cb >= 0) yield* syncContext(dom);
        },
        flushIotlbAll: (d) => invContext(priv(d)),
        *irq() {
          let handled = yield* globalFault();
          for (let n = 0; n < numCbs; n++) if (cbDomains[n] && (yield* contextFault(n, cbDomains[n]!))) handled = true;
          return handled;
        },
      };

      function* globalFault(): Op<boolean> {
        const gfsr = yield* gr0r(GR0_sGFSR);
        if (!(gfsr & sGFSR_FAULT)) return false;
        const gfsynr0 = yield* gr0r(GR0_sGFSYNR0);
        const gfsynr1 = yield* gr0r(GR0_sGFSYNR1);
        log.printk('err', `${name}: Unexpected global fault, this could be serious: GFSR ${hex(gfsr)}, GFSYNR0 ${hex(gfsynr0)}, GFSYNR1 ${hex(gfsynr1)}`, name);
        yield* gr0w(GR0_sGFSR, gfsr);
        return true;
      }

      /** arm_smmu_context_fault. */
      function* contextFault(n: number, d: IommuDomain): Op<boolean> {
        const fsr = yield* cbr(n, CB.FSR);
        if (!(fsr & FSR_FAULT)) return false;
        probe('arm_smmu_context_fault', 'entry');
        const fsynr = yield* cbr(n, CB.FSYNR0);
        const iova = (yield* cbr(n, CB.FAR_HI)) * TWO32 + (yield* cbr(n, CB.FAR_LO));
        const cbfrsynra = yield* gr1r(GR1_CBFRSYNRA(n));
        const dev = ctx.devices.find((x) => (x.masterId ?? 0) === (cbfrsynra & 0xffff))?.name ?? name;
        const r = core.reportFault(d, dev, iova, fsynr & FSYNR0_WNR ? 1 : 0);
        if (r === -ENOSYS) {
          log.printk('err', `${name}: Unhandled context fault: fsr=${hex(fsr)}, iova=${hex(iova)}, fsynr=${hex(fsynr)}, cbfrsynra=${hex(cbfrsynra)}, cb=${n}`, name);
        }
        yield* cbw(n, CB.FSR, fsr);
        return true;
      }

      return ops;
    },
  };
}
