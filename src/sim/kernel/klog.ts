/**
 * The kernel log: printk lines go to the trace (cat 'kernel'); WARN splats also become
 * 'driver-warn' findings, since a WARN in a driver test is something the user must look at.
 */
import type { FindingSink } from '../core/findings';
import type { Trace } from '../core/trace';

export type Where = Record<string, string | number>;

export class KernelLog {
  constructor(
    private readonly now: () => number,
    private readonly trace?: Trace,
    private readonly findings?: FindingSink,
  ) {}

  printk(level: 'err' | 'warn' | 'info' | 'debug', message: string, track = 'kernel'): void {
    this.trace?.emit({ time: this.now(), cat: 'kernel', name: 'printk', track, args: { level, message } });
  }

  /** WARN(): a log line and a warning-level finding. */
  warn(message: string, where?: Where, track = 'kernel'): void {
    this.printk('warn', message, track);
    this.findings?.report({ kind: 'driver-warn', severity: 'warning', message, where });
  }

  /** A kernel oops in fn (a NULL dereference the modelled driver makes as upstream does): an error finding. */
  oops(fn: string, message: string, track = 'kernel'): void {
    const text = `Unable to handle kernel NULL pointer dereference in ${fn}: ${message}`;
    this.printk('err', text, track);
    this.findings?.report({ kind: 'oops', severity: 'error', message: text, where: { function: fn } });
  }

  event(name: string, track: string, args?: Record<string, string | number | boolean>, cat: 'kernel' | 'attach' | 'inval' | 'fault' = 'kernel'): void {
    this.trace?.emit({ time: this.now(), cat, name, track, args });
  }
}
