/**
 * The exhaustive explorer's schedule tree (explore.ts has the pruning rules and why they are
 * sound): depth-first enumeration under a preemption bound, with sleep sets when unbounded.
 *
 * A DfsPolicy can also explore one subtree only (a piece, explore-parallel.ts): it starts at a
 * prefix of choices and never backtracks above it. Its ancestors' explored siblings are rebuilt
 * as the sequential search would have them (every allowed child ordered before the chosen one),
 * so sleep sets and the order of runs inside the subtree are the sequential search's. It can give
 * away open alternatives (donate) and tells when its search passes one, so the pieces' runs can be
 * put back in the sequential order.
 */
import type { PreemptPoint } from '../core/coop';
import { defaultChoice, ScheduleError, type Decision, type SchedulePolicy } from '../core/scheduler';

interface Node {
  enabled: number[];
  /** Pending point of each runnable thread at this node. */
  labels: Map<number, PreemptPoint>;
  current: number;
  preemptions: number;
  /** Threads asleep at this node, with the step they would take. */
  sleep: Map<number, PreemptPoint>;
  /** Children already explored (or given away and passed: the sequential search explored them by now). */
  done: Set<number>;
  chosen: number;
  /**
   * Children given away and not yet passed, with their gift numbers. Not explored here, but not
   * asleep yet either: the sequential search reaches them only after the chosen child's subtree.
   */
  gifts: { t: number; id: number }[];
}

/** Depth-first enumeration with a preemption bound and sleep sets; one instance per piece. */
export class DfsPolicy implements SchedulePolicy {
  private stack: Node[] = [];
  /** The sleep set of the state the run is in (it changes at every step, decision or not). */
  private sleep = new Map<number, PreemptPoint>();
  /** The node whose choice is the step about to run. */
  private deciding: Node | null = null;
  private gifts = 0;
  private passedGifts: number[] = [];
  /** This run reached a state where the only runnable threads sleep. */
  redundant = false;

  constructor(
    private readonly bound: number,
    /** Off only to check the pruning against the full enumeration. */
    private readonly sleepSets = true,
    /** The choices leading to the subtree this policy explores (empty: the whole tree). */
    private readonly prefix: readonly number[] = [],
  ) {
    // Sleep sets assume an equivalent schedule was explored; under a preemption bound that one may
    // have been over the bound, so pruning by them could lose states.
    this.sleepSets = sleepSets && bound === Infinity;
  }

  /** Decisions on the current path that this policy has seen. */
  get depth(): number {
    return this.stack.length;
  }

  choose(d: Decision): number {
    if (d.index < this.stack.length) {
      this.deciding = this.stack[d.index]!;
      return this.deciding.chosen;
    }
    this.deciding = null;
    const fixed = this.prefix[d.index];
    if (fixed === undefined && this.redundant) return defaultChoice(d);
    const labels = new Map<number, PreemptPoint>();
    // Copies: an operation may reuse its point object for its next step (coop.ts PreemptPoint).
    for (const t of d.enabled) labels.set(t, { ...d.points[t]! });
    const node: Node = { enabled: d.enabled.slice(), labels, current: d.current, preemptions: d.preemptions, sleep: new Map(this.sleep), done: new Set(), chosen: -1, gifts: [] };
    let c: number | undefined;
    if (fixed !== undefined) {
      if (!d.enabled.includes(fixed) || !this.allowed(node, fixed)) {
        throw new ScheduleError(`explore: the run left the schedule tree at decision ${d.index} (thread ${fixed} cannot run there): the script is not deterministic`);
      }
      for (const t of this.order(node)) {
        if (t === fixed) break;
        if (this.allowed(node, t)) node.done.add(t);
      }
      c = fixed;
    } else c = this.next(node);
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

  /** Move to the next unexplored branch; false when the subtree is exhausted. */
  backtrack(): boolean {
    this.redundant = false;
    this.sleep = new Map();
    this.deciding = null;
    while (this.stack.length > this.prefix.length) {
      const top = this.stack[this.stack.length - 1]!;
      top.done.add(top.chosen);
      const c = this.next(top);
      this.pass(top, c);
      if (c !== undefined) {
        top.chosen = c;
        return true;
      }
      this.stack.pop();
    }
    return false;
  }

  /**
   * Give away the shallowest open alternative (the largest subtree, likely): this search skips it
   * from now on. Returns the choices leading to it.
   */
  donate(): { gift: number; prefix: number[] } | null {
    for (let i = this.prefix.length; i < this.stack.length; i++) {
      const node = this.stack[i]!;
      const t = this.order(node).find((u) => u !== node.chosen && this.allowed(node, u));
      if (t === undefined) continue;
      const id = this.gifts++;
      node.gifts.push({ t, id });
      return { gift: id, prefix: [...this.stack.slice(0, i).map((n) => n.chosen), t] };
    }
    return null;
  }

  /** Gifts the search has moved past since the last call, in the sequential order. */
  takePassed(): number[] {
    const out = this.passedGifts;
    this.passedGifts = [];
    return out;
  }

  /** Unexplored, allowed alternatives along the current path: a lower bound on the runs to go. */
  openBranches(): number {
    let n = 0;
    for (let i = this.prefix.length; i < this.stack.length; i++) {
      const node = this.stack[i]!;
      for (const t of node.enabled) if (t !== node.chosen && this.allowed(node, t)) n++;
    }
    return n;
  }

  /** Moving from the node's chosen child to c passes the gifts ordered before c (all, at the end). */
  private pass(node: Node, c: number | undefined): void {
    if (node.gifts.length === 0) return;
    const order = this.order(node);
    const limit = c === undefined ? Infinity : order.indexOf(c);
    const passed = node.gifts.filter((g) => order.indexOf(g.t) < limit).sort((a, b) => order.indexOf(a.t) - order.indexOf(b.t));
    node.gifts = node.gifts.filter((g) => order.indexOf(g.t) >= limit);
    for (const g of passed) {
      node.done.add(g.t);
      this.passedGifts.push(g.id);
    }
  }

  private allowed(node: Node, t: number): boolean {
    if (node.done.has(t) || node.sleep.has(t) || node.gifts.some((g) => g.t === t)) return false;
    const switching = t !== node.current && node.enabled.includes(node.current) && node.labels.get(node.current)!.kind !== 'yield';
    return node.preemptions + (switching ? 1 : 0) <= this.bound;
  }

  /** The current thread first (no preemption), then the others in index order. */
  private order(node: Node): number[] {
    return node.enabled.includes(node.current) ? [node.current, ...node.enabled.filter((t) => t !== node.current)] : node.enabled;
  }

  private next(node: Node): number | undefined {
    return this.order(node).find((t) => this.allowed(node, t));
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
