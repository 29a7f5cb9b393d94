/**
 * Trace events in a window of simulated time, for the timeline. The ring is in emission order,
 * which is not time order (a DMA span is emitted when it ends, stamped with its start), so the
 * window is a filter, and a span counts when any part of it overlaps the window.
 */
import type { TraceEvent } from '../core/trace';
import type { TraceWindow } from './types';

export type { TraceWindow };

export function traceWindow(all: readonly TraceEvent[], from: number, to: number, limit: number): TraceWindow {
  let start = Infinity;
  let end = -Infinity;
  const hits: TraceEvent[] = [];
  for (const e of all) {
    const eEnd = e.time + (e.dur ?? 0);
    if (e.time < start) start = e.time;
    if (eEnd > end) end = eEnd;
    if (e.time <= to && eEnd >= from) hits.push(e);
  }
  hits.sort((a, b) => a.time - b.time);
  // Thin evenly rather than cutting the tail, so a zoomed-out timeline still shows the whole window.
  const events = hits.length <= limit ? hits : thin(hits, limit);
  return { events, total: hits.length, extent: hits.length || all.length ? { start, end } : null };
}

function thin(events: TraceEvent[], limit: number): TraceEvent[] {
  if (limit <= 0) return [];
  const step = events.length / limit;
  const out: TraceEvent[] = [];
  for (let i = 0; i < limit; i++) out.push(events[Math.floor(i * step)]!);
  return out;
}
