/**
 * Trace export in the Chrome trace-event JSON format, which ui.perfetto.dev and chrome://tracing
 * open: one process for the SoC, one thread (track) per block or device, spans as complete events
 * ('X') and everything else as instants ('i'). Timestamps are microseconds.
 */
import type { TraceEvent } from '../core/trace';

/**
 * The simulated clock rate the export assumes: 1 MHz, i.e. one cycle per microsecond. It is the
 * rate the kernel layer's runtime PM assumes too (1000 cycles per ms), so autosuspend delays read
 * correctly in the exported trace.
 */
export const TRACE_CYCLES_PER_US = 1;

export interface PerfettoEvent {
  name: string;
  cat: string;
  ph: 'X' | 'i' | 'M';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  /** Instant scope: per thread. */
  s?: 't';
  args: Record<string, string | number | boolean>;
}

export interface PerfettoTrace {
  traceEvents: PerfettoEvent[];
  displayTimeUnit: 'ns' | 'ms';
  otherData: Record<string, string | number>;
}

const PID = 1;

export function toPerfetto(events: readonly TraceEvent[], opts: { socName: string; cyclesPerUs?: number }): PerfettoTrace {
  const perUs = opts.cyclesPerUs ?? TRACE_CYCLES_PER_US;
  const tids = new Map<string, number>();
  const tidOf = (track: string): number => {
    let t = tids.get(track);
    if (t === undefined) {
      t = tids.size + 1;
      tids.set(track, t);
    }
    return t;
  };
  const body: PerfettoEvent[] = [...events]
    .sort((a, b) => a.time - b.time)
    .map((e) => {
      const base = { name: e.name, cat: e.cat, ts: e.time / perUs, pid: PID, tid: tidOf(e.track), args: { ...(e.args ?? {}) } };
      return e.dur !== undefined ? { ...base, ph: 'X' as const, dur: e.dur / perUs } : { ...base, ph: 'i' as const, s: 't' as const };
    });
  // Metadata names the process and one thread per track, so the viewer labels the rows.
  const meta: PerfettoEvent[] = [
    { name: 'process_name', cat: '__metadata', ph: 'M', ts: 0, pid: PID, tid: 0, args: { name: opts.socName } },
    ...[...tids].map(([track, tid]): PerfettoEvent => ({ name: 'thread_name', cat: '__metadata', ph: 'M', ts: 0, pid: PID, tid, args: { name: track } })),
  ];
  return { traceEvents: [...meta, ...body], displayTimeUnit: 'ns', otherData: { soc: opts.socName, cyclesPerUs: perUs } };
}
