/**
 * The IOVA map of a domain: every leaf the hardware walker can reach, merged into runs of IOVA that
 * map contiguous physical memory with one page size and one set of permissions. Holes are what lies
 * between runs. Reads table memory as the walker does (page-tables.ts), so a mapping the CPU wrote but
 * never cleaned is not in the map of a non-coherent walker, exactly as the device would find it.
 */
import type { PageAllocator } from '../kernel/page-alloc';
import type { Soc } from '../soc';
import type { IovaMap, IovaRun } from './page-tables-types';
import { tableOwnerProblem, tablesOf, type PtFormat, type TableMemory } from './page-tables';

/** Runs listed at most: the view's list and strip need no more, and a full 48-bit map stays cheap. */
export const MAX_RUNS = 20_000;

export function iovaMap(
  mem: TableMemory,
  pages: PageAllocator | null,
  fmt: PtFormat,
  domain: number,
  root: number,
  aperture: { start: number; end: number },
): IovaMap {
  const runs: IovaRun[] = [];
  let mappedBytes = 0;
  let truncated = false;

  const add = (iova: number, span: number, pa: number, pageSize: number, perms: string, problem: string | undefined): void => {
    mappedBytes += span;
    const last = runs[runs.length - 1];
    if (last && last.iova + last.size === iova && last.pa + last.size === pa && last.pageSize === pageSize && last.perms === perms && last.ownerProblem === problem) {
      last.size += span;
      return;
    }
    if (runs.length >= MAX_RUNS) {
      truncated = true;
      return;
    }
    const run: IovaRun = { iova, size: span, pa, pageSize, perms };
    if (problem !== undefined) run.ownerProblem = problem;
    runs.push(run);
  };

  /** Depth first in IOVA order; a table the domain does not own marks every run found below it. */
  const visit = (pa: number, level: number, base: number, inherited: string | undefined): void => {
    const problem = inherited ?? (pages ? (tableOwnerProblem(pages, pa, domain) ?? undefined) : undefined);
    const span = 2 ** fmt.shift(level);
    const n = fmt.entries(level);
    for (let i = 0; i < n; i++) {
      const lo = mem.word(pa + i * fmt.entrySize);
      if (lo === null) return;
      const hi = fmt.entrySize === 8 ? (mem.word(pa + i * fmt.entrySize + 4) ?? 0) : 0;
      const d = fmt.decode(lo, hi, level);
      const iova = base + i * span;
      if (d.kind === 'table') visit(d.out!, level + 1, iova, problem);
      else if (d.kind === 'page' || d.kind === 'block') add(iova, span, d.out! + (iova % d.size!), d.size!, d.perms ?? 'RW', problem);
    }
  };

  visit(root, fmt.rootLevel, 0, undefined);
  return { domain, aperture, runs, mappedBytes, truncated };
}

/** The IOVA map of the domain with this id, over its aperture. */
export function domainIovaMap(soc: Soc, id: number): IovaMap {
  const { d, t, mem, pages } = tablesOf(soc, id);
  return iovaMap(mem, pages, t.fmt, id, t.root, { start: d.geometry.apertureStart, end: d.geometry.apertureEnd });
}
