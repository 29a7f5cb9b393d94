import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { ScriptError, ScriptRunResult, SessionEvent, TestResult } from '../../shared/session-api';
import { api, connection } from '../api/client';
import { useMomentStore } from './moment';
import { useReplayStore } from './replay';
import { useTimelineStore } from './timeline';

export const SCRIPT_FILE = 'script.ts';
const STORAGE_KEY = 'soc-console.script';
/** Output lines kept: a chatty script must not grow the page without bound. */
const MAX_OUTPUT_LINES = 5000;

const EXAMPLE = `// Driver test script: soc, kernel, expect and test are globals (see completion).
test('the IOMMU is present', async () => {
  const iommus = await soc.iommus();
  expect(iommus.length).toBeGreaterThan(0);
});
`;

/** An example opened from the Examples menu: what it replaced, and the preset it is written for. */
export interface OpenedExample {
  file: string;
  /** The `// soc:` header's preset, or null. */
  soc: string | null;
  /** The editor's text before, to restore. */
  previous: string;
}

/** A type error or warning the editor's TypeScript service reports. */
export interface Problem {
  line: number;
  column: number;
  message: string;
  severity: 'error' | 'warning';
}

export interface OutputLine {
  stream: 'log' | 'error';
  text: string;
}

/** A source location the editor should reveal and mark. `seq` makes repeated clicks re-trigger. */
export interface RevealRequest {
  line: number;
  column: number;
  message: string;
  seq: number;
}

/** The script pane: source (persisted across reloads), the running state and the last run's results. */
export const useScriptStore = defineStore('script', () => {
  const source = ref(localStorage.getItem(STORAGE_KEY) ?? EXAMPLE);
  const running = ref(false);
  /** When the current run started (performance.now()), and its elapsed time, ticking while it runs. */
  const startedAt = ref(0);
  const elapsedMs = ref(0);
  const output = shallowRef<OutputLine[]>([]);
  /** Lines dropped from the head of the output to respect MAX_OUTPUT_LINES. */
  const dropped = ref(0);
  // Output arrives in bursts of hundreds of events per second; the pane re-renders once per frame.
  let pending: OutputLine[] = [];
  let flushQueued = false;
  let ticker: ReturnType<typeof setInterval> | undefined;
  const tests = shallowRef<TestResult[]>([]);
  const result = shallowRef<ScriptRunResult | null>(null);
  const runError = shallowRef<ScriptError | null>(null);
  const reveal = ref<RevealRequest | null>(null);
  const example = shallowRef<OpenedExample | null>(null);
  /** The editor's type errors and warnings, kept current as the script is edited. */
  const problems = shallowRef<Problem[]>([]);
  /** Type errors the script had when it was last run (Run warns, and runs: the engine strips types). */
  const ranWithTypeErrors = ref(0);
  /** The exploration in progress (the engine reports its runs as it goes), or null. */
  const exploring = shallowRef<{ runs: number; estimated: number; failures: number } | null>(null);
  /** No script was ever kept here: the first-run panel shows. */
  const firstRun = ref(localStorage.getItem(STORAGE_KEY) === null);
  let revealSeq = 0;

  // Write-through on every edit: a reload (or a crash of the window) must keep unsaved work.
  watch(source, (s) => localStorage.setItem(STORAGE_KEY, s));

  const summary = computed(() => {
    const passed = tests.value.filter((t) => t.status === 'passed').length;
    return { passed, failed: tests.value.length - passed };
  });

  /** Errors that point into the script, for editor markers. */
  const locatedErrors = computed<ScriptError[]>(() => {
    const errs = tests.value.flatMap((t) => (t.error ? [t.error] : []));
    if (runError.value) errs.push(runError.value);
    return errs.filter((e) => e.file === SCRIPT_FILE && e.line !== undefined);
  });

  /** Why Run is refused now (shown as a banner), or null. */
  const refused = ref<string | null>(null);

  async function run(): Promise<ScriptRunResult | null> {
    // A replay step is a run in the same worker: the two must not build SoCs over each other.
    if (running.value || useReplayStore().busy || useMomentStore().busy) return null;
    if (connection.value !== 'connected') {
      // Queued, the run would reach a restarted host with no SoC loaded: refuse it plainly.
      refused.value = 'Not connected to the session host: Run is refused until the connection is back.';
      return null;
    }
    refused.value = null;
    ranWithTypeErrors.value = problems.value.filter((p) => p.severity === 'error').length;
    running.value = true;
    firstRun.value = false;
    startedAt.value = performance.now();
    elapsedMs.value = 0;
    ticker = setInterval(() => (elapsedMs.value = performance.now() - startedAt.value), 100);
    output.value = [];
    pending = [];
    dropped.value = 0;
    tests.value = [];
    result.value = null;
    runError.value = null;
    exploring.value = null;
    useReplayStore().runStarted(source.value, SCRIPT_FILE);
    useMomentStore().runStarted(source.value, SCRIPT_FILE);
    // The timeline follows the new run instead of keeping a window of the old one.
    useTimelineStore().fit();
    try {
      const r = await api.runScript({ source: source.value, fileName: SCRIPT_FILE });
      finish(r);
      return r;
    } catch (e) {
      runError.value = { message: e instanceof Error ? e.message : String(e), file: SCRIPT_FILE };
      return null;
    } finally {
      exploring.value = null;
      clearInterval(ticker);
      elapsedMs.value = performance.now() - startedAt.value;
      flushOutput();
      running.value = false;
    }
  }

  async function stop(): Promise<void> {
    await api.stopScript();
  }

  /** The SoC was replaced: the last run's output and results were the old SoC's. */
  function socChanged(): void {
    if (running.value) return;
    output.value = [];
    pending = [];
    dropped.value = 0;
    tests.value = [];
    result.value = null;
    runError.value = null;
    elapsedMs.value = 0;
  }

  function finish(r: ScriptRunResult): void {
    result.value = r;
    tests.value = r.tests;
    runError.value = r.error ?? null;
  }

  function flushOutput(): void {
    flushQueued = false;
    if (pending.length === 0) return;
    const all = output.value.concat(pending);
    pending = [];
    const over = all.length - MAX_OUTPUT_LINES;
    if (over > 0) dropped.value += over;
    output.value = over > 0 ? all.slice(over) : all;
  }

  /** Streamed events: output and per-test results arrive before runScript resolves. */
  function onEvent(e: SessionEvent): void {
    if (e.type === 'output') {
      pending.push({ stream: e.stream, text: e.text });
      if (!flushQueued) {
        flushQueued = true;
        requestAnimationFrame(flushOutput);
      }
    } else if (e.type === 'explore-progress' && running.value) {
      exploring.value = e.done ? null : { runs: e.runs, estimated: e.estimated, failures: e.failures };
    } else if (e.type === 'test' && running.value) tests.value = [...tests.value, e.result];
    else if (e.type === 'run-end') finish(e.result);
  }

  /** Put an example into the editor, keeping the text it replaces for restoreExample(). */
  function openExample(file: string, text: string, soc: string | null): void {
    const previous = example.value?.previous ?? source.value;
    source.value = text;
    example.value = { file, soc, previous };
    firstRun.value = false;
  }

  /** Back to the text the example replaced. */
  function restoreExample(): void {
    if (!example.value) return;
    source.value = example.value.previous;
    example.value = null;
  }

  /** Reveal a script location ("file.ts:line:col" sites of findings included) with a message. */
  function revealError(err: ScriptError): void {
    if (err.line === undefined) return;
    reveal.value = { line: err.line, column: err.column ?? 1, message: err.message, seq: ++revealSeq };
  }

  return { source, running, startedAt, elapsedMs, output, dropped, tests, result, runError, refused, reveal, example, firstRun, exploring, problems, ranWithTypeErrors, summary, locatedErrors, run, stop, socChanged, onEvent, revealError, openExample, restoreExample };
});
