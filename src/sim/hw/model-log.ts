/**
 * What an IOMMU model keeps of its own history: capacity evictions of each cache level, traced in
 * batches (EvictionLog), and its latest faults. A fault is traced after the eviction batches that
 * came before it, so the timeline reads in order.
 */
import { EvictionLog } from './tlb';
import type { Fault, HwContext } from './types';

/** Faults kept per model; older ones drop out (the trace and the findings still have them). */
const MAX_FAULTS = 4096;

export class ModelLog {
  private readonly levels: EvictionLog[] = [];
  private log: Fault[] = [];

  constructor(
    private readonly ctx: HwContext,
    /** Trace track: the model's name. */
    private readonly track: string,
  ) {}

  /** A new cache level's eviction sink. */
  evictions(level: string): EvictionLog {
    const l = new EvictionLog(this.ctx.clock, this.ctx.trace, this.track, level);
    this.levels.push(l);
    return l;
  }

  /** Emit pending eviction batches (before other events, and whenever someone looks). */
  flushEvictions(): void {
    for (const l of this.levels) l.flush();
  }

  /** Keep f and trace it; args are the trace event's. */
  fault(f: Fault, args: Record<string, string | number | boolean>): void {
    this.log.push(f);
    if (this.log.length > MAX_FAULTS) this.log.shift();
    this.flushEvictions();
    this.ctx.trace.emit({ time: f.time, cat: 'fault', name: f.reason, track: this.track, args });
  }

  /** Copies of the kept faults, oldest first. */
  faults(): Fault[] {
    return this.log.map((f) => ({ ...f }));
  }

  restoreFaults(faults: Fault[]): void {
    this.log = faults.map((f) => ({ ...f }));
  }
}
