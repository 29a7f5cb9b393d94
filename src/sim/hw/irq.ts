import type { Clock } from '../core/clock';
import type { Trace } from '../core/trace';

/** What the inspector shows for one interrupt line. */
export interface IrqLineState {
  /** GIC SPI number. */
  line: number;
  level: boolean;
  /** Rising edges seen since reset. */
  raised: number;
  /** Blocks wired to the line. */
  sources: string[];
}

interface LineRec {
  level: boolean;
  raised: number;
  sources: string[];
}

/** Level-sensitive interrupt lines by GIC SPI number; each change is traced. */
export class IrqLines {
  private lines = new Map<number, LineRec>();

  constructor(
    private readonly clock: Clock,
    private readonly trace: Trace,
  ) {}

  private rec(line: number): LineRec {
    let r = this.lines.get(line);
    if (!r) {
      r = { level: false, raised: 0, sources: [] };
      this.lines.set(line, r);
    }
    return r;
  }

  /** Record that a block drives the line (config wiring). */
  connect(line: number, source: string): void {
    const r = this.rec(line);
    if (!r.sources.includes(source)) r.sources.push(source);
  }

  set(line: number, level: boolean): void {
    const r = this.rec(line);
    if (r.level === level) return;
    r.level = level;
    if (level) r.raised++;
    this.trace.emit({ time: this.clock.now(), cat: 'irq', name: level ? 'assert' : 'deassert', track: `irq${line}`, args: { line } });
  }

  level(line: number): boolean {
    return this.lines.get(line)?.level ?? false;
  }

  list(): IrqLineState[] {
    return [...this.lines]
      .sort(([a], [b]) => a - b)
      .map(([line, r]) => ({ line, level: r.level, raised: r.raised, sources: r.sources.slice() }));
  }

  snapshot(): [number, boolean, number][] {
    return [...this.lines].map(([l, r]) => [l, r.level, r.raised]);
  }

  restore(s: [number, boolean, number][]): void {
    for (const r of this.lines.values()) {
      r.level = false;
      r.raised = 0;
    }
    for (const [l, level, raised] of s) {
      const r = this.rec(l);
      r.level = level;
      r.raised = raised;
    }
  }
}
