import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { ExploreCall, ReplayStep, ReplayToResult, SessionEvent } from '../../shared/session-api';
import { api } from '../api/client';
import { requestRefresh } from '../util/refresh';
import { useMomentStore } from './moment';
import { useNamesStore } from './names';
import { usePageTablesStore } from './pagetables';
import { useScriptStore } from './script';
import { useTimelineStore } from './timeline';

/** A failing schedule of one explore call of the last run, with what it takes to replay it. */
export interface ExplorerFailure {
  /** Unique within the run: call and schedule. */
  key: string;
  testName: string;
  call: ExploreCall;
  seed: number;
  schedule: number[];
  error?: string;
  /** The script as it was run: a replay must run the same one, whatever the editor holds now. */
  source: string;
  fileName: string;
}

export type ReplayState = Extract<ReplayToResult, { ok: true }>;

/**
 * Explorer failures of the last run, and the step-by-step replay of one of them. A step is one
 * replayTo call (the engine reruns the script and the schedule's first n steps, deterministically);
 * requests made while one is in flight collapse into the latest, so holding F10 never queues up.
 */
export const useReplayStore = defineStore('replay', () => {
  const failures = shallowRef<ExplorerFailure[]>([]);
  const failure = shallowRef<ExplorerFailure | null>(null);
  const state = shallowRef<ReplayState | null>(null);
  const busy = ref(false);
  const error = ref<string | null>(null);
  /** The step the user asked for last (may be ahead of state while busy). */
  const wanted = ref(0);
  let run: { source: string; fileName: string } | null = null;

  const active = computed(() => failure.value !== null);

  /** A run starts: its failures replace the last run's, and a replay of the old state ends. */
  function runStarted(source: string, fileName: string): void {
    run = { source, fileName };
    failures.value = [];
    stop();
  }

  function onEvent(e: SessionEvent): void {
    // Replays send no events, so every finished exploration is one of the run's.
    if (e.type !== 'explore-progress' || !e.done || !e.explore || !run) return;
    const { call, testName, seed, schedules } = e.explore;
    const { source, fileName } = run;
    const added = schedules.map(
      (s): ExplorerFailure => ({
        key: `${call.test}.${call.ordinal}:${s.schedule.join(',')}`,
        testName,
        call,
        seed,
        schedule: s.schedule,
        ...(s.error !== undefined ? { error: s.error } : {}),
        source,
        fileName,
      }),
    );
    failures.value = [...failures.value, ...added];
  }

  /** The explorer failure a finding belongs to (findings of explorer runs carry their schedule). */
  function failureOf(schedule: number[] | undefined): ExplorerFailure | null {
    if (!schedule) return null;
    const key = schedule.join(',');
    return failures.value.find((f) => f.schedule.join(',') === key) ?? null;
  }

  async function start(f: ExplorerFailure): Promise<void> {
    // The run still going on owns the worker's SoC; its failures can be replayed once it ends.
    if (useScriptStore().running) return;
    useMomentStore().close();
    // The views follow the replay: page owners are re-read, and the page-table view picks the
    // domain the replayed run makes live rather than staying on the one picked before.
    useNamesStore().reset();
    usePageTablesStore().reset();
    failure.value = f;
    state.value = null;
    error.value = null;
    await goTo(0);
  }

  /** Go to step n (clamped to the replay's steps once their number is known). */
  async function goTo(n: number): Promise<void> {
    const total = state.value?.total;
    wanted.value = Math.max(0, total === undefined ? n : Math.min(n, total));
    if (busy.value) return;
    busy.value = true;
    try {
      while (failure.value && state.value?.stepIndex !== wanted.value) {
        const f = failure.value;
        const target = wanted.value;
        const r = await api.replayTo({ source: f.source, fileName: f.fileName, seed: f.seed, call: f.call, schedule: f.schedule, steps: target });
        if (failure.value !== f) continue;
        if (!r.ok) {
          error.value = r.message;
          break;
        }
        error.value = null;
        state.value = r;
        if (wanted.value === target) wanted.value = r.stepIndex;
        useTimelineStore().focus(r.time);
        requestRefresh();
      }
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    } finally {
      busy.value = false;
    }
  }

  const step = (delta: number): Promise<void> => goTo(wanted.value + delta);
  const toEnd = (): Promise<void> => goTo(state.value?.total ?? wanted.value);

  /** Leave the replay; the SoC stays at the step shown until the next run. */
  function stop(): void {
    failure.value = null;
    state.value = null;
    error.value = null;
    wanted.value = 0;
  }

  /** The SoC was replaced: the last run's failures were found on the old one. */
  function socChanged(): void {
    run = null;
    failures.value = [];
    stop();
  }

  return { failures, failure, state, busy, error, wanted, active, runStarted, socChanged, onEvent, failureOf, start, goTo, step, toEnd, stop };
});

/** Names an address: an MMIO register, or the owner of a RAM page (stores/names.ts). */
export interface AddressNamer {
  register(pa: number): string | null;
  owner(pa: number): string | null;
}

/**
 * A step in words: which thread, what it did to what, by name where the hardware has one
 * ("mmio-write iommu0.TLB_FLUSH", "mem-write 0x4000a010 (page table, domain 2, level 2)").
 */
export function describeStep(s: ReplayStep, names?: AddressNamer): string {
  let what = '';
  if (s.pa !== undefined) {
    const hex = `0x${s.pa.toString(16)}`;
    const isMmio = s.kind === 'mmio-read' || s.kind === 'mmio-write';
    const name = names ? (isMmio ? names.register(s.pa) : names.owner(s.pa)) : null;
    what = name ? (isMmio ? ` ${name} (${hex})` : ` ${hex} (${name})`) : ` ${hex}`;
  }
  return `thread ${s.thread} · ${s.kind}${what}${s.who ? ` · ${s.who}` : ''}`;
}

/** What each thread of a replay is, from what its steps do: "thread 0: cpu0 — mmio-write, mem-write". */
export function threadLegend(steps: readonly ReplayStep[]): { thread: number; text: string }[] {
  const by = new Map<number, { who: Set<string>; kinds: Set<string> }>();
  for (const s of steps) {
    const t = by.get(s.thread) ?? { who: new Set<string>(), kinds: new Set<string>() };
    if (s.who) t.who.add(s.who);
    t.kinds.add(s.kind);
    by.set(s.thread, t);
  }
  return [...by]
    .sort(([a], [b]) => a - b)
    .map(([thread, t]) => ({ thread, text: `${[...t.who].join(', ') || 'thread'} — ${[...t.kinds].join(', ')}` }));
}
