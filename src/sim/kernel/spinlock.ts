/**
 * spin_lock / spin_unlock for kernel code that runs as Op generators. Taking the lock is a
 * preemption point (another CPU may get there first); a CPU that finds it held spins, yielding,
 * until the holder releases it. Under a single thread it is never contended.
 */
import type { Op, PreemptPoint } from '../core/coop';

export class SpinLock {
  private holder: string | null = null;
  private readonly point: PreemptPoint;

  constructor(readonly name: string) {
    this.point = { kind: 'yield', who: name, wait: () => this.holder !== null };
  }

  *lock(who = 'cpu'): Op<void> {
    yield this.point;
    while (this.holder !== null) yield this.point;
    this.holder = who;
  }

  unlock(): void {
    this.holder = null;
  }

  isLocked(): boolean {
    return this.holder !== null;
  }

  /** The holder, for explorer checkpoints. */
  snapshot(): string | null {
    return this.holder;
  }

  restore(holder: string | null): void {
    this.holder = holder;
  }
}
