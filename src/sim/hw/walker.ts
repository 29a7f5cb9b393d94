import type { HwContext } from './types';

/**
 * A table walker's 32-bit read. A non-coherent walker reads RAM only; when the CPU cache holds a
 * newer, un-cleaned value for that word, the walk uses stale memory and the driver forgot a flush
 * (problems.md P6), which is reported here, where it happens. Throws BusError off RAM. entry (and
 * the IOVA being walked) describe the read; pass constants, so no string is built on the walk path.
 */
export function walkRead32(ctx: HwContext, pa: number, coherent: boolean, agent: string, entry: string, iova?: number): number {
  const v = ctx.bus.devRead32(pa, coherent, agent);
  ctx.observer?.walkRead(agent, pa, v, iova);
  const cache = ctx.bus.cache;
  if (!coherent && cache.isDirty(pa) && cache.hasUncleanedWrite(pa, 4)) {
    const cpu = cache.read32(pa);
    const what = iova === undefined ? entry : `the ${entry} for IOVA 0x${iova.toString(16)}`;
    const table = ctx.observer?.describe(pa);
    ctx.findings.report({
      kind: 'unflushed-walk',
      severity: 'error',
      message: `${agent} walker read ${what} at 0x${pa.toString(16)}${table ? ` in ${table.label}` : ''} from memory (0x${v.toString(16)}), but the CPU cache holds 0x${cpu.toString(16)} not cleaned to memory: the table write needs a clean (dma_sync_single_for_device) before the walker may see it`,
      where: {
        iommu: agent,
        pa: `0x${pa.toString(16)}`,
        ...(iova === undefined ? {} : { iova: `0x${iova.toString(16)}` }),
        ...(table?.domain === undefined ? {} : { domain: table.domain }),
      },
    });
  }
  return v;
}
