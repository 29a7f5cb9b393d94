import type { Op, PreemptPoint } from '../core/coop';
import { runOp } from '../core/coop';
import type { DeviceConfig, TrafficConfig } from '../config/types';
import { num } from '../config/types';
import type { PowerMember } from './power';
import type { AccessKind, Fault, FaultReason, HwContext, IommuModel, MasterPort } from './types';

/** script-api.md DmaResult. */
export interface DmaResult {
  ok: boolean;
  data?: Uint8Array;
  fault?: Fault;
}

const PAGE = 4096;
const MAX_BEAT = 4096;
/** Simulated cycles one beat takes. */
const BEAT_CYCLES = 1;
/** A master stalled by its IOMMU retries this often, and gives up (a `master-stalled` finding) after the timeout. */
const STALL_POLL_CYCLES = 1000;
export const STALL_TIMEOUT_CYCLES = 100_000;

interface TrafficState {
  nextAt: number;
  runs: number;
  faults: number;
}

export interface DmaMasterSnapshot {
  powered: boolean;
  traffic: TrafficState | null;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * A bus master with a DMA engine. Transfers are split into beats (at most beatBytes, never crossing a
 * 4 KiB page on either side); each beat is translated by the master's IOMMU (or goes straight to RAM)
 * and is a preemption point, so a scheduler can interleave beats with CPU threads. A transfer yields
 * one point object for all its beats (coop.ts), so beats allocate nothing. A fault stops the
 * transfer. Non-coherent masters read and write RAM directly; coherent ones snoop the CPU cache.
 * A beat the IOMMU stalls waits, time advancing (an IRQ handler or another thread may release it),
 * up to STALL_TIMEOUT_CYCLES; then the transfer stops and the master is named as stuck. Read and
 * write transfers yield while they wait; a copy waits in place; background traffic never waits.
 */
export class DmaMaster implements PowerMember {
  readonly name: string;
  readonly port: MasterPort;
  readonly beatBytes: number;
  readonly coherent: boolean;
  private powered = true;
  private traffic: TrafficState | null = null;
  private cancelTraffic: (() => void) | null = null;
  private readonly scratch: Uint8Array;

  constructor(
    readonly cfg: DeviceConfig,
    private readonly ctx: HwContext,
    readonly iommu: IommuModel | null,
  ) {
    this.name = cfg.name;
    this.port = { name: cfg.name, id: cfg.masterId ?? 0 };
    this.beatBytes = cfg.beatBytes ?? 64;
    if (!Number.isInteger(this.beatBytes) || this.beatBytes < 1 || this.beatBytes > MAX_BEAT) {
      throw new Error(`${cfg.name}: beatBytes ${this.beatBytes} must be 1..${MAX_BEAT}`);
    }
    this.coherent = cfg.coherent ?? false;
    this.scratch = new Uint8Array(this.beatBytes);
  }

  setPowered(on: boolean): void {
    this.powered = on;
  }

  isPowered(): boolean {
    return this.powered;
  }

  /** Beat length at iova (and a second address for copies): beat size, page ends, what is left. */
  beat(a: number, b: number, left: number): number {
    return Math.min(this.beatBytes, left, PAGE - (a % PAGE), PAGE - (b % PAGE));
  }

  private fail(iova: number, access: AccessKind, reason: FaultReason, pa = iova): Fault {
    const f: Fault = { iova, master: this.name, access, reason, time: this.ctx.clock.now() };
    if (reason === 'powered-off') this.ctx.observer?.masterOff(this.port, iova, access);
    this.ctx.trace.emit({ time: f.time, cat: 'fault', name: reason, track: this.name, args: { iova: hex(iova), master: this.name, access, reason } });
    if (reason === 'bus-error') {
      this.ctx.findings.report({ kind: 'bus-error', severity: 'error', message: `${this.name}: DMA ${access} at IOVA ${hex(iova)} reaches ${hex(pa)}, which is not RAM`, where: { device: this.name, iova: hex(iova), pa: hex(pa) } });
    }
    return f;
  }

  /** A stalled master that waited STALL_TIMEOUT_CYCLES: the finding, and the fault that stops the transfer. */
  private stuck(iova: number, access: AccessKind, since: number, why: string): Fault {
    this.ctx.findings.report({
      kind: 'master-stalled',
      severity: 'error',
      message: `${this.name} is stuck: its ${access} at IOVA ${hex(iova)} has waited since t=${since}, because ${why}`,
      where: { device: this.name, iommu: this.iommu?.name ?? '', iova: hex(iova), access },
    });
    return this.fail(iova, access, 'stalled');
  }

  /** Wait while the IOMMU stalls this master, yielding point between polls: null to go on, or the fault. */
  private *awaitStall(iova: number, access: AccessKind, point: PreemptPoint): Op<Fault | null> {
    let why = this.iommu?.stallOf?.(this.port, access);
    if (!why) return null;
    const since = this.ctx.clock.now();
    while (this.ctx.clock.now() - since < STALL_TIMEOUT_CYCLES) {
      yield point;
      this.ctx.clock.advance(STALL_POLL_CYCLES);
      this.ctx.idle?.();
      why = this.iommu?.stallOf?.(this.port, access);
      if (!why) return null;
    }
    return this.stuck(iova, access, since, why);
  }

  /** The same wait without yielding (a copy beat). */
  private awaitStallNow(iova: number, access: AccessKind): Fault | null {
    let why = this.iommu?.stallOf?.(this.port, access);
    if (!why) return null;
    const since = this.ctx.clock.now();
    while (this.ctx.clock.now() - since < STALL_TIMEOUT_CYCLES) {
      this.ctx.clock.advance(STALL_POLL_CYCLES);
      this.ctx.idle?.();
      why = this.iommu?.stallOf?.(this.port, access);
      if (!why) return null;
    }
    return this.stuck(iova, access, since, why);
  }

  /** Physical address for one beat, or the fault that stops the transfer. */
  private xlate(iova: number, n: number, access: AccessKind): number | Fault {
    let pa = iova;
    if (this.iommu) {
      const t = this.iommu.translate(this.port, iova, access);
      this.ctx.observer?.beat(this.port, this.iommu, iova, access, t);
      if (!t.ok) return t.fault;
      pa = t.pa;
    }
    if (!this.ctx.bus.ram.contains(pa, n)) return this.fail(iova, access, 'bus-error', pa);
    return pa;
  }

  private span(name: string, start: number, args: Record<string, string | number | boolean>): void {
    this.ctx.trace.emit({ time: start, cat: 'dma', name, track: this.name, args, dur: this.ctx.clock.now() - start });
  }

  /** Read len bytes at iova. keep = false reads into a scratch buffer (scanout traffic, which never waits on a stall). */
  *readOp(iova: number, length: number, keep = true): Op<DmaResult> {
    if (!this.powered) return { ok: false, fault: this.fail(iova, 'read', 'powered-off') };
    const start = this.ctx.clock.now();
    const out = keep ? new Uint8Array(length) : this.scratch;
    const ram = this.ctx.bus.ram;
    const cache = this.ctx.bus.cache;
    const point: PreemptPoint = { kind: 'dma-beat', pa: 0, who: this.name, access: 'read' };
    for (let done = 0; done < length; ) {
      const va = iova + done;
      const n = this.beat(va, va, length - done);
      point.pa = va;
      yield point;
      // The wait's generator only when the IOMMU stalls: beats allocate nothing otherwise.
      const stalled = keep && this.iommu?.stallOf?.(this.port, 'read') ? yield* this.awaitStall(va, 'read', point) : null;
      if (stalled) {
        this.span('read', start, { iova: hex(iova), len: length, ok: false });
        return { ok: false, fault: stalled };
      }
      const pa = this.xlate(va, n, 'read');
      if (typeof pa !== 'number') {
        this.span('read', start, { iova: hex(iova), len: length, ok: false });
        return { ok: false, fault: pa };
      }
      const off = keep ? done : 0;
      if (this.coherent) cache.snoopReadInto(pa, out, off, n);
      else ram.readInto(pa, out, off, n);
      this.ctx.clock.tick(BEAT_CYCLES);
      done += n;
    }
    this.span('read', start, { iova: hex(iova), len: length, ok: true });
    return keep ? { ok: true, data: out } : { ok: true };
  }

  *writeOp(iova: number, bytes: Uint8Array, wait = true): Op<DmaResult> {
    if (!this.powered) return { ok: false, fault: this.fail(iova, 'write', 'powered-off') };
    const start = this.ctx.clock.now();
    const ram = this.ctx.bus.ram;
    const cache = this.ctx.bus.cache;
    const point: PreemptPoint = { kind: 'dma-beat', pa: 0, who: this.name, access: 'write' };
    for (let done = 0; done < bytes.length; ) {
      const va = iova + done;
      const n = this.beat(va, va, bytes.length - done);
      point.pa = va;
      yield point;
      const stalled = wait && this.iommu?.stallOf?.(this.port, 'write') ? yield* this.awaitStall(va, 'write', point) : null;
      if (stalled) {
        this.span('write', start, { iova: hex(iova), len: bytes.length, ok: false });
        return { ok: false, fault: stalled };
      }
      const pa = this.xlate(va, n, 'write');
      if (typeof pa !== 'number') {
        this.span('write', start, { iova: hex(iova), len: bytes.length, ok: false });
        return { ok: false, fault: pa };
      }
      if (this.coherent) cache.snoopWrite(pa, bytes.subarray(done, done + n));
      else ram.writeFrom(pa, bytes, done, n);
      this.ctx.clock.tick(BEAT_CYCLES);
      done += n;
    }
    this.span('write', start, { iova: hex(iova), len: bytes.length, ok: true });
    return { ok: true };
  }

  /** Memory-to-memory copy: each beat reads at src and writes at dst, both translated (CopyOp). */
  copyOp(srcIova: number, dstIova: number, length: number): Op<DmaResult> {
    return new CopyOp(this, srcIova, dstIova, length);
  }

  /** CopyOp's start: the fault when powered off, else the cycle the copy starts at. */
  copyStart(srcIova: number): Fault | number {
    return this.powered ? this.ctx.clock.now() : this.fail(srcIova, 'read', 'powered-off');
  }

  /** One beat of CopyOp: translate both sides and copy n bytes. Returns the fault that stops the copy. */
  copyBeat(src: number, dst: number, n: number): Fault | undefined {
    const stalled = this.awaitStallNow(src, 'read') ?? this.awaitStallNow(dst, 'write');
    if (stalled) return stalled;
    const spa = this.xlate(src, n, 'read');
    if (typeof spa !== 'number') return spa;
    const dpa = this.xlate(dst, n, 'write');
    if (typeof dpa !== 'number') return dpa;
    if (this.coherent) {
      const buf = this.scratch.subarray(0, n);
      this.ctx.bus.cache.snoopReadInto(spa, buf, 0, n);
      this.ctx.bus.cache.snoopWrite(dpa, buf);
    } else this.ctx.bus.ram.queueCopy(dpa, spa, n);
    this.ctx.clock.tick(BEAT_CYCLES);
    return undefined;
  }

  /** CopyOp's end: apply the queued copy and trace the transfer. */
  copyEnd(srcIova: number, dstIova: number, length: number, start: number, fault: Fault | undefined): DmaResult {
    this.ctx.bus.ram.settle();
    this.span('copy', start, { src: hex(srcIova), dst: hex(dstIova), len: length, ok: fault === undefined });
    return fault === undefined ? { ok: true } : { ok: false, fault };
  }

  read(iova: number, length: number): DmaResult {
    return runOp(this.readOp(iova, length));
  }

  write(iova: number, bytes: Uint8Array): DmaResult {
    return runOp(this.writeOp(iova, bytes));
  }

  copy(srcIova: number, dstIova: number, length: number): DmaResult {
    return runOp(this.copyOp(srcIova, dstIova, length));
  }

  /** Start the configured background traffic (scanout, bursts) on the clock. */
  startTraffic(): void {
    const t = this.cfg.traffic;
    if (!t || t.kind === 'none') return;
    this.traffic = { nextAt: this.ctx.clock.now() + t.periodCycles, runs: 0, faults: 0 };
    this.arm(t);
  }

  private arm(t: Exclude<TrafficConfig, { kind: 'none' }>): void {
    const st = this.traffic!;
    this.cancelTraffic = this.ctx.clock.after(st.nextAt - this.ctx.clock.now(), `${this.name}.traffic`, () => {
      const iova = num(t.iova);
      const bytes = num(t.bytes);
      if (this.powered) {
        const r =
          t.kind === 'burst' && t.access === 'write'
            ? runOp(this.writeOp(iova, new Uint8Array(bytes).fill(st.runs & 0xff), false))
            : runOp(this.readOp(iova, bytes, false));
        st.runs++;
        if (!r.ok) st.faults++;
      }
      st.nextAt += t.periodCycles;
      this.arm(t);
    });
  }

  /** Background traffic so far: transfers run and how many faulted. */
  trafficStats(): { runs: number; faults: number } | null {
    return this.traffic ? { runs: this.traffic.runs, faults: this.traffic.faults } : null;
  }

  snapshot(): DmaMasterSnapshot {
    return { powered: this.powered, traffic: this.traffic ? { ...this.traffic } : null };
  }

  restore(s: DmaMasterSnapshot): void {
    this.powered = s.powered;
    this.cancelTraffic?.();
    this.cancelTraffic = null;
    this.traffic = s.traffic ? { ...s.traffic } : null;
    const t = this.cfg.traffic;
    if (this.traffic && t && t.kind !== 'none') this.arm(t);
  }
}

/**
 * DmaMaster.copyOp as a hand-written iterator, with the points and behaviour a generator written like
 * readOp would have: each next() finishes the beat whose point was returned last (translate both
 * sides, copy) and returns the next beat's point, or the result. A generator resume per beat cost
 * about 5% of a streaming copy; this costs a call.
 */
class CopyOp implements Op<DmaResult> {
  /** Bytes copied so far; len of the beat whose point was returned last (0: none yet). */
  private done = 0;
  private len = 0;
  /** Cycle the copy started at, or -1 before the first next(). */
  private start = -1;
  private result: IteratorReturnResult<DmaResult> | undefined;
  private readonly point: PreemptPoint;
  /** Returned for every beat, like point (coop.ts): a beat allocates nothing. */
  private readonly beatResult: IteratorYieldResult<PreemptPoint>;

  constructor(
    private readonly m: DmaMaster,
    private readonly src: number,
    private readonly dst: number,
    private readonly length: number,
  ) {
    this.point = { kind: 'dma-beat', pa: 0, who: m.name, access: 'write' };
    this.beatResult = { done: false, value: this.point };
  }

  next(): IteratorResult<PreemptPoint, DmaResult> {
    if (this.result) return { done: true, value: undefined as unknown as DmaResult };
    if (this.start < 0) {
      const start = this.m.copyStart(this.src);
      if (typeof start !== 'number') return this.finish({ ok: false, fault: start });
      this.start = start;
    } else {
      const fault = this.m.copyBeat(this.src + this.done, this.dst + this.done, this.len);
      if (fault) return this.finish(this.m.copyEnd(this.src, this.dst, this.length, this.start, fault));
      this.done += this.len;
    }
    if (this.done >= this.length) return this.finish(this.m.copyEnd(this.src, this.dst, this.length, this.start, undefined));
    const s = this.src + this.done;
    this.len = this.m.beat(s, this.dst + this.done, this.length - this.done);
    this.point.pa = s;
    return this.beatResult;
  }

  private finish(value: DmaResult): IteratorReturnResult<DmaResult> {
    this.result = { done: true, value };
    return this.result;
  }

  /** As a generator's return(): the copy stops where it stands. */
  return(value: DmaResult): IteratorResult<PreemptPoint, DmaResult> {
    return this.finish(value);
  }

  throw(e: unknown): IteratorResult<PreemptPoint, DmaResult> {
    this.result = { done: true, value: undefined as unknown as DmaResult };
    throw e;
  }

  [Symbol.iterator](): Op<DmaResult> {
    return this;
  }
}
