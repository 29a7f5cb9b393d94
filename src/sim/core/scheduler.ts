/**
 * Runs N threads whose preemptible work is Op generators, interleaving them at their preemption
 * points under a policy (seeded random, a given schedule, or the explorer's DFS).
 *
 * A thread is an async function (a script callback in the sandbox, or host code in tests) that
 * issues operations through submit(): kernel API calls and DMA transfers land here instead of
 * running to completion. Exactly one thread runs script code at a time: when an operation
 * finishes, its promise is resolved and the scheduler waits until that same thread has issued its
 * next operation or returned, so every submit() is attributed to `current` without guessing.
 * Script code between two operations is atomic, as is kernel code between two preemption points.
 * The waiting happens in microtasks (sandbox jobs are pumped from microtasks), so a run never
 * yields to the event loop; a thread still waiting once the microtask queue is empty is waiting on
 * something that is neither an operation nor another thread's return, and the run fails.
 *
 * A decision point is a step at which two or more threads can run; the schedule is the list of
 * thread indices chosen at the decision points, in order. Steps with a single runnable thread are
 * not decisions, so schedules stay short enough to paste back.
 */
import { runOp, type Op, type PreemptPoint } from './coop';
import { macrotask, onMacrotask } from './macrotask';

/** How a preemptible operation is executed (the Kernel exec hook, the DMA binding). */
export type Executor = <T>(op: Op<T>) => Promise<T>;

export interface Decision {
  /** 0-based index of this decision in the run. */
  index: number;
  /** Runnable threads, ascending. */
  enabled: number[];
  /** The point each thread stands at (undefined for finished threads or threads between operations). */
  points: readonly (PreemptPoint | undefined)[];
  /** The thread that ran the previous step. */
  current: number;
  /** Preemptions spent so far. */
  preemptions: number;
}

export interface SchedulePolicy {
  /** The thread to run at a decision point: one of d.enabled. */
  choose(d: Decision): number;
  /** Told of every step about to run, decisions or not (sleep sets follow every step). */
  stepping?(thread: number, point: PreemptPoint): void;
}

/** One executed step, for step-by-step replay. */
export interface Step {
  thread: number;
  kind: PreemptPoint['kind'];
  pa?: number;
  who?: string;
  /** A C driver's function and file:line at this step. */
  where?: string;
}

export interface RunOutcome {
  schedule: number[];
  /** Per decision: whether the choice was what defaultChoice would have made. */
  defaults: boolean[];
  steps: Step[];
  /** Steps run (recorded or not). */
  stepCount: number;
  preemptions: number;
  /** Per thread: its error message, if it threw (or the run failed it). */
  errors: (string | undefined)[];
  /** A failure of the run itself: deadlock, a stuck thread, too many steps. */
  error?: string;
}

/** A switch away from a thread that could have gone on is a preemption, unless it was yielding. */
export function isPreemption(d: Decision, t: number): boolean {
  return t !== d.current && d.enabled.includes(d.current) && d.points[d.current]?.kind !== 'yield';
}

/** Run the current thread on while it can, else the lowest-numbered runnable one. */
export function defaultChoice(d: Decision): number {
  return d.enabled.includes(d.current) ? d.current : d.enabled[0]!;
}

/** Follows a schedule, then runs on with the default choice. */
export class SchedulePolicyReplay implements SchedulePolicy {
  constructor(private readonly schedule: readonly number[]) {}

  choose(d: Decision): number {
    const t = this.schedule[d.index];
    if (t === undefined) return defaultChoice(d);
    if (!d.enabled.includes(t)) {
      throw new ScheduleError(`the schedule does not fit this run: at decision ${d.index} it picks thread ${t}, but only ${d.enabled.join(', ')} can run`);
    }
    return t;
  }
}

/** Uniform choice among runnable threads; with a bound, no preemption once it is spent. */
export class RandomPolicy implements SchedulePolicy {
  constructor(
    private readonly next: (n: number) => number,
    private readonly bound = Infinity,
  ) {}

  choose(d: Decision): number {
    const allowed = d.preemptions < this.bound ? d.enabled : d.enabled.filter((t) => !isPreemption(d, t));
    return allowed[this.next(allowed.length)]!;
  }
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

interface Thread {
  state: 'starting' | 'running' | 'parked' | 'done';
  gen: Op<unknown> | null;
  point: PreemptPoint | undefined;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  error?: string;
}

export interface SchedulerOptions {
  recordSteps?: boolean;
  /** A run taking more steps than this is stopped (a thread polling forever). */
  maxSteps?: number;
  /** Checked between steps; a true stops the run with an error. */
  cancelled?: () => boolean;
}

const DEFAULT_MAX_STEPS = 1_000_000;

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class Scheduler {
  /** The thread whose script code is running, null outside the threads. */
  current: number | null = null;
  private threads: Thread[] = [];
  private waiter: { t: number; resolve: () => void } | null = null;
  private abandoned = false;

  constructor(
    private readonly policy: SchedulePolicy,
    private readonly opts: SchedulerOptions = {},
  ) {}

  /** The executor threads' operations go through: queued for the scheduler inside a thread, run at once outside. */
  readonly submit: Executor = <T>(op: Op<T>): Promise<T> => {
    const t = this.current;
    if (t === null) return Promise.resolve(runOp(op));
    if (this.abandoned) return Promise.reject(new ScheduleError('the run was abandoned'));
    const th = this.threads[t]!;
    if (th.gen) return Promise.reject(new Error(`thread ${t} issued a call while its previous one is still running: await each kernel, DMA or register call before the next`));
    return new Promise<T>((resolve, reject) => {
      th.gen = op;
      th.resolve = resolve as (v: unknown) => void;
      th.reject = reject;
      // Kernel code before the operation's first preemption point runs now, as part of this step.
      this.advance(th);
      if (th.gen) this.park(t);
    });
  };

  /** Run the threads to completion under the policy. */
  async run(fns: readonly (() => unknown)[]): Promise<RunOutcome> {
    const n = fns.length;
    this.abandoned = false;
    this.threads = fns.map(() => ({ state: 'starting', gen: null, point: undefined, resolve: () => {}, reject: () => {} }));
    const out: RunOutcome = { schedule: [], defaults: [], steps: [], stepCount: 0, preemptions: 0, errors: [] };
    const maxSteps = this.opts.maxSteps ?? DEFAULT_MAX_STEPS;
    try {
      for (let i = 0; i < n; i++) {
        this.start(i, fns[i]!);
        out.error ??= await this.settle(i);
      }
      let cur = 0;
      const points: (PreemptPoint | undefined)[] = new Array<PreemptPoint | undefined>(n);
      for (let steps = 0; !out.error; steps++) {
        if (this.opts.cancelled?.()) throw new ScheduleError('the exploration was stopped');
        const enabled: number[] = [];
        let live = 0;
        for (let i = 0; i < n; i++) {
          const th = this.threads[i]!;
          points[i] = th.point;
          if (th.state === 'done') continue;
          live++;
          if (th.point && !th.point.wait?.()) enabled.push(i);
        }
        if (live === 0) break;
        if (enabled.length === 0) {
          out.error = `deadlock: ${this.threads.flatMap((th, i) => (th.state === 'done' ? [] : [`thread ${i} waits at ${describe(th.point)}`])).join(', ')}`;
          break;
        }
        if (steps >= maxSteps) {
          out.error = `the run took more than ${maxSteps} steps (a thread polling forever?)`;
          break;
        }
        let t = enabled[0]!;
        if (enabled.length > 1) {
          const d: Decision = { index: out.schedule.length, enabled, points, current: cur, preemptions: out.preemptions };
          t = this.policy.choose(d);
          if (!enabled.includes(t)) throw new ScheduleError(`policy chose thread ${t}, which cannot run (runnable: ${enabled.join(', ')})`);
          if (isPreemption(d, t)) out.preemptions++;
          out.schedule.push(t);
          out.defaults.push(t === defaultChoice(d));
        }
        cur = t;
        out.stepCount++;
        const th = this.threads[t]!;
        this.policy.stepping?.(t, th.point!);
        if (this.opts.recordSteps) out.steps.push(stepOf(t, th.point!));
        this.current = t;
        this.advance(th);
        if (!th.gen) out.error ??= await this.settle(t);
      }
      if (out.error) await this.abandon();
    } finally {
      this.current = null;
    }
    out.errors = this.threads.map((th) => th.error);
    return out;
  }

  private start(i: number, fn: () => unknown): void {
    const th = this.threads[i]!;
    th.state = 'running';
    this.current = i;
    const finish = (e?: unknown, failed = false): void => {
      th.state = 'done';
      if (failed) th.error = message(e);
      if (this.waiter?.t === i) this.wakeWaiter();
    };
    let r: unknown;
    try {
      r = fn();
    } catch (e) {
      finish(e, true);
      return;
    }
    if (r && typeof (r as PromiseLike<unknown>).then === 'function') {
      (r as PromiseLike<unknown>).then(
        () => finish(),
        (e: unknown) => finish(e, true),
      );
    } else finish();
  }

  /** One step: the action at the thread's point and its code up to the next point. */
  private advance(th: Thread): void {
    const gen = th.gen!;
    let r: IteratorResult<PreemptPoint, unknown>;
    try {
      r = gen.next();
    } catch (e) {
      th.gen = null;
      th.point = undefined;
      th.reject(e);
      return;
    }
    if (r.done) {
      th.gen = null;
      th.point = undefined;
      th.resolve(r.value);
    } else th.point = r.value;
  }

  private park(t: number): void {
    this.threads[t]!.state = 'parked';
    if (this.waiter?.t === t) this.wakeWaiter();
  }

  private wakeWaiter(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.resolve();
  }

  /**
   * Let thread t run its script code until it issues its next operation or returns. Resolves with
   * an error when it does neither before the microtask queue drains (it awaits something else).
   */
  private settle(t: number): Promise<string | undefined> {
    const th = this.threads[t]!;
    this.current = t;
    if (th.state === 'done' || th.gen) return Promise.resolve(undefined);
    th.state = 'running';
    return new Promise((resolve) => {
      const cancel = onMacrotask(() => {
        this.waiter = null;
        resolve(`thread ${t} is waiting on something that is neither a kernel, DMA or register call nor the end of another thread`);
      });
      this.waiter = {
        t,
        resolve: () => {
          cancel();
          resolve(undefined);
        },
      };
    });
  }

  /** After a failed run: fail every pending operation so the threads unwind, and let them. */
  private async abandon(): Promise<void> {
    for (let i = 0; i < this.threads.length; i++) {
      const th = this.threads[i]!;
      if (!th.gen) continue;
      th.gen = null;
      th.point = undefined;
      th.reject(new ScheduleError('the run was abandoned'));
    }
    // Threads that catch the rejection and go on get their further calls failed the same way.
    this.abandoned = true;
    await macrotask();
  }
}

function stepOf(thread: number, p: PreemptPoint): Step {
  const s: Step = { thread, kind: p.kind };
  if (p.pa !== undefined) s.pa = p.pa;
  if (p.who !== undefined) s.who = p.who;
  if (p.where !== undefined) s.where = p.where;
  return s;
}

function describe(p: PreemptPoint | undefined): string {
  if (!p) return 'nothing';
  return `${p.kind}${p.who ? ` (${p.who})` : ''}${p.pa !== undefined ? ` 0x${p.pa.toString(16)}` : ''}${p.where ? ` in ${p.where}` : ''}`;
}
