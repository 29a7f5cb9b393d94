/**
 * Trace events in a window of simulated time, for the timeline. The ring is in emission order,
 * which is not time order (a DMA span is emitted when it ends, stamped with its start), so the
 * window is a filter, and a span counts when any part of it overlaps the window.
 */
import type { TraceEvent } from '../core/trace';
import type { TraceWindow } from './types';

export type { TraceWindow };

/** all: the ring in emission order; firstSeq: the sequence number of all[0] (1 when nothing was dropped). */
export function traceWindow(all: readonly TraceEvent[], from: number, to: number, limit: number, firstSeq = 1): TraceWindow {
  let start = Infinity;
  let end = -Infinity;
  const hits: number[] = [];
  for (let i = 0; i < all.length; i++) {
    const e = all[i]!;
    const eEnd = e.time + (e.dur ?? 0);
    if (e.time < start) start = e.time;
    if (eEnd > end) end = eEnd;
    if (e.time <= to && eEnd >= from) hits.push(i);
  }
  hits.sort((a, b) => all[a]!.time - all[b]!.time || a - b);
  // Thin evenly rather than cutting the tail, so a zoomed-out timeline still shows the whole window.
  const picked = hits.length <= limit ? hits : thin(hits, limit);
  return {
    events: picked.map((i) => all[i]!),
    seq: picked.map((i) => firstSeq + i),
    total: hits.length,
    extent: hits.length || all.length ? { start, end } : null,
  };
}

function thin<T>(items: T[], limit: number): T[] {
  if (limit <= 0) return [];
  const step = items.length / limit;
  const out: T[] = [];
  for (let i = 0; i < limit; i++) out.push(items[Math.floor(i * step)]!);
  return out;
}
