/**
 * Benchmark of map + unmap of one page through an IOMMU driver onto its hardware model, on an attached
 * domain of an M4U (v7s) and of an SMMUv2 (LPAE), two ways: the driver's map_pages / unmap_pages (with
 * a gather, as iommu_unmap_fast) and the whole iommu_map / iommu_unmap (page-size split,
 * iotlb_sync_map and iotlb_sync with the drivers' MMIO invalidation and poll).
 */
import { IotlbGather, type MapOut } from '../iommu-core';
import { runOp } from '../../core/coop';
import type { SocConfig } from '../../config/types';
import { IOMMU_MODELS, Soc } from '../../soc';
import type { KernelDriver } from '../kernel';
import { armSmmuDriver } from './arm-smmu';
import { mtkIommuDriver } from './mtk-iommu';

export interface DriverBenchResult {
  name: string;
  /** map and unmap calls, each counted as one op. */
  ops: number;
  seconds: number;
  /** CPU time of the process: steadier than wall time on a loaded machine. */
  cpuSeconds: number;
  /** ops / cpuSeconds. */
  opsPerSec: number;
}

const RW = 3;

function soc(model: 'mtk-v7s' | 'arm-lpae', coherentWalk: boolean): { soc: Soc; dev: string; iommu: string } {
  const mtk = model === 'mtk-v7s';
  const config: SocConfig = {
    version: 1,
    name: 'bench',
    memory: [{ name: 'dram', base: mtk ? 0x4000_0000 : 0x8000_0000, size: 0x4000_0000 }],
    iommus: [{ name: 'iommu0', model, reg: [{ base: mtk ? 0x1020_5000 : 0xd000_0000, size: mtk ? 0x1000 : 0x10000 }], coherentWalk }],
    devices: [{ name: 'dev0', iommu: 'iommu0', masterId: 0 }],
  };
  const drivers: KernelDriver[] = [mtk ? mtkIommuDriver() : armSmmuDriver()];
  return { soc: new Soc(config, 1, IOMMU_MODELS, drivers), dev: 'dev0', iommu: 'iommu0' };
}

function run(name: string, model: 'mtk-v7s' | 'arm-lpae', pgsize: number, iterations: number, coherentWalk: boolean, api: boolean): DriverBenchResult {
  const { soc: s, dev, iommu } = soc(model, coherentWalk);
  const core = s.kernel.core;
  const d = runOp(core.domainAlloc(iommu, 'unmanaged'));
  if (typeof d === 'number') throw new Error(`bench: domain_alloc failed ${d}`);
  if (runOp(core.attachGroup(d, core.groupName(dev))) !== 0) throw new Error('bench: attach failed');
  const slots = 64;
  const base = 0x1000_0000;
  const pa = model === 'mtk-v7s' ? 0x4000_0000 : 0x8000_0000;
  const out: MapOut = { mapped: 0 };
  const gather = new IotlbGather();
  const once = (i: number): void => {
    const iova = base + (i % slots) * pgsize;
    const p = pa + (i % slots) * pgsize;
    if (api) {
      const r = runOp(core.map(d, iova, p, pgsize, RW));
      if (r) throw new Error(`bench: map failed ${r}`);
      if (runOp(core.unmap(d, iova, pgsize)) !== pgsize) throw new Error('bench: unmap failed');
      return;
    }
    const r = runOp(d.ops.mapPages(d, iova, p, pgsize, 1, RW, out));
    if (r) throw new Error(`bench: map_pages failed ${r}`);
    if (runOp(d.ops.unmapPages(d, iova, pgsize, 1, gather)) !== pgsize) throw new Error('bench: unmap_pages failed');
    gather.init();
  };
  // Warm up: tables allocated and the JIT settled before timing.
  for (let i = 0; i < Math.min(iterations, 2000); i++) once(i);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) once(i);
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuSeconds = (c.user + c.system) / 1e6;
  return { name, ops: iterations * 2, seconds, cpuSeconds, opsPerSec: (iterations * 2) / cpuSeconds };
}

/**
 * v7s (M4U) and LPAE (SMMUv2) map+unmap of 4 KiB pages and of blocks (1 MiB sections, 2 MiB blocks),
 * through the driver ops and through iommu_map / iommu_unmap.
 */
export function benchIommuDrivers(iterations = 100_000, coherentWalk = false): DriverBenchResult[] {
  const cases: [string, 'mtk-v7s' | 'arm-lpae', number][] = [
    ['mtk v7s 4K', 'mtk-v7s', 0x1000],
    ['mtk v7s 1M', 'mtk-v7s', 0x100000],
    ['smmu lpae 4K', 'arm-lpae', 0x1000],
    ['smmu lpae 2M', 'arm-lpae', 0x200000],
  ];
  return [false, true].flatMap((api) => cases.map(([n, model, size]) => run(`${n} ${api ? 'iommu_map+unmap' : 'map_pages+unmap_pages'}`, model, size, iterations, coherentWalk, api)));
}
