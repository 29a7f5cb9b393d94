/**
 * The script API's `explore` global over a SoC: explore(spec) and explore.replay(schedule, spec),
 * with the spec's threads and check being sandbox callbacks (the bridge hands them over as host
 * functions that call back into the script).
 *
 * Each explore call is named by its test and its ordinal within the test, so a helper worker
 * running the same script (explore-parallel.ts) can tell which call it was started for.
 */
import type { Soc } from '../soc';
import { explore, replay, replayPrefix, serveExplore, type ExploreOptions, type ExploreProgress, type ExploreResult, type ExploreSpec, type ExploreTarget, type ReplayPrefixResult, type ReplayResult } from './explore';
import type { ExploreCallId, ExploreJob, ExplorePool, HelperChannel } from './explore-parallel';
import type { ShardCall, ShardSpec } from './explore-shard';

export interface ExploreBinding {
  (spec: ExploreSpec): Promise<ExploreResult>;
  replay(schedule: number[], spec: ExploreSpec): Promise<ReplayResult>;
}

export interface ExploreBindingOptions {
  onProgress?(p: ExploreProgress): void;
  /** See ExploreOptions.onRun. */
  onRun?: ExploreOptions['onRun'];
  /** Told of every finished exploration and which call it was (the CLI prints failing schedules; the console offers replays). */
  onResult?(r: ExploreResult, call: ExploreCallId): void;
  /** The signal that stops explorations now (the running test's). */
  signal?(): AbortSignal | undefined;
  /** The running test's index (-1 while the script loads). */
  testIndex?(): number;
  /** Helper workers for large explorations. */
  parallel?: {
    pool: ExplorePool;
    /** Workers per exploration, this one included, unless the spec says; none: one per core once an exploration runs long. */
    workers?: number;
    /** The job that brings a helper to this call. */
    job(call: ExploreCallId, earlier: ExploreJob['earlier']): ExploreJob;
  };
  /** In a helper worker: the call to serve; the calls before it get the results their caller got. */
  serve?: { call: ExploreCallId; earlier: ExploreJob['earlier']; channel: HelperChannel };
  /**
   * Step-by-step replay in the console: at this call, instead of exploring, replay the schedule up
   * to a step (replayPrefix) and hand over the outcome. The call then never returns: the caller
   * stops the run, so nothing after the call changes the state the step left.
   */
  replayAt?: { call: ExploreCallId; schedule: number[]; steps: number; done(r: ReplayPrefixResult | { problem: string }): void };
  /** Explore only this shard of every call, handing each call's shard report over (explore-shard.ts). */
  shard?: { spec: ShardSpec; report(c: ShardCall): void };
  /** Merging shards: every explore call is answered with its merged result instead of exploring. */
  answers?: readonly { call: ExploreCallId; result: ExploreResult }[];
}

/** An exploration still running after this long spreads over one worker per core. */
const AUTO_AFTER_MS = 1000;

export function socExploreTarget(soc: Soc): ExploreTarget {
  return {
    checkpoint: () => soc.checkpoint(),
    setExecutor: (e) => soc.setExecutor(e),
    findings: () => soc.findings.list(),
    truncateFindings: (n) => soc.findings.restore(soc.findings.list().slice(0, n)),
    seed: soc.seed,
    fingerprint: () => `time ${soc.clock.now()}, ${soc.trace.mark()} trace events, ${soc.findings.list().length} findings`,
  };
}

const sameCall = (a: ExploreCallId, b: ExploreCallId): boolean => a.test === b.test && a.ordinal === b.ordinal;

export function createExploreBinding(soc: Soc, opts: ExploreBindingOptions = {}): ExploreBinding {
  const target = socExploreTarget(soc);
  const earlier: ExploreJob['earlier'] = [];
  let test = -2;
  let ordinal = 0;
  const nextCall = (): ExploreCallId => {
    const t = opts.testIndex?.() ?? -1;
    if (t !== test) [test, ordinal] = [t, 0];
    return { test, ordinal: ordinal++ };
  };
  const run = async (spec: ExploreSpec): Promise<ExploreResult> => {
    const call = nextCall();
    const signal = opts.signal?.();
    const base: ExploreOptions = { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(opts.onRun ? { onRun: opts.onRun } : {}), ...(signal ? { signal } : {}) };
    if (opts.serve) {
      const known = opts.serve.earlier.find((e) => sameCall(e.call, call));
      if (known) return known.result;
      if (sameCall(call, opts.serve.call)) return serveExplore(target, spec, opts.serve.channel, base);
      // A call that threw at its caller throws here too: run it the same way.
      return explore(target, spec, base);
    }
    if (opts.answers) {
      const known = opts.answers.find((e) => sameCall(e.call, call));
      if (!known) throw new Error(`merge: the shard reports have no explore call ${call.ordinal} of ${call.test < 0 ? 'the script load' : `test ${call.test}`}: the script's control flow differs from the sharded runs`);
      earlier.push(known);
      opts.onResult?.(known.result, call);
      return known.result;
    }
    const shard = opts.shard;
    if (shard) return explore(target, spec, { ...base, shard: { spec: shard.spec, call, report: shard.report } });
    const at = opts.replayAt;
    if (at && sameCall(at.call, call)) {
      try {
        at.done(await replayPrefix(target, at.schedule, spec, at.steps, base));
      } catch (e) {
        at.done({ problem: e instanceof Error ? e.message : String(e) });
      }
      return new Promise<never>(() => undefined);
    }
    const r = await explore(target, spec, { ...base, ...helpersFor(spec, call) });
    earlier.push({ call, result: r });
    opts.onResult?.(r, call);
    return r;
  };
  const helpersFor = (spec: ExploreSpec, call: ExploreCallId): Pick<ExploreOptions, 'helpers'> => {
    const p = opts.parallel;
    if (!p) return {};
    const workers = spec.workers ?? p.workers;
    // Each helper is a whole engine (~100 MB): more than one per core only costs memory.
    const cores = p.pool.size + 1;
    if (workers !== undefined && workers > cores) {
      const given = spec.workers !== undefined ? 'explore: workers' : 'the run\'s explore workers (--explore-workers)';
      throw new RangeError(`${given} must be at most ${cores} (one per core of this machine), got ${workers}`);
    }
    const count = workers === undefined ? p.pool.size : workers - 1;
    if (count <= 0) return {};
    const job = p.job(call, earlier.slice());
    return { helpers: { count, afterMs: workers === undefined ? AUTO_AFTER_MS : 0, start: (onMessage, onExit) => p.pool.start(job, onMessage, onExit) } };
  };
  return Object.assign(run, {
    replay: (schedule: number[], spec: ExploreSpec): Promise<ReplayResult> => {
      const signal = opts.signal?.();
      return replay(target, schedule, spec, signal ? { signal } : {});
    },
  });
}
