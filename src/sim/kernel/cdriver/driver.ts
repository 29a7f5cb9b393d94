/**
 * The bridge: a KernelDriver whose IommuOps call into a compiled C driver (runtime.ts), over the
 * same KernelPort, page allocator, runtime PM, device links and iommu-core as the TypeScript
 * drivers, so dma-iommu, the checkers, findings and the explorer see no difference.
 *
 * The C driver's probe gets the instance's resources from the SoC config: register windows, the
 * interrupt, and (through of_xlate) each master's `iommus` specifier, its master ID.
 */
import type { Op } from '../../core/coop';
import { num, type IommuConfig } from '../../config/types';
import { ENODEV, ENOMEM } from '../errno';
import type { IommuDomain, IommuOps } from '../iommu-core';
import type { DriverContext, KernelDriver } from '../kernel';
import type { LinkFlag } from '../pm';
import type { PageOwner, SlabCache } from '../page-alloc';
import { COops, CRuntime, type CSite } from './runtime';

/** A compiled driver, ready to instantiate per SoC. */
export interface CDriverImage {
  module: WebAssembly.Module;
  /** The source path as the user gave it (config-relative resolved), for `kernel.driver(name).source`. */
  source: string;
  defines: Record<string, string | number | boolean>;
}

const DOMAIN_TYPE: Record<string, number> = { unmanaged: 1, dma: 3, 'dma-fq': 11, identity: 4, blocked: 0 };
const PRINTK_LEVEL = (l: number): 'err' | 'warn' | 'info' | 'debug' => (l <= 3 ? 'err' : l === 4 ? 'warn' : l <= 6 ? 'info' : 'debug');

interface CDomain {
  ptr: number;
  /** Which of iotlb_sync_map / iotlb_sync / flush_iotlb_all it has (bits), and iotlb_sync_map's table index. */
  ops: number;
  syncMap: number;
}

export function cIommuDriver(iommu: IommuConfig, image: CDriverImage): KernelDriver {
  return {
    model: iommu.model,
    instance: iommu.name,
    source: image.source,
    *probe(ctx: DriverContext): Op<IommuOps | number> {
      const name = ctx.config.name;
      const { port, pages, pm, log, core } = ctx;
      const devNames = [name, ...ctx.devices.map((d) => d.name)];
      const devPtr = new Map<string, number>();
      const devByPtr = new Map<number, string>();
      const caches = new Map<number, SlabCache>();
      const cacheOf = new Map<number, number>();
      /** The domain the call in flight works for: its table pages are owned by it (table-leak check). */
      let ownerDomain = -1;
      const owner = (level: number): PageOwner => (ownerDomain >= 0 ? { kind: 'pgtable', domain: ownerDomain, level, iommu: name } : { kind: 'driver', name });
      const domains = new Map<number, IommuDomain>();
      const fail = (s: CSite | null, message: string, kind: 'driver-warn' | 'driver-oops'): void => {
        log.printk(kind === 'driver-oops' ? 'err' : 'warn', message, name);
        ctx.findings?.report({
          kind,
          severity: kind === 'driver-oops' ? 'error' : 'warning',
          message,
          where: { iommu: name, ...(s ? { file: s.file, function: s.func, ...(s.line > 0 ? { cline: s.line } : {}) } : {}) },
        });
      };
      const kvaBase = pages.ranges[0]?.base ?? 0;
      const linkFlags = (f: number): LinkFlag[] => {
        const out: LinkFlag[] = [];
        if (f & 1) out.push('stateless');
        if (f & 4) out.push('pm-runtime');
        if (f & 8) out.push('rpm-active');
        return out;
      };
      const variant: Record<string, string | number | boolean> = {};
      const rt: CRuntime = new CRuntime(image.module, {
        port,
        cyclesPerUs: ctx.cyclesPerUs,
        now: ctx.now,
        kvaBase,
        who: 'cpu',
        file: image.source.slice(Math.max(image.source.lastIndexOf('/'), image.source.lastIndexOf('\\')) + 1),
        variant: (key, dflt) => {
          const v = variant[key];
          if (v === undefined) {
            variant[key] = dflt !== 0;
            return dflt;
          }
          return typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
        },
        warn: (s, cond) => fail(s, `WARNING: ${s ? `${s.file}:${s.line} ${s.func}: ` : ''}${cond}`, 'driver-warn'),
        services: {
          log: ((level: number, msg: number, len: number) => {
            const text = new TextDecoder().decode(new Uint8Array(rt.exports.memory.buffer, msg, len));
            log.printk(PRINTK_LEVEL(level), text, name);
          }) as never,
          page_alloc: ((cache: number, order: number, zero: number) => {
            const pa = pages.allocPages(order, owner(1), { zero: zero !== 0 });
            return pa === null ? 0 : rt.paToKva(pa);
          }) as never,
          page_free: ((va: number, order: number) => pages.freePages(rt.kvaToPa(va >>> 0), order)) as never,
          cache_create: ((cname: number, size: number) => {
            const id = caches.size;
            caches.set(id, pages.createCache(`${name}-${rt.cstring(cname)}-${id}`, size));
            return id;
          }) as never,
          cache_alloc: ((id: number, zero: number) => {
            const pa = caches.get(id)!.alloc(owner(2), { zero: zero !== 0 });
            if (pa === null) return 0;
            cacheOf.set(pa, id);
            return rt.paToKva(pa);
          }) as never,
          cache_free: ((id: number, va: number) => {
            const pa = rt.kvaToPa(va >>> 0);
            cacheOf.delete(pa);
            caches.get(id)!.free(pa);
          }) as never,
          dma_sync: ((lo: number, hi: number, size: number, dir: number) => {
            const pa = (hi >>> 0) * 0x100000000 + (lo >>> 0);
            if (dir === 2) port.invalidateDcache(pa, size);
            else port.cleanDcache(pa, size);
          }) as never,
          fault: ((domain: number, dev: number, iova: number, flags: number) => {
            const d = domains.get(domain);
            if (!d) return -ENODEV;
            return core.reportFault(d, devNames[dev] ?? name, iova >>> 0, flags);
          }) as never,
          clk_gate: ((on: number) => {
            if (on) return ctx.clk.prepareEnable();
            ctx.clk.disableUnprepare();
            return 0;
          }) as never,
          reset_line: ((asserted: number) => (asserted ? ctx.reset.assert() : ctx.reset.deassert())) as never,
        },
        opServices: {
          pm_runtime: ((what: number, dev: number) => pmRuntime(what, devByPtr.get(dev) ?? name)) as never,
          device_link: ((c: number, s: number, f: number) => deviceLink(devNames[c] ?? '', devNames[s] ?? '', f)) as never,
        },
      });

      function* pmRuntime(what: number, dev: string): Op<number> {
        switch (what) {
          case 0:
            pm.enable(dev);
            return 0;
          case 1:
            yield* pm.disable(dev);
            return 0;
          case 2:
            return yield* pm.getSync(dev);
          case 3:
            return yield* pm.resumeAndGet(dev);
          case 4:
            return yield* pm.put(dev);
          case 5:
            return yield* pm.putSync(dev);
          case 6:
            return yield* pm.putAutosuspend(dev);
          case 7:
            return pm.getIfInUse(dev);
          case 8:
            yield* pm.useAutosuspend(dev, true);
            return 0;
          case 9:
            pm.markLastBusy(dev);
            return 0;
          case 10:
            return yield* pm.suspend(dev);
          case 11:
            return yield* pm.resume(dev);
          case 12:
            pm.putNoidle(dev);
            return 0;
          default:
            return -ENODEV;
        }
      }

      function* deviceLink(consumer: string, supplier: string, flags: number): Op<number> {
        if (flags === 0xffffffff) {
          yield* pm.linkDel(consumer, supplier);
          return 0;
        }
        const l = yield* pm.linkAdd(consumer, supplier, linkFlags(flags));
        return l ? 0 : -ENOMEM;
      }

      /** A call into C: a WARN is a finding; BUG and traps are oopses (a finding, and -EIO back). */
      function* c(fn: string | number, args: readonly (number | bigint)[], domain = -1): Op<unknown> {
        // After an oops the instance is gone: its finding was reported once, later calls just fail.
        if (rt.dead) return undefined;
        const prev = ownerDomain;
        ownerDomain = domain;
        try {
          return yield* rt.call(fn, args);
        } catch (e) {
          if (!(e instanceof COops)) throw e;
          fail(e.site, `${e.kind === 'bug' ? '' : 'Internal error: '}${e.message}`, 'driver-oops');
          return undefined;
        } finally {
          ownerDomain = prev;
        }
      }
      const int = (v: unknown, dflt = -5): number => (typeof v === 'number' ? v : dflt);

      // The IOMMU's platform device (device 0), then the masters behind it.
      const strings = (s: string): number => {
        const bytes = new TextEncoder().encode(s + '\0');
        const p = int(runToEnd(c('kmalloc', [bytes.length, 0])), 0);
        new Uint8Array(rt.exports.memory.buffer).set(bytes, p);
        return p;
      };
      devNames.forEach((n, i) => {
        const p = int(runToEnd(c('__soc_new_device', [strings(n), i])), 0);
        devPtr.set(n, p);
        devByPtr.set(p, n);
      });
      // Out-parameter slots (map_pages' mapped), one per call in flight.
      const slots: number[] = [];
      for (let i = 0; i < 8; i++) slots.push(int(runToEnd(c('kmalloc', [8, 0x100])), 0));
      const regs = ctx.config.reg.flatMap((r) => [num(r.base), num(r.size)]);
      const regPtr = int(runToEnd(c('kmalloc', [regs.length * 4 + 4, 0])), 0);
      regs.forEach((v, i) => rt.writeU32(regPtr + 4 * i, v));
      runToEnd(c('__soc_set_resources', [ctx.config.reg.length, regPtr, ctx.config.irq ?? -1]));

      const pr = int(yield* c('__soc_probe', []));
      if (pr < 0) return pr;
      const pgsizeBitmap = int(yield* c('__soc_ops_info', [0]), 0) >>> 0;
      if (pgsizeBitmap === 0) return -ENODEV;
      const statics = int(yield* c('__soc_ops_info', [1]), 0);
      if (int(yield* c('__soc_has_pm_callbacks', []), 0)) {
        pm.setOps(name, {
          *runtimeSuspend() {
            return int(yield* c('__soc_pm_callback', [0]));
          },
          *runtimeResume() {
            return int(yield* c('__soc_pm_callback', [1]));
          },
        });
      }

      const ptrOf = function* (d: IommuDomain): Op<number> {
        if (d.priv) return (d.priv as CDomain).ptr;
        const which = d.type === 'identity' ? 1 : d.type === 'blocked' ? 2 : 0;
        if (!which) return 0;
        const p = int(yield* c('__soc_static_domain', [which, d.id]), 0);
        domains.set(d.id, d);
        return p;
      };
      const firstMaster = devPtr.get(devNames[1] ?? name) ?? 0;
      const masterId = new Map(ctx.devices.map((d) => [d.name, d.masterId ?? 0]));

      const ops: IommuOps = {
        name,
        model: ctx.config.model,
        variant,
        pgsizeBitmap,
        groupPolicy: 'single',
        identityDomain: (statics & 1) !== 0,
        blockedDomain: (statics & 2) !== 0,
        snapshot: () => rt.snapshot(),
        snapshotReady: () => rt.idle(),
        restore: (s) => rt.restore(s as ReturnType<CRuntime['snapshot']>),
        snapshotDomain: () => null,
        restoreDomain: () => undefined,
        *probeDevice(dev) {
          const p = devPtr.get(dev);
          if (p === undefined) return -ENODEV;
          return int(yield* c('__soc_probe_device', [p, masterId.get(dev) ?? 0]));
        },
        *releaseDevice(dev) {
          const p = devPtr.get(dev);
          if (p !== undefined) yield* c('__soc_release_device', [p]);
        },
        *domainAllocPaging(d) {
          const p = int(yield* c('__soc_domain_alloc', [DOMAIN_TYPE[d.type] ?? 1, firstMaster, d.id], d.id), 0);
          if (p === 0) return -ENOMEM;
          const has = int(yield* c('__soc_domain_ops', [p]), 0);
          const syncMap = has & 1 ? int(yield* c('__soc_sync_map_fn', [p]), 0) : 0;
          d.priv = { ptr: p, ops: has, syncMap } satisfies CDomain;
          domains.set(d.id, d);
          const info = function* (w: number): Op<number> {
            return int(yield* c('__soc_domain_info', [p, w]), 0) >>> 0;
          };
          d.pgsizeBitmap = (yield* info(0)) || pgsizeBitmap;
          const start = yield* info(1);
          const end = yield* info(2);
          const force = (yield* info(3)) !== 0;
          if (force || end !== 0) d.geometry = { apertureStart: start, apertureEnd: end, forceAperture: force };
          return 0;
        },
        *domainFree(d) {
          const p = yield* ptrOf(d);
          if (p) yield* c('__soc_domain_free', [p], d.id);
        },
        *attachDev(d, dev) {
          const p = yield* ptrOf(d);
          const dp = devPtr.get(dev);
          if (!p || dp === undefined) return -ENODEV;
          return int(yield* c('__soc_attach', [p, dp], d.id));
        },
        *mapPages(d, iova, paddr, pgsize, pgcount, prot, out) {
          const p = (d.priv as CDomain).ptr;
          const slot = slots.pop();
          if (slot === undefined) throw new Error(`${name}: too many map calls in flight`);
          rt.writeU32(slot, 0);
          try {
            const r = int(yield* c('__soc_map', [p, iova >>> 0, paddr % 0x100000000, Math.floor(paddr / 0x100000000), pgsize, pgcount, prot, slot], d.id));
            out.mapped += rt.readU32(slot);
            return r;
          } finally {
            slots.push(slot);
          }
        },
        *unmapPages(d, iova, pgsize, pgcount) {
          return int(yield* c('__soc_unmap', [(d.priv as CDomain).ptr, iova >>> 0, pgsize, pgcount], d.id), 0) >>> 0;
        },
        *iovaToPhys(d, iova) {
          const r = yield* c('__soc_iova_to_phys', [(d.priv as CDomain).ptr, iova >>> 0], d.id);
          return typeof r === 'bigint' ? Number(r) : 0;
        },
        *iotlbSyncMap(d, iova, size) {
          const { ptr, syncMap } = d.priv as CDomain;
          if (!syncMap) return 0;
          // Before v6.8 iotlb_sync_map returned void (undefined here).
          return int(yield* c(syncMap, [ptr, iova >>> 0, size >>> 0], d.id), 0);
        },
        *iotlbSync(d, gather) {
          const { ptr: p, ops: has } = d.priv as CDomain;
          if (!(has & 2)) return;
          const start = gather.pgsize ? Math.min(gather.start, 0xffffffff) : 0;
          yield* c('__soc_iotlb_sync', [p, start >>> 0, Math.min(gather.end, 0xffffffff) >>> 0, gather.pgsize >>> 0], d.id);
        },
        *flushIotlbAll(d) {
          const { ptr: p, ops: has } = d.priv as CDomain;
          if (!(has & 4)) return;
          yield* c('__soc_flush_iotlb_all', [p], d.id);
        },
        *irq() {
          return int(yield* c('__soc_irq', []), 0) !== 0;
        },
      };
      return ops;
    },
  };
}

/** Setup calls that yield only points nothing else can be waiting at (before the instance exists for anyone). */
function runToEnd<T>(op: Op<T>): T {
  let r = op.next();
  while (!r.done) r = op.next();
  return r.value;
}
