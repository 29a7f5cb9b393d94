/**
 * alloc_io_pgtable_ops: the format table of drivers/iommu/io-pgtable.c. Kept apart from
 * io-pgtable.ts so the formats can import the framework without an import cycle.
 */
import { armLpaeS1AllocPgtable } from './io-pgtable-arm-lpae';
import { armV7sAllocPgtable } from './io-pgtable-arm-v7s';
import type { IoPgtableCfg, IoPgtableEnv, IoPgtableFmt, IoPgtableOps } from './io-pgtable';

const FORMATS: Record<IoPgtableFmt, (cfg: IoPgtableCfg, env: IoPgtableEnv) => IoPgtableOps | null> = {
  'arm-v7s': armV7sAllocPgtable,
  'arm-64-lpae-s1': armLpaeS1AllocPgtable,
};

/** The format's ops over cfg (narrowed and completed in place), or null if it cannot serve cfg. */
export function allocIoPgtableOps(fmt: IoPgtableFmt, cfg: IoPgtableCfg, env: IoPgtableEnv): IoPgtableOps | null {
  return FORMATS[fmt](cfg, env);
}
