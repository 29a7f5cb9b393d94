import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { MomentResult } from '../../shared/session-api';
import { api } from '../api/client';
import { requestRefresh } from '../util/refresh';
import { useReplayStore } from './replay';
import { useTimelineStore } from './timeline';

export type MomentState = Extract<MomentResult, { ok: true }>;

/**
 * Time travel: the moment of the last run every view shows (a finding, a timeline event, a step
 * either way). Opening one reruns the run's script in the engine to that trace event (nearby
 * events are kept there, so stepping is quick); requests made while one is in flight collapse
 * into the latest.
 */
export const useMomentStore = defineStore('moment', () => {
  /** The script as last run: a moment must re-execute that one, whatever the editor holds now. */
  const run = shallowRef<{ source: string; fileName: string } | null>(null);
  const state = shallowRef<MomentState | null>(null);
  const busy = ref(false);
  const error = ref<string | null>(null);
  /** The event asked for last (ahead of state while busy). */
  const wanted = ref<number | null>(null);
  /** How long the last open took, ms (shown, and read by the e2e test). */
  const lastMs = ref(0);

  const active = computed(() => state.value !== null || wanted.value !== null);

  function runStarted(source: string, fileName: string): void {
    run.value = { source, fileName };
    close();
  }

  /** The SoC was replaced: the run (and its moments) belonged to the old one. */
  function socChanged(): void {
    run.value = null;
    close();
  }

  async function open(event: number): Promise<void> {
    if (!run.value) return;
    // One SoC: a moment and an explorer replay cannot be shown at once.
    useReplayStore().stop();
    wanted.value = Math.max(1, event);
    if (busy.value) return;
    busy.value = true;
    try {
      while (run.value && wanted.value !== null && state.value?.event !== wanted.value) {
        const target = wanted.value;
        const t0 = performance.now();
        const r = await api.openMoment({ ...run.value, event: target });
        lastMs.value = performance.now() - t0;
        if (wanted.value === null) break;
        if (!r.ok) {
          error.value = r.message;
          if (wanted.value === target) wanted.value = state.value?.event ?? null;
          break;
        }
        error.value = null;
        state.value = r;
        useTimelineStore().focus(r.time);
        requestRefresh();
      }
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    } finally {
      busy.value = false;
    }
  }

  const step = (delta: number): Promise<void> => open((wanted.value ?? state.value?.event ?? 1) + delta);

  /** Leave time travel; the SoC stays at the moment shown until the next run. */
  function close(): void {
    state.value = null;
    wanted.value = null;
    error.value = null;
  }

  return { run, state, busy, error, wanted, lastMs, active, runStarted, socChanged, open, step, close };
});

/** A "file.ts:line:col" site in the given file, as a line and column. */
export function siteIn(site: string | undefined, file: string): { line: number; column: number } | null {
  const m = site ? /^(.*):(\d+):(\d+)$/.exec(site) : null;
  if (!m || m[1] !== file) return null;
  return { line: Number(m[2]), column: Number(m[3]) };
}
