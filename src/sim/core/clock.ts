import type { Snapshotable } from './snapshot';

/** A scheduled callback on the simulated clock. */
interface TimerEntry {
  at: number;
  seq: number;
  id: string;
  fire: () => void;
}

/**
 * Simulated time in cycles with a deterministic timer queue (ties broken by insertion order).
 * Timers are identified by name so that a restored snapshot can re-arm them through their owners.
 */
export class Clock implements Snapshotable<{ now: number }> {
  private t = 0;
  private seq = 0;
  private timers: TimerEntry[] = [];

  now(): number {
    return this.t;
  }

  /** Call fire at now + delay. Returns a cancel function. */
  after(delay: number, id: string, fire: () => void): () => void {
    const e: TimerEntry = { at: this.t + Math.max(0, delay), seq: this.seq++, id, fire };
    this.timers.push(e);
    this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    return () => {
      const i = this.timers.indexOf(e);
      if (i >= 0) this.timers.splice(i, 1);
    };
  }

  /** Advance time by cycles, firing due timers in order. */
  advance(cycles: number): void {
    const end = this.t + cycles;
    for (;;) {
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.at);
      next.fire();
    }
    this.t = end;
  }

  /** Move time forward without firing timers: the cost of an MMIO access or a table walk. */
  tick(cycles: number): void {
    this.t += cycles;
  }

  pending(): string[] {
    return this.timers.map((e) => e.id);
  }

  snapshot(): { now: number } {
    return { now: this.t };
  }

  restore(s: { now: number }): void {
    this.t = s.now;
    this.timers = [];
  }
}
