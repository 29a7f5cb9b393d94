import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type { TraceEvent } from '../../shared/session-api';
import { api } from '../api/client';

/** Events fetched per window: enough for a dense picture, small enough to draw in a frame. */
export const TIMELINE_LIMIT = 6_000;

/** The timeline's visible window (cycles), its events, and the marked moment. */
export const useTimelineStore = defineStore('timeline', () => {
  const start = ref(0);
  const end = ref(0);
  const events = shallowRef<TraceEvent[]>([]);
  /** seq[i]: events[i]'s sequence number in the run, the moment to open for it. */
  const seq = shallowRef<number[]>([]);
  const total = ref(0);
  const extent = shallowRef<{ start: number; end: number } | null>(null);
  /** A moment to mark (a selected finding). */
  const marker = ref<number | null>(null);
  /** The user has zoomed or panned: a refresh keeps the window instead of fitting it. */
  const pinned = ref(false);

  async function fetch(): Promise<void> {
    if (!pinned.value) {
      // Unpinned: look at the whole trace (the ring's extent), learnt with a cheap first query.
      const probe = await api.traceWindow(0, Number.MAX_SAFE_INTEGER, 1);
      extent.value = probe.extent;
      const ex = probe.extent ?? { start: 0, end: 1000 };
      const pad = Math.max(1, (ex.end - ex.start) * 0.02);
      start.value = Math.max(0, ex.start - pad);
      end.value = ex.end + pad;
    }
    const w = await api.traceWindow(start.value, end.value, TIMELINE_LIMIT);
    events.value = w.events;
    seq.value = w.seq;
    total.value = w.total;
    extent.value = w.extent;
  }

  function setWindow(s: number, e: number): void {
    const min = 10;
    if (e - s < min) e = s + min;
    start.value = Math.max(0, s);
    end.value = Math.max(start.value + min, e);
    pinned.value = true;
  }

  function fit(): void {
    pinned.value = false;
  }

  /** Centre the window on a moment and mark it (keeps the zoom when pinned). */
  function focus(time: number): void {
    marker.value = time;
    const half = pinned.value ? (end.value - start.value) / 2 : Math.max(500, (end.value - start.value) / 8);
    setWindow(time - half, time + half);
  }

  /** The SoC was replaced: its trace is gone; the next fetch fits the new one. */
  function reset(): void {
    events.value = [];
    seq.value = [];
    total.value = 0;
    extent.value = null;
    marker.value = null;
    pinned.value = false;
  }

  return { start, end, events, seq, total, extent, marker, pinned, fetch, setWindow, fit, focus, reset };
});
