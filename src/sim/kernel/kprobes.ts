/**
 * kprobes and kretprobes on the symbols drivers declare: a handler runs synchronously when kernel
 * code enters (or returns from) the function, between two kernel steps. Scripts use them to place
 * device activity at an exact point of a driver path (a DMA between a zap and a table update).
 */
export type ProbeWhen = 'entry' | 'return';
export type ProbeHandler = (symbol: string) => void;

interface Probe {
  id: number;
  symbol: string;
  when: ProbeWhen;
  handler: ProbeHandler;
}

export class Kprobes {
  /** Whether any probe is registered: drivers test this before building anything. */
  active = false;
  private readonly symbols = new Set<string>();
  private probes: Probe[] = [];
  private nextId = 1;

  /** A driver's probe-able functions. */
  declare(symbols: readonly string[]): void {
    for (const s of symbols) this.symbols.add(s);
  }

  known(): string[] {
    return [...this.symbols].sort();
  }

  /** register_kprobe / register_kretprobe: the probe's id. Unknown symbols are refused. */
  register(symbol: string, when: ProbeWhen, handler: ProbeHandler): number {
    if (!this.symbols.has(symbol)) throw new Error(`register_${when === 'entry' ? 'kprobe' : 'kretprobe'}: no symbol '${symbol}' (known: ${this.known().join(', ')})`);
    const id = this.nextId++;
    this.probes.push({ id, symbol, when, handler });
    this.active = true;
    return id;
  }

  unregister(id: number): void {
    this.probes = this.probes.filter((p) => p.id !== id);
    this.active = this.probes.length > 0;
  }

  /** Explorer checkpoints: the registered probes. */
  snapshot(): { probes: Probe[]; nextId: number } {
    return { probes: this.probes.slice(), nextId: this.nextId };
  }

  restore(s: { probes: Probe[]; nextId: number }): void {
    this.probes = s.probes.slice();
    this.nextId = s.nextId;
    this.active = this.probes.length > 0;
  }

  hit(symbol: string, when: ProbeWhen): void {
    for (const p of this.probes) if (p.symbol === symbol && p.when === when) p.handler(symbol);
  }
}
