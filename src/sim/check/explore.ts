/**
 * The interleaving explorer (script-api.md `explore`): runs the threads many times from the state
 * at the call, each time under another schedule, and reports the schedules whose run failed (a
 * thread or check() threw, or an error-level finding was raised).
 *
 * exhaustive: depth-first enumeration of schedules (stateless: every run restores the checkpoint
 * and replays a prefix of choices) under a CHESS-style preemption bound: switching away from a
 * thread that could have gone on costs one preemption, unless that thread stands at a 'yield'
 * (a spinlock, a poll delay, a PM wait), so spinning and polling are never paid for.
 *
 * What is pruned, and why that is sound:
 * - Steps with one runnable thread are not decisions. A thread whose point has a wait() that is
 *   true (a held spinlock, a PM transition running on another CPU) is not runnable: waiting never
 *   multiplies schedules.
 * - Script code between two kernel/DMA/register calls, and kernel code between two preemption
 *   points, is atomic: the only shared state the kernel keeps in simulated memory is page tables,
 *   and every access to them, every MMIO access and every DMA beat is a preemption point.
 * - Sleep sets (Godefroid), in unbounded searches (preemptionBound: Infinity): after the subtree
 *   where thread u ran first at a node has been explored, u sleeps in its siblings' subtrees until
 *   a step dependent with u's pending step runs, so schedules that only swap independent
 *   neighbouring steps run once. Under a preemption bound they are off: the equivalent schedule
 *   they rely on may need more preemptions than the bound allows (the property test in
 *   explore.test.ts found such programs). Two steps are independent when: both are CPU memory
 *   accesses to different 8-byte words, or both reads; one is a 'yield' and the other is not a
 *   'yield' of the same lock/wait queue; one is an MMIO read and the other a CPU memory access.
 *   Everything else is dependent: every DMA beat with every non-yield step (a walk may read any
 *   table and fills shared TLBs; a CPU memory step may include a cache clean to RAM, which only
 *   walks see), MMIO with MMIO (side effects on the same block), an MMIO write with any CPU memory
 *   access (a command may make the hardware read tables). Assumed commuting: simulated time (each
 *   step adds its cycles) and the kernel's allocators (which of two racing threads gets which page
 *   or IOVA gives states equal up to renaming). A run reaching a state whose only runnable threads
 *   sleep repeats an explored one: it is finished with the default choices but neither checked
 *   nor counted (`pruned`).
 *
 * random: `runs` schedules, each drawing a runnable thread uniformly at every decision, from a
 * generator seeded with (seed, run number): the same seed gives the same schedules.
 *
 * Every run starts from the checkpoint taken at the call; afterwards the checkpoint is restored
 * again, so the test goes on from the state it had before explore. Findings raised in runs belong
 * to the result (each carries its schedule), never to the test.
 *
 * Large explorations are spread over helper workers (explore-parallel.ts), with the same result
 * whatever their number.
 */
import type { Finding } from '../core/findings';
import {
  Scheduler,
  ScheduleError,
  SchedulePolicyReplay,
  type Executor,
  type RunOutcome,
  type SchedulePolicy,
  type Step,
} from '../core/scheduler';
import { coordinate, exploreFingerprint, serveHelper, type ExploreCallId, type ExploreHelpers, type ExploreSettings, type HelperChannel } from './explore-parallel';
import { exploreShard, type ShardCall, type ShardSpec } from './explore-shard';

export { DfsPolicy, independent } from './explore-dfs';

export interface ExploreSpec {
  threads: readonly (() => unknown)[];
  check?: () => unknown;
  mode?: 'exhaustive' | 'random';
  /** random: how many schedules (default 100); exhaustive: a cap on runs (default none). */
  runs?: number;
  seed?: number;
  /** Default 2 in exhaustive mode; none in random mode. */
  preemptionBound?: number;
  /** Stop after this many failing runs (default 10). */
  maxFailures?: number;
  /** Workers to spread the runs over, this one included (default: one per core for large explorations). */
  workers?: number;
}

export interface ExploreFailure {
  schedule: number[];
  error?: string;
  findings: Finding[];
}

export interface ExploreResult {
  runs: number;
  failures: ExploreFailure[];
  /** exhaustive: whether every schedule within the bound was run (not stopped by runs or maxFailures). */
  complete: boolean;
  /** Runs finished early because they repeated an explored one (sleep sets). */
  pruned: number;
}

export interface ReplayResult {
  schedule: number[];
  steps: Step[];
  error?: string;
  findings: Finding[];
}

export interface ExploreProgress {
  runs: number;
  /** Estimated total runs (exhaustive: from the open branches; random: runs asked for). */
  estimated: number;
  failures: number;
}

/** What the explorer needs of the engine. */
export interface ExploreTarget {
  /** Save the whole engine state; restore() puts it back, as often as needed. */
  checkpoint(): { restore(): void };
  /** Route threads' preemptible operations to exec (null: run them directly again). */
  setExecutor(exec: Executor | null): void;
  /** Findings raised so far (the log is part of the checkpoint). */
  findings(): Finding[];
  /** Drop the findings after the first n (a kept replay's findings go to its result). */
  truncateFindings(n: number): void;
  /** Default seed for random mode. */
  readonly seed: number;
  /** A summary of the state (a helper worker must reach the call in the same one). */
  fingerprint?(): string;
}

export interface ExploreOptions {
  onProgress?(p: ExploreProgress): void;
  signal?: AbortSignal;
  /** Helper workers to spread the runs over. */
  helpers?: ExploreHelpers;
  /** How often runs give the event loop a turn, in ms (default 20; tests use 0 to exercise work sharing). */
  yieldMs?: number;
  /** Told of every run's outcome in this worker (benchmarks count steps). */
  onRun?(o: RunOutcome): void;
  /** Explore only this shard's pieces of the call (explore-shard.ts) and hand its report over; helpers are not used. */
  shard?: { spec: ShardSpec; call: ExploreCallId; report(c: ShardCall): void };
}

const DEFAULT_BOUND = 2;
const DEFAULT_RANDOM_RUNS = 100;
const DEFAULT_MAX_FAILURES = 10;

/** Targets exploring now (explore cannot be nested; separate engines may explore side by side). */
const active = new WeakSet<ExploreTarget>();

function settingsOf(spec: ExploreSpec, seed: number): ExploreSettings {
  const mode = spec.mode ?? 'exhaustive';
  return {
    mode,
    bound: spec.preemptionBound ?? (mode === 'random' ? Infinity : DEFAULT_BOUND),
    maxFailures: spec.maxFailures ?? DEFAULT_MAX_FAILURES,
    runs: spec.runs ?? (mode === 'random' ? DEFAULT_RANDOM_RUNS : Infinity),
    seed: spec.seed ?? seed,
  };
}

export async function explore(target: ExploreTarget, spec: ExploreSpec, opts: ExploreOptions = {}): Promise<ExploreResult> {
  validate(spec);
  const s = settingsOf(spec, target.seed);
  const fingerprint = exploreFingerprint(target.fingerprint?.() ?? '', s, spec.threads.length);
  const shard = opts.shard;
  if (shard) {
    let last = performance.now();
    const pause = async (): Promise<void> => {
      if (performance.now() - last >= (opts.yieldMs ?? 20)) {
        await new Promise<void>((r) => setTimeout(r, 0));
        last = performance.now();
      }
      if (opts.signal?.aborted) throw new ScheduleError('the exploration was stopped');
    };
    return session(target, spec, opts, async (runOnce) => {
      const { report, partial } = await exploreShard(runOnce, s, fingerprint, shard.call, shard.spec, pause);
      shard.report(report);
      return partial;
    });
  }
  return session(target, spec, opts, (runOnce) => coordinate(runOnce, s, fingerprint, opts));
}

/** In a helper worker, at the explore call it was started for: explore the pieces it is sent, until terminated. */
export async function serveExplore(target: ExploreTarget, spec: ExploreSpec, channel: HelperChannel, opts: ExploreOptions = {}): Promise<never> {
  validate(spec);
  const s = settingsOf(spec, target.seed);
  const fingerprint = exploreFingerprint(target.fingerprint?.() ?? '', s, spec.threads.length);
  return session(target, spec, opts, (runOnce) => serveHelper(runOnce, s, fingerprint, channel, opts));
}

/** Rerun one schedule, recording every step. The run's final state is kept (for inspection). */
export async function replay(target: ExploreTarget, schedule: readonly number[], spec: ExploreSpec, opts: ExploreOptions = {}): Promise<ReplayResult> {
  validate(spec);
  validateSchedule(schedule, spec);
  return session(
    target,
    spec,
    opts,
    async (runOnce) => {
      const r = await runOnce(new SchedulePolicyReplay(schedule), true);
      const out: ReplayResult = { schedule: r.outcome.schedule, steps: r.outcome.steps, findings: r.findings };
      const error = r.failure?.error;
      if (error !== undefined) out.error = error;
      return out;
    },
    true,
  );
}

export interface ReplayPrefixResult {
  /** The whole replay's schedule (the given one, then the default choices). */
  schedule: number[];
  /** Every step of the whole replay, so a step-by-step view knows what comes next. */
  steps: Step[];
  /** Steps run before stopping (at most steps.length); the engine's state is the one after them. */
  ran: number;
  /** Why the whole replay fails (what the explorer reported it for); absent when it passes. */
  error?: string;
  /** Findings raised by the steps run (all of them, check included, when the replay ran to its end). */
  findings: Finding[];
}

/**
 * Step `stop` of a step-by-step replay: rerun the schedule and stop after `stop` steps, leaving the
 * engine in the state after them (the threads cut off mid-operation, check not run). The engine is
 * deterministic, so running a prefix again gives the same state as pausing there would, without
 * holding a script and its timeout open between steps. The whole replay runs first, from the same
 * checkpoint, for the step list and the verdict. Past the last step, this is replay().
 */
export async function replayPrefix(target: ExploreTarget, schedule: readonly number[], spec: ExploreSpec, stop: number, opts: ExploreOptions = {}): Promise<ReplayPrefixResult> {
  validate(spec);
  validateSchedule(schedule, spec);
  if (!Number.isInteger(stop) || stop < 0) throw new TypeError('explore: a replay stops after a non-negative whole number of steps');
  return session(
    target,
    spec,
    opts,
    async (runOnce) => {
      const full = await runOnce(new SchedulePolicyReplay(schedule), true);
      const steps = full.outcome.steps;
      const head = { schedule: full.outcome.schedule, steps, ...(full.failure ? { error: full.failure.error } : {}) };
      if (stop >= steps.length) return { ...head, ran: steps.length, findings: full.findings };
      const part = await runOnce(new SchedulePolicyReplay(schedule), true, stop);
      return { ...head, ran: part.outcome.steps.length, findings: part.findings };
    },
    true,
  );
}

/** maxSteps: stop the run after that many steps (a replay prefix); its failure is then meaningless. */
export type RunOnce = (policy: SchedulePolicy, recordSteps?: boolean, maxSteps?: number) => Promise<{ outcome: RunOutcome; findings: Finding[]; failure: ExploreFailure | null }>;

/**
 * Checkpoint the engine and hand body a function that runs the threads once from the checkpoint
 * under a policy. At the end the checkpoint is restored, or (keepState) the last run's state stays
 * with its findings taken out of the log: they belong to the result.
 */
async function session<T>(target: ExploreTarget, spec: ExploreSpec, opts: ExploreOptions, body: (runOnce: RunOnce) => Promise<T>, keepState = false): Promise<T> {
  if (active.has(target)) throw new Error('explore cannot be called from inside an exploration');
  active.add(target);
  const cp = target.checkpoint();
  const base = target.findings().length;
  const runOnce: RunOnce = async (policy, recordSteps = false, maxSteps) => {
    cp.restore();
    const sched = new Scheduler(policy, { recordSteps, cancelled: () => opts.signal?.aborted === true, ...(maxSteps !== undefined ? { maxSteps } : {}) });
    target.setExecutor(sched.submit);
    let outcome: RunOutcome;
    try {
      outcome = await sched.run(spec.threads);
    } finally {
      target.setExecutor(null);
    }
    opts.onRun?.(outcome);
    let error = outcome.error ?? outcome.errors.map((e, i) => (e === undefined ? undefined : `thread ${i}: ${e}`)).find((e) => e !== undefined);
    if (error === undefined && spec.check) {
      try {
        await spec.check();
      } catch (e) {
        error = `check: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    const schedule = trimDefaults(outcome);
    const findings = target.findings().slice(base).map((f) => ({ ...f, replay: { seed: f.replay?.seed ?? target.seed, schedule } }));
    const bad = findings.filter((f) => f.severity === 'error');
    if (error === undefined && bad.length > 0) error = `${bad.length} error-level finding${bad.length > 1 ? 's' : ''}: ${bad.map((f) => f.kind).join(', ')}`;
    const failure: ExploreFailure | null = error === undefined ? null : { schedule, error, findings };
    return { outcome, findings, failure };
  };
  try {
    return await body(runOnce);
  } finally {
    if (keepState) target.truncateFindings(base);
    else cp.restore();
    active.delete(target);
  }
}

/** The schedule without the trailing choices the default policy makes anyway. */
function trimDefaults(o: RunOutcome): number[] {
  let n = o.schedule.length;
  while (n > 0 && o.defaults[n - 1]) n--;
  return o.schedule.slice(0, n);
}

function validateSchedule(schedule: readonly number[], spec: ExploreSpec): void {
  if (!Array.isArray(schedule) || schedule.some((t) => !Number.isInteger(t) || t < 0 || t >= spec.threads.length)) {
    throw new TypeError(`explore.replay: a schedule is an array of thread indices 0..${spec.threads.length - 1}`);
  }
}

function validate(spec: ExploreSpec): void {
  if (!spec || !Array.isArray(spec.threads) || spec.threads.length === 0 || spec.threads.some((t) => typeof t !== 'function')) {
    throw new TypeError('explore: spec.threads must be a non-empty array of functions');
  }
  if (spec.check !== undefined && typeof spec.check !== 'function') throw new TypeError('explore: spec.check must be a function');
  if (spec.mode !== undefined && spec.mode !== 'exhaustive' && spec.mode !== 'random') throw new TypeError(`explore: mode must be 'exhaustive' or 'random'`);
  if (spec.workers !== undefined && !(Number.isInteger(spec.workers) && spec.workers >= 1)) throw new TypeError('explore: workers must be a positive integer');
  for (const k of ['runs', 'preemptionBound', 'maxFailures'] as const) {
    const v = spec[k];
    const ok = v === undefined || (Number.isInteger(v) && v >= 0) || (k === 'preemptionBound' && v === Infinity);
    if (!ok) throw new TypeError(`explore: ${k} must be a non-negative integer${k === 'preemptionBound' ? ' or Infinity' : ''}`);
  }
  if (spec.seed !== undefined && !Number.isInteger(spec.seed)) throw new TypeError('explore: seed must be an integer');
}
