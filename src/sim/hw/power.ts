import type { Clock } from '../core/clock';
import type { FindingSink } from '../core/findings';
import type { Trace } from '../core/trace';
import { BusError, type MmioTarget } from '../mem/bus';
import type { BlockDecl } from '../regs/dsl';

/** A block whose state lives in a power domain. */
export interface PowerMember {
  readonly name: string;
  /** Off: the block loses all state (registers, TLBs, caches). On: it comes back in reset state. */
  setPowered(on: boolean): void;
}

export type OffAccess = 'bus-error' | 'reset-values';

/** A switchable power domain: turning it off resets every block in it. */
export class PowerDomain {
  private members: PowerMember[] = [];
  private state: boolean;

  constructor(
    readonly name: string,
    on: boolean,
    readonly offAccess: OffAccess,
    private readonly clock: Clock,
    private readonly trace: Trace,
  ) {
    this.state = on;
  }

  get on(): boolean {
    return this.state;
  }

  add(member: PowerMember): void {
    this.members.push(member);
    member.setPowered(this.state);
  }

  set(on: boolean): void {
    if (on === this.state) return;
    this.state = on;
    for (const m of this.members) m.setPowered(on);
    this.trace.emit({ time: this.clock.now(), cat: 'pm', name: on ? 'power-on' : 'power-off', track: this.name });
  }

  /** Restores the level without resetting members again: their own snapshots carry their state. */
  restoreLevel(on: boolean): void {
    this.state = on;
  }
}

/** A reset controller line: while asserted, the blocks on it are held in reset (their state lost, as powered off). */
export class ResetLine {
  private members: PowerMember[] = [];

  constructor(
    readonly name: string,
    private state: boolean,
  ) {}

  get asserted(): boolean {
    return this.state;
  }

  add(member: PowerMember): void {
    this.members.push(member);
    if (this.state) member.setPowered(false);
  }

  set(asserted: boolean): void {
    if (asserted === this.state) return;
    this.state = asserted;
    for (const m of this.members) m.setPowered(!asserted);
  }

  /** Restores the level without resetting members again: their own snapshots carry their state. */
  restoreLevel(asserted: boolean): void {
    this.state = asserted;
  }
}

/** A gateable clock. A block whose clock is off answers MMIO with zeros and drops writes. */
export class ClockGate {
  constructor(
    readonly name: string,
    readonly rateHz: number,
    public on: boolean,
  ) {}
}

/**
 * Wraps a block's register window with what power and clocks do to it: while its domain is off the
 * block answers per offAccess (bus error, or reset values with writes dropped); while a clock is gated
 * or a reset line asserted it reads zero and drops writes, and the access is a `bus-error` naming the
 * line (a real interconnect would hang or return garbage). Every such access is reported, since a
 * driver touching an unpowered, unclocked or reset block is a bug.
 */
export function gateMmio(target: MmioTarget, base: number, decl: BlockDecl, domain: PowerDomain | undefined, clocks: ClockGate[], resetLines: ResetLine[], findings: FindingSink): MmioTarget {
  if (!domain && clocks.length === 0 && resetLines.length === 0) return target;
  const resets = new Map(decl.meta.registers.map((r) => [r.offset, r.reset]));
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const blocked = (offset: number, access: 'read' | 'write'): 'pass' | 'reset' | 'zero' => {
    if (domain && !domain.on) {
      const where = { block: target.name, offset: hex(offset), domain: domain.name };
      if (domain.offAccess === 'bus-error') {
        findings.report({ kind: 'mmio-while-off', severity: 'error', message: `${access} of ${target.name}+${hex(offset)} while power domain ${domain.name} is off: bus error`, where });
        throw new BusError(base + offset, access, 'cpu');
      }
      findings.report({ kind: 'mmio-while-off', severity: 'warning', message: `${access} of ${target.name}+${hex(offset)} while power domain ${domain.name} is off`, where });
      return 'reset';
    }
    const held = resetLines.find((r) => r.asserted);
    if (held) {
      findings.report({ kind: 'bus-error', severity: 'error', message: `${access} of ${target.name}+${hex(offset)} while reset ${held.name} is asserted: bus error`, where: { block: target.name, offset: hex(offset), reset: held.name } });
      return 'zero';
    }
    const gated = clocks.find((c) => !c.on);
    if (gated) {
      findings.report({ kind: 'bus-error', severity: 'error', message: `${access} of ${target.name}+${hex(offset)} while clock ${gated.name} is gated: bus error`, where: { block: target.name, offset: hex(offset), clock: gated.name } });
      return 'zero';
    }
    return 'pass';
  };
  return {
    name: target.name,
    read32(offset) {
      const b = blocked(offset, 'read');
      if (b === 'pass') return target.read32(offset);
      return b === 'reset' ? (resets.get(offset) ?? 0) : 0;
    },
    write32(offset, value) {
      if (blocked(offset, 'write') === 'pass') target.write32(offset, value);
    },
  };
}
