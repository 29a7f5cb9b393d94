/**
 * A driver against a reference model: random map/unmap commands on a 64-page IOVA window straddling
 * a DTE boundary, checked against a page map, with every mapped page read (and written) by real
 * DMA through the hardware model right after its map returns, and every unmapped page faulting.
 */
import { expect } from 'vitest';
import { runOp } from '../../core/coop';
import type { Soc } from '../../soc';

const PAGE = 4096;
const WINDOW = 64;
const POOL = 32;
const RW = 3;

export interface ReferenceRun {
  iommu: string;
  dev: string;
  /** What the driver returns for a map over an existing mapping. */
  overlapErr: number;
  /** First IOVA of the window. */
  base: number;
  /** [map?, first page in window, pages, physical page in pool]. */
  cmds: [boolean, number, number, number][];
}

const marker = (i: number): number => (0x5a000000 + i) >>> 0;

export function checkAgainstReference(soc: Soc, run: ReferenceRun): void {
  const k = soc.kernel;
  const drain = (): void => {
    if (k.pm.hasWork()) runOp(k.pm.runWork());
  };
  runOp(k.pm.getSync(run.dev));
  drain();
  const d = runOp(k.core.domainAlloc(run.iommu, 'unmanaged'));
  if (typeof d === 'number') throw new Error(`domain_alloc: ${d}`);
  expect(runOp(k.core.attachGroup(d, k.core.groupName(run.dev)))).toBe(0);
  drain();
  const pool = k.pages.allocExact(POOL, { kind: 'script' })!;
  for (let i = 0; i < POOL; i++) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, marker(i), true);
    soc.cache.write(pool + i * PAGE, b);
    soc.cache.clean(pool + i * PAGE, 4);
  }
  const dev = soc.device(run.dev);
  const ref = new Map<number, number>();
  for (const [isMap, first, want, phys] of run.cmds) {
    const n = Math.min(want, WINDOW - first);
    const iova = run.base + first * PAGE;
    if (isMap) {
      const start = phys % (POOL - n + 1);
      let overlap = false;
      for (let i = 0; i < n; i++) if (ref.has(first + i)) overlap = true;
      expect(runOp(k.core.map(d, iova, pool + start * PAGE, n * PAGE, RW))).toBe(overlap ? run.overlapErr : 0);
      drain();
      if (overlap) continue;
      for (let i = 0; i < n; i++) {
        ref.set(first + i, start + i);
        const r = dev.read(iova + i * PAGE, 4);
        expect(r.ok, `DMA read of IOVA 0x${(iova + i * PAGE).toString(16)}`).toBe(true);
        expect(new DataView(r.data!.buffer).getUint32(0, true)).toBe(marker(start + i));
        const w = dev.write(iova + i * PAGE + 8, Uint8Array.of(first + i));
        expect(w.ok).toBe(true);
        expect(soc.ram.read8(pool + (start + i) * PAGE + 8)).toBe(first + i);
      }
    } else {
      let run0 = 0;
      while (run0 < n && ref.has(first + run0)) run0++;
      expect(runOp(k.core.unmap(d, iova, n * PAGE))).toBe(run0 * PAGE);
      drain();
      for (let i = 0; i < run0; i++) {
        ref.delete(first + i);
        expect(dev.read(iova + i * PAGE, 4).ok).toBe(false);
      }
    }
  }
  for (let p = 0; p < WINDOW; p++) {
    const want = ref.has(p) ? pool + ref.get(p)! * PAGE + 0x10 : 0;
    expect(runOp(k.core.iovaToPhys(d, run.base + p * PAGE + 0x10))).toBe(want);
  }
  // Unmaps that stop at a hole are warned about (unmap-mismatch), as they should be.
  expect(soc.findings.take().filter((f) => f.kind !== 'fault' && f.kind !== 'unmap-mismatch')).toEqual([]);
}
