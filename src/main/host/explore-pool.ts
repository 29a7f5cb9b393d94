/**
 * Helper workers for large explorations (sim/check/explore-parallel.ts), as worker_threads: each
 * helper is a fresh explore-worker that runs the same script up to the same explore call. They are
 * children of the thread that creates them, so they end with it (a stopped or restarted sim worker
 * takes its helpers along).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ExploreJob, ExplorePool, FromHelper, HelperHandle } from '../../sim/check/explore-parallel';
import type { WorkerEntry } from './host';

/** The explore worker next to this module: .ts under tsx (dev, tests, CLI), .js when bundled. */
export function exploreWorkerEntry(): WorkerEntry {
  const self = new URL(import.meta.url);
  return self.pathname.endsWith('.ts') ? { ts: new URL('./explore-worker.ts', self) } : { js: new URL('./explore-worker.js', self) };
}

export class WorkerExplorePool implements ExplorePool {
  /** Helpers running now (tests check that stopping an exploration ends them). */
  live = 0;

  constructor(
    /** One per core beside the calling worker. */
    readonly size = Math.max(0, availableParallelism() - 1),
    private readonly entry: WorkerEntry = exploreWorkerEntry(),
  ) {}

  start(job: ExploreJob, onMessage: (m: FromHelper) => void, onExit: (reason: string) => void): HelperHandle {
    const worker =
      'js' in this.entry
        ? new Worker(this.entry.js, { workerData: { job } })
        : new Worker(new URL('./tsx-bootstrap.mjs', import.meta.url), { workerData: { job, tsEntry: this.entry.ts.href } });
    this.live++;
    let ended = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      this.live--;
      onExit(reason);
    };
    worker.on('message', (m: FromHelper) => !ended && onMessage(m));
    worker.on('error', (err) => end(`it crashed: ${err.message}`));
    worker.on('exit', (code) => end(`it exited (code ${code})`));
    return {
      post: (m) => !ended && worker.postMessage(m),
      terminate: () => {
        end('terminated');
        void worker.terminate();
      },
    };
  }
}
