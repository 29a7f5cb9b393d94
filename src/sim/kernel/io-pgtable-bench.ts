/**
 * Micro benchmark of the io-pgtable formats: map + unmap loops through runOp over a port straight
 * onto RAM (no cache, no TLB callbacks), so the figure is the cost of the format code and its
 * generator plumbing alone.
 */
import { runOp } from '../core/coop';
import { SparseRam } from '../mem/ram';
import { IOMMU_READ, IOMMU_WRITE, SZ_16M, SZ_1G, SZ_1M, SZ_2M, SZ_4K, SZ_64K, type IoPgtableCfg, type IoPgtableOps } from './io-pgtable';
import { allocIoPgtableOps } from './io-pgtable-alloc';
import { TestTableAllocator, ramPort } from './io-pgtable-testkit';

export interface IoPgtableBenchResult {
  name: string;
  /** map and unmap calls, each counted as one op. */
  ops: number;
  /** Wall-clock time. */
  seconds: number;
  /** CPU time of the process: steadier than wall time on a loaded machine. */
  cpuSeconds: number;
  /** ops / cpuSeconds. */
  opsPerSec: number;
}

const RAM_BASE = 0x40000000;
const RAM_SIZE = 0x10000000;

function setup(fmt: 'arm-v7s' | 'arm-64-lpae-s1'): IoPgtableOps {
  const ram = new SparseRam(RAM_BASE, RAM_SIZE);
  const alloc = new TestTableAllocator(RAM_BASE, RAM_BASE + RAM_SIZE, (pa, size) => ram.writeFrom(pa, new Uint8Array(size)));
  const cfg: IoPgtableCfg =
    fmt === 'arm-v7s'
      ? { quirks: 0, pgsizeBitmap: SZ_4K | SZ_64K | SZ_1M | SZ_16M, ias: 32, oas: 32, coherentWalk: true, tlb: null }
      : { quirks: 0, pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 32, oas: 40, coherentWalk: true, tlb: null };
  const ops = allocIoPgtableOps(fmt, cfg, { port: ramPort(ram), alloc });
  if (!ops) throw new Error(`bench: ${fmt} refused its config`);
  return ops;
}

function run(name: string, ops: IoPgtableOps, pgsize: number, iterations: number): IoPgtableBenchResult {
  const prot = IOMMU_READ | IOMMU_WRITE;
  const slots = 64;
  const base = 0x10000000;
  const pa = 0x80000000;
  // Warm up: tables allocated and the JIT settled before timing.
  for (let i = 0; i < Math.min(iterations, 2000); i++) {
    const iova = base + (i % slots) * pgsize;
    runOp(ops.mapPages(iova, pa, pgsize, 1, prot, 'GFP_ATOMIC'));
    runOp(ops.unmapPages(iova, pgsize, 1, null));
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) {
    const iova = base + (i % slots) * pgsize;
    const r = runOp(ops.mapPages(iova, pa + (i % slots) * pgsize, pgsize, 1, prot, 'GFP_ATOMIC'));
    if (r.ret) throw new Error(`bench: map failed ${r.ret}`);
    if (runOp(ops.unmapPages(iova, pgsize, 1, null)) !== pgsize) throw new Error('bench: unmap failed');
  }
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const cpuSeconds = (c.user + c.system) / 1e6;
  return { name, ops: iterations * 2, seconds, cpuSeconds, opsPerSec: (iterations * 2) / cpuSeconds };
}

/** v7s and LPAE map+unmap of 4 KiB pages and of blocks (1 MiB sections, 2 MiB blocks). */
export function benchIoPgtable(iterations = 200_000): IoPgtableBenchResult[] {
  return [
    run('v7s 4K map+unmap', setup('arm-v7s'), SZ_4K, iterations),
    run('v7s 1M map+unmap', setup('arm-v7s'), SZ_1M, iterations),
    run('lpae 4K map+unmap', setup('arm-64-lpae-s1'), SZ_4K, iterations),
    run('lpae 2M map+unmap', setup('arm-64-lpae-s1'), SZ_2M, iterations),
  ];
}
