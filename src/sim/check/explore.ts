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
 * Runs are serial, in the thread that runs the script: the threads are closures in this script's
 * sandbox, so another worker would need its own SoC and sandbox brought to this call by replaying
 * the script deterministically. Not done: one run costs about a millisecond, so the bounded
 * explorations of the problem scenarios take well under a second.
 */
import type { Finding } from '../core/findings';
import type { PreemptPoint } from '../core/coop';
import { Rng } from '../core/rng';
import {
  defaultChoice,
  RandomPolicy,
  Scheduler,
  SchedulePolicyReplay,
  ScheduleError,
  type Decision,
  type Executor,
  type RunOutcome,
  type SchedulePolicy,
  type Step,
} from '../core/scheduler';

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
}

export interface ExploreOptions {
  onProgress?(p: ExploreProgress): void;
  signal?: AbortSignal;
}

const DEFAULT_BOUND = 2;
const DEFAULT_RANDOM_RUNS = 100;
const DEFAULT_MAX_FAILURES = 10;
const PROGRESS_MS = 100;
/** Runs are microtask chains; the event loop gets a turn this often (cancellation, timers, I/O). */
const YIELD_MS = 20;

let active = false;

export async function explore(target: ExploreTarget, spec: ExploreSpec, opts: ExploreOptions = {}): Promise<ExploreResult> {
  validate(spec);
  const mode = spec.mode ?? 'exhaustive';
  const maxFailures = spec.maxFailures ?? DEFAULT_MAX_FAILURES;
  const result: ExploreResult = { runs: 0, failures: [], complete: false, pruned: 0 };
  return session(target, spec, opts, async (runOnce) => {
    let lastProgress = performance.now();
    let lastYield = lastProgress;
    const progress = async (estimated: number, force = false): Promise<void> => {
      const now = performance.now();
      if (force || now - lastProgress >= PROGRESS_MS) {
        lastProgress = now;
        opts.onProgress?.({ runs: result.runs, estimated, failures: result.failures.length });
      }
      if (now - lastYield >= YIELD_MS) {
        await new Promise<void>((r) => setImmediate(r));
        lastYield = performance.now();
      }
      if (opts.signal?.aborted) throw new ScheduleError('the exploration was stopped');
    };
    const record = (f: ExploreFailure | null): boolean => {
      result.runs++;
      if (f) result.failures.push(f);
      return result.failures.length >= maxFailures;
    };

    if (mode === 'random') {
      const runs = spec.runs ?? DEFAULT_RANDOM_RUNS;
      const seed = spec.seed ?? target.seed;
      let stopped = false;
      for (let i = 0; i < runs && !stopped; i++) {
        const rng = new Rng((seed ^ Math.imul(i + 1, 0x9e3779b1)) | 0);
        const { failure } = await runOnce(new RandomPolicy((n) => rng.below(n), spec.preemptionBound ?? Infinity));
        stopped = record(failure);
        await progress(runs);
      }
      result.complete = !stopped && result.runs === runs;
    } else {
      const dfs = new DfsPolicy(spec.preemptionBound ?? DEFAULT_BOUND);
      const cap = spec.runs ?? Infinity;
      for (;;) {
        const { failure } = await runOnce(dfs);
        if (dfs.redundant) result.pruned++;
        else if (record(failure)) break;
        if (!dfs.backtrack()) {
          result.complete = true;
          break;
        }
        if (result.runs >= cap) break;
        await progress(result.runs + dfs.openBranches());
      }
    }
    await progress(result.runs, true);
    return result;
  });
}

/** Rerun one schedule, recording every step. The run's final state is kept (for inspection). */
export async function replay(target: ExploreTarget, schedule: readonly number[], spec: ExploreSpec, opts: ExploreOptions = {}): Promise<ReplayResult> {
  validate(spec);
  if (!Array.isArray(schedule) || schedule.some((t) => !Number.isInteger(t) || t < 0 || t >= spec.threads.length)) {
    throw new TypeError(`explore.replay: a schedule is an array of thread indices 0..${spec.threads.length - 1}`);
  }
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

type RunOnce = (policy: SchedulePolicy, recordSteps?: boolean) => Promise<{ outcome: RunOutcome; findings: Finding[]; failure: ExploreFailure | null }>;

/**
 * Checkpoint the engine and hand body a function that runs the threads once from the checkpoint
 * under a policy. At the end the checkpoint is restored, or (keepState) the last run's state stays
 * with its findings taken out of the log: they belong to the result.
 */
async function session<T>(target: ExploreTarget, spec: ExploreSpec, opts: ExploreOptions, body: (runOnce: RunOnce) => Promise<T>, keepState = false): Promise<T> {
  if (active) throw new Error('explore cannot be called from inside an exploration');
  active = true;
  const cp = target.checkpoint();
  const base = target.findings().length;
  const runOnce: RunOnce = async (policy, recordSteps = false) => {
    cp.restore();
    const sched = new Scheduler(policy, { recordSteps, cancelled: () => opts.signal?.aborted === true });
    target.setExecutor(sched.submit);
    let outcome: RunOutcome;
    try {
      outcome = await sched.run(spec.threads);
    } finally {
      target.setExecutor(null);
    }
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
    active = false;
  }
}

/** The schedule without the trailing choices the default policy makes anyway. */
function trimDefaults(o: RunOutcome): number[] {
  let n = o.schedule.length;
  while (n > 0 && o.defaults[n - 1]) n--;
  return o.schedule.slice(0, n);
}

function validate(spec: ExploreSpec): void {
  if (!spec || !Array.isArray(spec.threads) || spec.threads.length === 0 || spec.threads.some((t) => typeof t !== 'function')) {
    throw new TypeError('explore: spec.threads must be a non-empty array of functions');
  }
  if (spec.check !== undefined && typeof spec.check !== 'function') throw new TypeError('explore: spec.check must be a function');
  if (spec.mode !== undefined && spec.mode !== 'exhaustive' && spec.mode !== 'random') throw new TypeError(`explore: mode must be 'exhaustive' or 'random'`);
  for (const k of ['runs', 'preemptionBound', 'maxFailures'] as const) {
    const v = spec[k];
    const ok = v === undefined || (Number.isInteger(v) && v >= 0) || (k === 'preemptionBound' && v === Infinity);
    if (!ok) throw new TypeError(`explore: ${k} must be a non-negative integer${k === 'preemptionBound' ? ' or Infinity' : ''}`);
  }
  if (spec.seed !== undefined && !Number.isInteger(spec.seed)) throw new TypeError('explore: seed must be an integer');
}

// ---- exhaustive search ------------------------------------------------------------------------

interface Node {
  enabled: number[];
  /** Pending point of each runnable thread at this node. */
  labels: Map<number, PreemptPoint>;
  current: number;
  preemptions: number;
  /** Threads asleep at this node, with the step they would take. */
  sleep: Map<number, PreemptPoint>;
  /** Children already explored. */
  done: Set<number>;
  chosen: number;
}

/** Depth-first enumeration with a preemption bound and sleep sets; one instance per exploration. */
export class DfsPolicy implements SchedulePolicy {
  private stack: Node[] = [];
  /** The sleep set of the state the run is in (it changes at every step, decision or not). */
  private sleep = new Map<number, PreemptPoint>();
  /** The node whose choice is the step about to run. */
  private deciding: Node | null = null;
  /** This run reached a state where the only runnable threads sleep. */
  redundant = false;

  constructor(
    private readonly bound: number,
    /** Off only to check the pruning against the full enumeration. */
    private readonly sleepSets = true,
  ) {
    // Sleep sets assume an equivalent schedule was explored; under a preemption bound that one may
    // have been over the bound, so pruning by them could lose states.
    this.sleepSets = sleepSets && bound === Infinity;
  }

  choose(d: Decision): number {
    if (d.index < this.stack.length) {
      this.deciding = this.stack[d.index]!;
      return this.deciding.chosen;
    }
    this.deciding = null;
    if (this.redundant) return defaultChoice(d);
    const labels = new Map<number, PreemptPoint>();
    for (const t of d.enabled) labels.set(t, d.points[t]!);
    const node: Node = { enabled: d.enabled.slice(), labels, current: d.current, preemptions: d.preemptions, sleep: new Map(this.sleep), done: new Set(), chosen: -1 };
    const c = this.next(node);
    if (c === undefined) {
      this.redundant = true;
      return defaultChoice(d);
    }
    node.chosen = c;
    this.stack.push(node);
    this.deciding = node;
    return c;
  }

  stepping(thread: number, point: PreemptPoint): void {
    if (!this.sleepSets) return;
    const node = this.deciding;
    this.deciding = null;
    // At a decision the explored siblings fall asleep too; a single runnable thread that sleeps
    // means this run repeats an explored one.
    if (node) this.sleep = childSleep(node);
    else {
      if (this.sleep.has(thread) && !this.redundant) this.redundant = true;
      const next = new Map<number, PreemptPoint>();
      for (const [t, p] of this.sleep) if (t !== thread && independent(p, point)) next.set(t, p);
      this.sleep = next;
    }
  }

  /** Move to the next unexplored branch; false when the tree is exhausted. */
  backtrack(): boolean {
    this.redundant = false;
    this.sleep = new Map();
    this.deciding = null;
    while (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1]!;
      top.done.add(top.chosen);
      const c = this.next(top);
      if (c !== undefined) {
        top.chosen = c;
        return true;
      }
      this.stack.pop();
    }
    return false;
  }

  /** Unexplored, allowed alternatives along the current path: a lower bound on the runs to go. */
  openBranches(): number {
    let n = 0;
    for (const node of this.stack) for (const t of node.enabled) if (t !== node.chosen && this.allowed(node, t)) n++;
    return n;
  }

  private allowed(node: Node, t: number): boolean {
    if (node.done.has(t) || node.sleep.has(t)) return false;
    const switching = t !== node.current && node.enabled.includes(node.current) && node.labels.get(node.current)!.kind !== 'yield';
    return node.preemptions + (switching ? 1 : 0) <= this.bound;
  }

  /** The current thread first (no preemption), then the others in index order. */
  private next(node: Node): number | undefined {
    const order = node.enabled.includes(node.current) ? [node.current, ...node.enabled.filter((t) => t !== node.current)] : node.enabled;
    return order.find((t) => this.allowed(node, t));
  }
}

/** The sleep set after the node's chosen step: sleepers and explored siblings independent of it. */
function childSleep(node: Node): Map<number, PreemptPoint> {
  const step = node.labels.get(node.chosen)!;
  const out = new Map<number, PreemptPoint>();
  for (const [t, p] of node.sleep) if (t !== node.chosen && independent(p, step)) out.set(t, p);
  for (const t of node.done) {
    const p = node.labels.get(t)!;
    if (t !== node.chosen && independent(p, step)) out.set(t, p);
  }
  return out;
}

const isMem = (k: PreemptPoint['kind']): boolean => k === 'mem-read' || k === 'mem-write';
const isMmio = (k: PreemptPoint['kind']): boolean => k === 'mmio-read' || k === 'mmio-write';

/** The independence relation of the module comment: true when the two steps commute. */
export function independent(a: PreemptPoint, b: PreemptPoint): boolean {
  if (a.kind === 'yield' || b.kind === 'yield') return !(a.kind === 'yield' && b.kind === 'yield' && a.who === b.who);
  if (a.kind === 'dma-beat' || b.kind === 'dma-beat') return false;
  if (isMmio(a.kind) && isMmio(b.kind)) return false;
  if (isMem(a.kind) && isMem(b.kind)) {
    if (a.kind === 'mem-read' && b.kind === 'mem-read') return true;
    return Math.floor((a.pa ?? -8) / 8) !== Math.floor((b.pa ?? -8) / 8);
  }
  // One MMIO access and one CPU memory access.
  return a.kind !== 'mmio-write' && b.kind !== 'mmio-write';
}
