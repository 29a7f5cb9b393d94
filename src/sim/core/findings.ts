/** Findings: what the engine says about the driver under test (script-api.md "Finding kinds"). */
export type FindingKind =
  | 'stale-translation'
  | 'unflushed-walk'
  | 'lost-mapping'
  | 'table-leak'
  | 'table-use-after-free'
  | 'live-domain-free'
  | 'double-unmap'
  | 'unmap-mismatch'
  | 'dma-while-suspended'
  | 'pm-disabled-no-setup'
  | 'fault'
  | 'reserved-bits'
  | 'misaligned-table'
  | 'bus-error'
  | 'mmio-while-off'
  | 'driver-warn'
  | 'oops'
  | 'master-stalled'
  | 'driver-oops';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  kind: FindingKind;
  severity: Severity;
  message: string;
  /** Simulated time in cycles when it was raised. */
  time: number;
  /** Where: block, IOMMU, device, IOVA, script line: whatever locates it. */
  where?: Record<string, string | number>;
  /**
   * What replays it: seed, and for explorer failures the schedule; event: how many trace events the
   * run had emitted when it was raised (the moment to open, see Session.openMoment).
   */
  replay?: { seed: number; schedule?: number[]; event?: number };
}

/** Where components report findings; passed in explicitly, never global. */
export interface FindingSink {
  report(f: Omit<Finding, 'time' | 'replay'> & { time?: number }): void;
}

/** Collects findings in raise order, stamping time and replay data. */
export class FindingLog implements FindingSink {
  private items: Finding[] = [];
  /** The script line of the call in progress ("file.ts:line:col"), when a script is running. */
  callSite: (() => string | undefined) | undefined;
  /** Told of every finding once it is logged (time travel keeps the SoC as it was then). */
  onReport: ((f: Finding) => void) | undefined;

  constructor(
    private readonly now: () => number,
    private readonly replay: () => Finding['replay'],
  ) {}

  report(f: Omit<Finding, 'time' | 'replay'> & { time?: number }): void {
    const line = f.where?.line === undefined ? this.callSite?.() : undefined;
    const where = line === undefined ? f.where : { ...f.where, line };
    const finding: Finding = { ...f, ...(where ? { where } : {}), time: f.time ?? this.now(), replay: this.replay() };
    this.items.push(finding);
    this.onReport?.(finding);
  }

  list(): Finding[] {
    return this.items.slice();
  }

  take(): Finding[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  snapshot(): Finding[] {
    return this.items.slice();
  }

  restore(s: Finding[]): void {
    this.items = s.slice();
  }
}
