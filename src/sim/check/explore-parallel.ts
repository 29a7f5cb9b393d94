/**
 * Spreading one exploration over helper workers, with a result that does not depend on how many.
 *
 * The threads are closures in the script's sandbox, so no other worker can be handed them. A
 * helper instead runs the same script from scratch in its own session (same config, script and
 * seed give the same state) up to the same explore call, named by its test and its ordinal within
 * that test; earlier explore calls are not rerun there but answered with the results the caller
 * got (an exploration leaves the engine as it found it, so only their results matter). There it
 * explores what it is given and reports back; its later test code never runs.
 *
 * The unit of work is a piece: a subtree of the exhaustive search (the choices leading to it) or a
 * range of random-run indices. Everyone, the calling worker included, explores pieces in the
 * sequential order; an idle party gets work by asking a busy one to give away part of its piece
 * (the shallowest open alternative, or the upper half of the remaining range). A piece's result
 * lists its runs as segments, with the gifts it passed between them in the sequential order, so
 * walking the pieces from the root puts every run back where the sequential search has it. The
 * maxFailures and runs cuts are applied on that walk, exactly as the sequential loop applies
 * them; a piece stops on its own once it alone reaches a cut (the global cut cannot be later).
 * How the work was split is invisible in the result: the same runs, failures, schedules and
 * pruned count whatever the worker count, and the same as exploring alone.
 *
 * The walk is final as soon as a cut is reached over finished pieces, so a failure found early
 * ends everyone's work; otherwise when every piece is finished.
 */
import { Rng } from '../core/rng';
import { RandomPolicy, ScheduleError } from '../core/scheduler';
import { DfsPolicy } from './explore-dfs';
import type { ExploreFailure, ExploreOptions, ExploreResult, RunOnce } from './explore';
import { macrotask } from '../core/macrotask';
import type { KernelMode } from '../../shared/session-api';

/** A part of the schedule space: a subtree of the exhaustive search, or random runs [from, to). */
export type Region = { prefix: number[] } | { from: number; to: number };

/** Consecutive runs of a piece, in the sequential order. */
export interface Segment {
  /** Runs checked (not pruned). */
  runs: number;
  /** [k, n]: n pruned runs came after the segment's first k checked runs. */
  pruned: [number, number][];
  /** at: how many checked runs of the segment came before the failing one. */
  failures: { at: number; failure: ExploreFailure }[];
}

export type PieceItem = { seg: Segment } | { gift: number };

export interface PieceResult {
  /** Segments, and between them the piece's gifts (by gift number) where the sequential order has them. */
  items: PieceItem[];
  /** The piece stopped at maxFailures or at the runs cap (with runs left in it). */
  cut: boolean;
}

/** The resolved options of one exploration, the same on every side. */
export interface ExploreSettings {
  mode: 'exhaustive' | 'random';
  bound: number;
  maxFailures: number;
  /** exhaustive: a cap on checked runs (Infinity: none); random: how many runs. */
  runs: number;
  seed: number;
}

/** Coordinator to helper. */
export type ToHelper = { type: 'explore'; piece: number; region: Region } | { type: 'donate' };

/** Helper to coordinator. */
export type FromHelper =
  | { type: 'ready'; fingerprint: string }
  | { type: 'progress'; runs: number; failures: number; open: number }
  | { type: 'gift'; piece: number; gift: number; region: Region }
  | { type: 'no-gift' }
  | { type: 'done'; piece: number; result: PieceResult }
  | { type: 'error'; message: string };

export interface HelperHandle {
  post(m: ToHelper): void;
  /** Stop the helper now; no more messages come from it. */
  terminate(): void;
}

/** The helpers an exploration may use (built by the session from its pool). */
export interface ExploreHelpers {
  count: number;
  /** Start them once the exploration has run this long without finishing (0: at once). */
  afterMs: number;
  start(onMessage: (m: FromHelper) => void, onExit: (reason: string) => void): HelperHandle;
}

/** A helper's side of the conversation. */
export interface HelperChannel {
  post(m: FromHelper): void;
  listen(on: (m: ToHelper) => void): void;
}

/** An explore call in a script run: its test (-1 while the script loads) and its ordinal there. */
export interface ExploreCallId {
  test: number;
  ordinal: number;
}

/** Everything a helper worker needs to bring a fresh session to the same explore call. */
export interface ExploreJob {
  config: { text: string; file: string };
  source: string;
  fileName: string;
  seed: number;
  timeoutMs: number;
  /** The run's kernel mode, when the request gave one. */
  kernel?: KernelMode;
  call: ExploreCallId;
  /** Results of the explore calls before this one, in call order. */
  earlier: { call: ExploreCallId; result: ExploreResult }[];
}

/** Helper workers a session can start (the host provides worker_threads; tests fake it). */
export interface ExplorePool {
  /** How many helpers beside the calling worker make sense (cores minus one). */
  readonly size: number;
  start(job: ExploreJob, onMessage: (m: FromHelper) => void, onExit: (reason: string) => void): HelperHandle;
}

const PROGRESS_MS = 100;
/** Runs are microtask chains; the event loop gets a turn this often (cancellation, messages, timers). */
const YIELD_MS = 20;

const newSegment = (): Segment => ({ runs: 0, pruned: [], failures: [] });

/** The same generator per run index wherever the run happens. */
function randomPolicy(s: ExploreSettings, i: number): RandomPolicy {
  const rng = new Rng((s.seed ^ Math.imul(i + 1, 0x9e3779b1)) | 0);
  return new RandomPolicy((n) => rng.below(n), s.bound);
}

/** Explores pieces one at a time, in the sequential order, and gives parts of them away on request. */
export class PieceExplorer {
  private dfs: DfsPolicy | null = null;
  private range: { next: number; end: number; gifts: { from: number; id: number }[]; ids: number } | null = null;
  /** Checked runs and failures of the current piece (progress). */
  runs = 0;
  failures = 0;

  constructor(
    private readonly runOnce: RunOnce,
    private readonly s: ExploreSettings,
    /** Between runs: give the event loop a turn, throw to stop. */
    private readonly pause: () => Promise<void>,
  ) {}

  /**
   * presplit: gifts to give away right after the piece's first run, as a shard split did
   * (explore-shard.ts): the same run gives the same gifts, numbered 0 up.
   */
  async explore(region: Region, presplit = 0): Promise<PieceResult> {
    this.runs = 0;
    this.failures = 0;
    try {
      return 'prefix' in region ? await this.exhaustive(region.prefix, presplit) : await this.random(region.from, region.to);
    } finally {
      this.dfs = null;
      this.range = null;
    }
  }

  /** Give away part of the current piece: its gift number and region, or null when nothing is left to give. */
  donate(): { gift: number; region: Region } | null {
    if (this.dfs) {
      const g = this.dfs.donate();
      return g && { gift: g.gift, region: { prefix: g.prefix } };
    }
    const r = this.range;
    if (!r || r.end - r.next < 2) return null;
    const from = r.next + Math.ceil((r.end - r.next) / 2);
    const gift = { gift: r.ids++, region: { from, to: r.end } };
    r.gifts.push({ from, id: gift.gift });
    r.end = from;
    return gift;
  }

  /** A lower bound on the current piece's runs to go. */
  open(): number {
    if (this.dfs) return this.dfs.openBranches();
    return this.range ? this.range.end - this.range.next : 0;
  }

  private checked(seg: Segment, failure: ExploreFailure | null): boolean {
    if (failure) {
      seg.failures.push({ at: seg.runs, failure });
      this.failures++;
    }
    seg.runs++;
    this.runs++;
    return this.failures >= this.s.maxFailures;
  }

  private async exhaustive(prefix: number[], presplit: number): Promise<PieceResult> {
    const dfs = new DfsPolicy(this.s.bound, true, prefix);
    this.dfs = dfs;
    const items: PieceItem[] = [];
    let seg = newSegment();
    let cut = false;
    for (let first = true; ; first = false) {
      const { failure } = await this.runOnce(dfs);
      if (dfs.depth < prefix.length) throw new ScheduleError('explore: a run ended before the decisions that lead to its piece: the script is not deterministic');
      for (let i = 0; first && i < presplit; i++) {
        if (dfs.donate()?.gift !== i) throw new ScheduleError('explore: a shard piece split differently than before: the script is not deterministic');
      }
      if (dfs.redundant) {
        const last = seg.pruned[seg.pruned.length - 1];
        if (last && last[0] === seg.runs) last[1]++;
        else seg.pruned.push([seg.runs, 1]);
      } else if (this.checked(seg, failure)) {
        cut = true;
        break;
      }
      const more = dfs.backtrack();
      for (const gift of dfs.takePassed()) {
        items.push({ seg }, { gift });
        seg = newSegment();
      }
      if (!more) break;
      if (this.runs >= this.s.runs) {
        cut = true;
        break;
      }
      await this.pause();
    }
    items.push({ seg });
    return { items, cut };
  }

  private async random(from: number, to: number): Promise<PieceResult> {
    const r = { next: from, end: to, gifts: [] as { from: number; id: number }[], ids: 0 };
    this.range = r;
    const seg = newSegment();
    while (r.next < r.end) {
      const { failure } = await this.runOnce(randomPolicy(this.s, r.next++));
      if (this.checked(seg, failure)) return { items: [{ seg }], cut: true };
      await this.pause();
    }
    // Each gift took the upper part of what was left, so by start they follow each other.
    const gifts = r.gifts.sort((a, b) => a.from - b.from).map((g): PieceItem => ({ gift: g.id }));
    return { items: [{ seg }, ...gifts], cut: false };
  }
}

interface PieceState {
  region: Region;
  result?: PieceResult;
  /** Gift number in this piece → the piece made of it. */
  gifts: Map<number, number>;
}

/**
 * Walk the pieces from the root in the sequential order, applying the cuts as the sequential loop
 * does. final: the result can no longer change (a cut was reached, or every piece is in).
 */
export function mergePieces(pieces: ReadonlyMap<number, PieceState>, s: ExploreSettings): { result: ExploreResult; final: boolean } {
  const out: ExploreResult = { runs: 0, failures: [], complete: false, pruned: 0 };
  const cap = s.mode === 'exhaustive' ? s.runs : Infinity;
  // The sequential loop stops at the cap only when another run (checked or pruned) would follow.
  let capped = false;
  type Walk = 'go' | 'stop' | 'pending';
  const segment = (g: Segment): Walk => {
    let k = 0;
    let pi = 0;
    let fi = 0;
    for (;;) {
      for (; pi < g.pruned.length && g.pruned[pi]![0] === k; pi++) {
        if (capped) return 'stop';
        out.pruned += g.pruned[pi]![1];
      }
      if (k >= g.runs) return 'go';
      if (capped) return 'stop';
      const nextFailure = fi < g.failures.length ? g.failures[fi]!.at : Infinity;
      const beforePruned = pi < g.pruned.length ? g.pruned[pi]![0] - 1 : Infinity;
      // Take runs up to the next thing that matters: a failure, pruned runs, the cap, the end.
      const last = Math.min(g.runs - 1, nextFailure, beforePruned, k + (cap - out.runs) - 1, out.failures.length >= s.maxFailures ? k : Infinity);
      out.runs += last - k + 1;
      k = last + 1;
      if (nextFailure === last) out.failures.push(g.failures[fi++]!.failure);
      if (out.failures.length >= s.maxFailures) return 'stop';
      if (out.runs >= cap) capped = true;
    }
  };
  const piece = (id: number): Walk => {
    const p = pieces.get(id)!;
    if (!p.result) return 'pending';
    for (const item of p.result.items) {
      const w = 'seg' in item ? segment(item.seg) : piece(p.gifts.get(item.gift)!);
      if (w !== 'go') return w;
    }
    return p.result.cut ? 'stop' : 'go';
  };
  const w = piece(0);
  out.complete = w === 'go';
  return { result: out, final: w !== 'pending' };
}

class Finished extends Error {}

interface Party {
  state: 'starting' | 'idle' | 'busy' | 'gone';
  piece: number | null;
  /** A donate request to it is out. */
  asked: boolean;
  /** It had nothing to give; not asked again before it reports progress. */
  dry: boolean;
  /** Of its current piece. */
  runs: number;
  failures: number;
  open: number;
  handle?: HelperHandle;
}

/**
 * The calling side: explores the root piece itself, starts helpers when asked to, hands out work
 * and merges. With no helpers this is the sequential search.
 */
export async function coordinate(runOnce: RunOnce, s: ExploreSettings, fingerprint: string, opts: ExploreOptions): Promise<ExploreResult> {
  const yieldMs = opts.yieldMs ?? YIELD_MS;
  const pieces = new Map<number, PieceState>([[0, { region: s.mode === 'random' ? { from: 0, to: s.runs } : { prefix: [] }, gifts: new Map() }]]);
  const local: Party = { state: 'busy', piece: 0, asked: false, dry: false, runs: 0, failures: 0, open: 0 };
  const parties: Party[] = [local];
  const pending: number[] = [];
  let nextPiece = 1;
  let done = { runs: 0, failures: 0 };
  let final: ExploreResult | null = null;
  let failed: Error | null = null;
  let wakeLocal: (() => void) | null = null;
  const started = performance.now();
  let helpersStarted = false;
  let lastYield = started;
  let lastProgress = started;

  const explorer = new PieceExplorer(runOnce, s, async () => {
    const now = performance.now();
    if (now - lastYield >= yieldMs) {
      await macrotask();
      lastYield = performance.now();
    }
    if (!helpersStarted && opts.helpers && now - started >= opts.helpers.afterMs) startHelpers();
    stopIfOver();
    local.dry = false;
    if (parties.some((p) => p.state === 'idle')) balance();
    progress();
  });

  const stopIfOver = (): void => {
    if (opts.signal?.aborted) throw new ScheduleError('the exploration was stopped');
    if (failed) throw failed;
    if (final) throw new Finished();
  };
  const fail = (e: Error): void => {
    failed ??= e;
    wakeLocal?.();
  };
  const stopHelpers = (): void => {
    for (const p of parties) {
      if (p.handle && p.state !== 'gone') {
        p.state = 'gone';
        p.handle.terminate();
      }
    }
  };
  // Helpers stop with the signal, not at this worker's next pause: a run may still be under way here.
  const onAbort = (): void => {
    stopHelpers();
    wakeLocal?.();
  };
  opts.signal?.addEventListener('abort', onAbort);

  const progress = (): void => {
    const now = performance.now();
    if (now - lastProgress < PROGRESS_MS) return;
    lastProgress = now;
    local.runs = explorer.runs;
    local.failures = explorer.failures;
    local.open = explorer.open();
    let runs = done.runs;
    let failures = done.failures;
    let open = 0;
    for (const p of parties) {
      if (p.state !== 'busy') continue;
      runs += p.runs;
      failures += p.failures;
      open += p.open;
    }
    const estimated = s.mode === 'random' ? s.runs : runs + open;
    opts.onProgress?.({ runs, estimated, failures });
  };

  const assign = (p: Party, id: number): void => {
    p.state = 'busy';
    p.piece = id;
    p.dry = false;
    p.runs = p.failures = p.open = 0;
    if (p === local) wakeLocal?.();
    else p.handle!.post({ type: 'explore', piece: id, region: pieces.get(id)!.region });
  };

  const addGift = (g: { piece: number; gift: number; region: Region }): void => {
    const id = nextPiece++;
    pieces.set(id, { region: g.region, gifts: new Map() });
    pieces.get(g.piece)!.gifts.set(g.gift, id);
    pending.push(id);
  };

  /** Give idle parties pending pieces, and ask busy ones for more while some are still idle. */
  const balance = (): void => {
    while (!final && !failed) {
      for (const p of parties) if (p.state === 'idle' && pending.length > 0) assign(p, pending.shift()!);
      if (parties.filter((p) => p.state === 'idle').length <= parties.filter((p) => p.asked).length) return;
      if (local.state === 'busy') local.open = explorer.open();
      const donor = parties.filter((p) => p.state === 'busy' && !p.asked && !p.dry).sort((a, b) => b.open - a.open)[0];
      if (!donor) return;
      if (donor !== local) {
        donor.asked = true;
        donor.handle!.post({ type: 'donate' });
        continue;
      }
      const g = explorer.donate();
      if (g) addGift({ piece: local.piece!, ...g });
      else local.dry = true;
    }
  };

  const finish = (p: Party, id: number, result: PieceResult): void => {
    pieces.get(id)!.result = result;
    p.state = 'idle';
    p.piece = null;
    for (const item of result.items) {
      if (!('seg' in item)) continue;
      done = { runs: done.runs + item.seg.runs, failures: done.failures + item.seg.failures.length };
    }
    const m = mergePieces(pieces, s);
    if (m.final) {
      final = m.result;
      wakeLocal?.();
      return;
    }
    balance();
    if (parties.every((q) => q.state !== 'busy' && !q.asked) && pending.length === 0) fail(new Error('explore: internal: every piece is explored but the result is incomplete'));
  };

  const startHelpers = (): void => {
    helpersStarted = true;
    for (let i = 0; i < opts.helpers!.count; i++) {
      const p: Party = { state: 'starting', piece: null, asked: false, dry: false, runs: 0, failures: 0, open: 0 };
      parties.push(p);
      const onMessage = (m: FromHelper): void => {
        if (final || failed || p.state === 'gone') return;
        switch (m.type) {
          case 'ready':
            if (m.fingerprint !== fingerprint) {
              fail(new Error(`explore: a helper worker reached this explore call in another state (${m.fingerprint}, here ${fingerprint}): the script is not deterministic; explore with workers: 1`));
              return;
            }
            p.state = 'idle';
            balance();
            return;
          case 'progress':
            Object.assign(p, { runs: m.runs, failures: m.failures, open: m.open, dry: false });
            if (parties.some((q) => q.state === 'idle')) balance();
            progress();
            return;
          case 'gift':
            p.asked = false;
            addGift(m);
            balance();
            return;
          case 'no-gift':
            p.asked = false;
            p.dry = true;
            return;
          case 'done':
            finish(p, m.piece, m.result);
            return;
          case 'error':
            fail(new Error(`explore (helper worker): ${m.message}`));
        }
      };
      const onExit = (reason: string): void => {
        if (p.state === 'gone') return;
        p.state = 'gone';
        if (!final) fail(new Error(`explore: a helper worker ended: ${reason}`));
      };
      p.handle = opts.helpers!.start(onMessage, onExit);
    }
  };

  try {
    if (opts.helpers && opts.helpers.count > 0 && opts.helpers.afterMs <= 0) startHelpers();
    let id: number | null = 0;
    while (id !== null) {
      let result: PieceResult;
      try {
        result = await explorer.explore(pieces.get(id)!.region);
      } catch (e) {
        if (e instanceof Finished) break;
        throw e;
      }
      finish(local, id, result);
      id = await new Promise<number | null>((resolve) => {
        const check = (): boolean => {
          if (final || failed || opts.signal?.aborted) resolve(null);
          else if (local.state === 'busy') resolve(local.piece);
          else return false;
          wakeLocal = null;
          return true;
        };
        if (!check()) wakeLocal = () => void check();
      });
    }
    stopIfOver();
    throw new Error('explore: internal: the exploration ended without a result');
  } catch (e) {
    if (e instanceof Finished) {
      opts.onProgress?.({ runs: final!.runs, estimated: final!.runs, failures: final!.failures.length });
      return final!;
    }
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    stopHelpers();
  }
}

/**
 * A helper's side: say which state it reached, then explore the pieces it is sent, giving parts
 * away when asked, until it is terminated. Errors are reported, not thrown.
 */
export async function serveHelper(runOnce: RunOnce, s: ExploreSettings, fingerprint: string, channel: HelperChannel, opts: ExploreOptions): Promise<never> {
  const yieldMs = opts.yieldMs ?? YIELD_MS;
  let lastYield = performance.now();
  let lastProgress = lastYield;
  const queue: { piece: number; region: Region }[] = [];
  let wake: (() => void) | null = null;
  let current: number | null = null;
  const explorer = new PieceExplorer(runOnce, s, async () => {
    const now = performance.now();
    if (now - lastYield >= yieldMs) {
      await macrotask();
      lastYield = performance.now();
    }
    if (now - lastProgress >= PROGRESS_MS) {
      lastProgress = now;
      channel.post({ type: 'progress', runs: explorer.runs, failures: explorer.failures, open: explorer.open() });
    }
    if (opts.signal?.aborted) throw new ScheduleError('the exploration was stopped');
  });
  channel.listen((m) => {
    if (m.type === 'explore') {
      queue.push(m);
      wake?.();
      return;
    }
    const g = current === null ? null : explorer.donate();
    channel.post(g && current !== null ? { type: 'gift', piece: current, ...g } : { type: 'no-gift' });
  });
  channel.post({ type: 'ready', fingerprint });
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      wake = null;
      const job = queue.shift()!;
      current = job.piece;
      const result = await explorer.explore(job.region);
      current = null;
      channel.post({ type: 'done', piece: job.piece, result });
    }
  } catch (e) {
    channel.post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    return new Promise<never>(() => {});
  }
}

/** What must be equal on both sides for a helper's pieces to belong to this exploration. */
export function exploreFingerprint(state: string, s: ExploreSettings, threads: number): string {
  return JSON.stringify({ state, threads, ...s, bound: String(s.bound), runs: String(s.runs) });
}
