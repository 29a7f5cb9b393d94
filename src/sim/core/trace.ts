/** The trace bus: every observable hardware and kernel event, in simulated-time order. */
export type TraceCategory = 'dma' | 'fault' | 'inval' | 'attach' | 'pm' | 'mmio' | 'irq' | 'kernel' | 'script';

export interface TraceEvent {
  time: number;
  cat: TraceCategory;
  name: string;
  /** Block or device the event belongs to (a timeline track). */
  track: string;
  args?: Record<string, string | number | boolean>;
  /** Duration in cycles, for spans (DMA transfers). */
  dur?: number;
}

export type TraceListener = (e: TraceEvent) => void;

/** Bounded ring of recent events plus synchronous listeners (checkers, UI streams). */
export class Trace {
  private ring: TraceEvent[] = [];
  private head = 0;
  private emitted = 0;
  private listeners = new Set<TraceListener>();

  constructor(private readonly capacity = 65536) {}

  emit(e: TraceEvent): void {
    this.emitted++;
    if (this.ring.length < this.capacity) this.ring.push(e);
    else {
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.capacity;
    }
    for (const l of this.listeners) l(e);
  }

  /** How many events were ever emitted: a mark to rewind to. */
  mark(): number {
    return this.emitted;
  }

  /** Drop the events emitted after mark (those still in the ring). */
  rewind(mark: number): void {
    const n = this.emitted - mark;
    if (n <= 0) return;
    this.emitted = mark;
    if (this.head === 0) this.ring.length = Math.max(0, this.ring.length - n);
    else {
      const all = this.events();
      this.ring = all.slice(0, Math.max(0, all.length - n));
      this.head = 0;
    }
  }

  /**
   * Put back a ring saved earlier (events() and mark() then), without telling the listeners: the
   * events happened already. Time travel forward from an earlier rewind starts here.
   */
  reload(events: readonly TraceEvent[], emitted: number): void {
    this.ring = events.slice(-this.capacity);
    this.head = 0;
    this.emitted = emitted;
  }

  subscribe(l: TraceListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Events in time order (oldest first). */
  events(): TraceEvent[] {
    return this.ring.slice(this.head).concat(this.ring.slice(0, this.head));
  }

  clear(): void {
    this.ring = [];
    this.head = 0;
  }
}
