/**
 * Cooperative preemption. Kernel code and DMA engines are generators that yield a PreemptPoint at
 * every page-table memory access, MMIO access and DMA beat: the one port through which a scheduler
 * (normal seeded run or the interleaving explorer) decides who runs next. An operation may yield the
 * same object at each of its points, updated in between (a DMA engine's beats): it describes the
 * point while the thread stands there, so a scheduler that keeps points for later copies them. Such
 * an operation may also return the same IteratorResult for each point: read it before the next next().
 */
export type PreemptKind = 'mem-read' | 'mem-write' | 'mmio-read' | 'mmio-write' | 'dma-beat' | 'yield';

export interface PreemptPoint {
  kind: PreemptKind;
  /** Physical address touched, where there is one. */
  pa?: number;
  /** Who is at the point (thread or device name), for schedules a person can read. */
  who?: string;
  /** For a DMA beat: whether it reads or writes memory (the explorer's independence rule). */
  access?: 'read' | 'write';
  /**
   * The thread cannot get past this point while wait() is true (a held spinlock, a PM transition
   * on another CPU): the scheduler does not run it until then, so waiting is not spinning.
   */
  wait?: () => boolean;
  /** Source location of the access (a C driver's function and file:line), for replay steps. */
  where?: string;
}

/** A preemptible operation returning T. */
export type Op<T> = Generator<PreemptPoint, T, void>;

/** Run an operation to completion with no other thread interleaved. */
export function runOp<T>(op: Op<T>): T {
  let r = op.next();
  while (!r.done) r = op.next();
  return r.value;
}

/** An operation that completes at once: lets plain values flow where an Op is expected. */
// eslint-disable-next-line require-yield
export function* done<T>(value: T): Op<T> {
  return value;
}
