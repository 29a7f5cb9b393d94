/**
 * The script API's `explore` global over a SoC: explore(spec) and explore.replay(schedule, spec),
 * with the spec's threads and check being sandbox callbacks (the bridge hands them over as host
 * functions that call back into the script).
 */
import type { Soc } from '../soc';
import { explore, replay, type ExploreProgress, type ExploreResult, type ExploreSpec, type ExploreTarget, type ReplayResult } from './explore';

export interface ExploreBinding {
  (spec: ExploreSpec): Promise<ExploreResult>;
  replay(schedule: number[], spec: ExploreSpec): Promise<ReplayResult>;
}

export interface ExploreBindingOptions {
  onProgress?(p: ExploreProgress): void;
  /** Told of every finished exploration (the CLI prints failing schedules from it). */
  onResult?(r: ExploreResult): void;
  /** The signal that stops explorations now (the running test's). */
  signal?(): AbortSignal | undefined;
}

export function socExploreTarget(soc: Soc): ExploreTarget {
  return {
    checkpoint: () => soc.checkpoint(),
    setExecutor: (e) => soc.setExecutor(e),
    findings: () => soc.findings.list(),
    truncateFindings: (n) => soc.findings.restore(soc.findings.list().slice(0, n)),
    seed: soc.seed,
  };
}

export function createExploreBinding(soc: Soc, opts: ExploreBindingOptions = {}): ExploreBinding {
  const target = socExploreTarget(soc);
  const run = async (spec: ExploreSpec): Promise<ExploreResult> => {
    const signal = opts.signal?.();
    const r = await explore(target, spec, { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(signal ? { signal } : {}) });
    opts.onResult?.(r);
    return r;
  };
  return Object.assign(run, {
    replay: (schedule: number[], spec: ExploreSpec): Promise<ReplayResult> => {
      const signal = opts.signal?.();
      return replay(target, schedule, spec, signal ? { signal } : {});
    },
  });
}
