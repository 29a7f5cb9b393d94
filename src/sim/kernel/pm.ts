/**
 * Runtime PM (drivers/base/power/runtime.c) and the runtime-PM side of device links.
 *
 * Per device: usage count, disable depth, status, sticky error, runtime_auto (sysfs power/control),
 * autosuspend. Asynchronous requests (pm_runtime_put, pm_request_idle, ...) go to a work queue
 * that runs when the caller is done (`runWork`: the kernel drains it after every call, as an idle
 * CPU would run pm_wq) or when an autosuspend timer fires on the simulated clock.
 *
 * Callbacks are generators (they do MMIO), so a suspend or resume can be preempted anywhere, and
 * another thread can find a device SUSPENDING or RESUMING; it then waits, yielding, as the kernel
 * sleeps on the device's wait queue.
 *
 * CONFIG_PM=n (`setEnabled(false)`): the header stubs apply. Every device reads as active, no
 * callback ever runs, get_sync returns 1 and put -ENOSYS.
 */
import { runOp, type Op, type PreemptPoint } from '../core/coop';
import type { FindingSink } from '../core/findings';
import type { Trace } from '../core/trace';
import { EACCES, EAGAIN, EBUSY, EDEADLK, EINPROGRESS, EINVAL, ENODEV, ENOSYS, errname } from './errno';

export type RpmStatus = 'active' | 'resuming' | 'suspended' | 'suspending';

/** A driver's dev_pm_ops runtime callbacks: 0 or -errno. Missing ones succeed (≥ v5.19). */
export interface RuntimePmOps {
  runtimeSuspend?(): Op<number>;
  runtimeResume?(): Op<number>;
  runtimeIdle?(): Op<number>;
}

/** What PM needs of time: src/sim/core/clock.ts Clock satisfies it. */
export interface PmClock {
  now(): number;
  after(delay: number, id: string, fire: () => void): () => void;
}

export type LinkFlag = 'pm-runtime' | 'stateless' | 'rpm-active';

export interface DeviceLink {
  consumer: string;
  supplier: string;
  flags: LinkFlag[];
  /** 1 = no reference held on the supplier; each further count is one usage reference. */
  rpmActive: number;
}

export interface PmDeviceState {
  name: string;
  status: RpmStatus;
  usage: number;
  disableDepth: number;
  runtimeError: number;
  runtimeAuto: boolean;
  useAutosuspend: boolean;
  autosuspendDelayMs: number;
  lastBusy: number;
  linksCount: number;
}

type Request = 'none' | 'idle' | 'suspend' | 'autosuspend' | 'resume';

interface Dev extends PmDeviceState {
  ops: RuntimePmOps;
  request: Request;
  requestPending: boolean;
  deferredResume: boolean;
  idleNotification: boolean;
  timerExpires: number;
  timerAutosuspends: boolean;
  cancelTimer: (() => void) | null;
}

interface Link extends DeviceLink {
  c: Dev;
  s: Dev;
  pmRuntime: boolean;
}

const RPM_ASYNC = 1;
const RPM_NOWAIT = 2;
const RPM_GET_PUT = 4;
const RPM_AUTO = 8;
/** Yields a waiter makes before it is declared deadlocked (a callback waiting on itself). */
const WAIT_LIMIT = 100_000;

export interface PmOptions {
  clock: PmClock;
  trace?: Trace;
  findings?: FindingSink;
  /** Simulated cycles per millisecond, for autosuspend delays. */
  cyclesPerMs?: number;
  /** How work queued from a timer runs (default: at once, to completion). */
  runTimerWork?: (op: Op<void>) => void;
}

export interface PmSnapshot {
  enabled: boolean;
  devs: (PmDeviceState & { request: Request; requestPending: boolean; timerExpires: number; timerAutosuspends: boolean })[];
  links: DeviceLink[];
  queue: string[];
}

export class RuntimePm {
  private devs = new Map<string, Dev>();
  private links: Link[] = [];
  private queue: Dev[] = [];
  private enabled = true;
  private listeners: ((dev: string, status: RpmStatus) => void)[] = [];
  private readonly cyclesPerMs: number;
  private readonly yieldPoint: PreemptPoint = { kind: 'yield', who: 'pm' };

  constructor(private readonly opts: PmOptions) {
    this.cyclesPerMs = opts.cyclesPerMs ?? 1000;
  }

  /** device_initialize: runtime PM disabled (depth 1), status suspended. */
  addDevice(name: string, ops: RuntimePmOps = {}): void {
    if (this.devs.has(name)) return;
    this.devs.set(name, {
      name,
      ops,
      status: 'suspended',
      usage: 0,
      disableDepth: 1,
      runtimeError: 0,
      runtimeAuto: true,
      useAutosuspend: false,
      autosuspendDelayMs: 0,
      lastBusy: 0,
      linksCount: 0,
      request: 'none',
      requestPending: false,
      deferredResume: false,
      idleNotification: false,
      timerExpires: 0,
      timerAutosuspends: false,
      cancelTimer: null,
    });
  }

  /** The driver's runtime callbacks (set at probe). */
  setOps(name: string, ops: RuntimePmOps): void {
    this.dev(name).ops = ops;
  }

  has(name: string): boolean {
    return this.devs.has(name);
  }

  /** Called on every status change (power domains follow their members). */
  onStatus(l: (dev: string, status: RpmStatus) => void): () => void {
    this.listeners.push(l);
    return () => {
      this.listeners = this.listeners.filter((x) => x !== l);
    };
  }

  /** CONFIG_PM. Meant to be chosen before the devices are used. */
  setEnabled(on: boolean): void {
    this.enabled = on;
    this.trace('config', 'kernel', { CONFIG_PM: on });
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  status(name: string): RpmStatus {
    return this.enabled ? this.dev(name).status : 'active';
  }

  state(name: string): PmDeviceState {
    const d = this.dev(name);
    return {
      name: d.name,
      status: this.status(name),
      usage: d.usage,
      disableDepth: d.disableDepth,
      runtimeError: d.runtimeError,
      runtimeAuto: d.runtimeAuto,
      useAutosuspend: d.useAutosuspend,
      autosuspendDelayMs: d.autosuspendDelayMs,
      lastBusy: d.lastBusy,
      linksCount: d.linksCount,
    };
  }

  /** Whether the device's hardware may be used: runtime-active, or runtime PM compiled out. */
  isActive(name: string): boolean {
    return !this.enabled || this.dev(name).status === 'active';
  }

  /**
   * pm_runtime_suspended-like: the status of a device whose runtime PM is in force (CONFIG_PM=y,
   * enabled) and that is not active; null when its hardware may be used.
   */
  inactiveStatus(name: string): RpmStatus | null {
    const d = this.devs.get(name);
    if (!this.enabled || !d || d.disableDepth > 0 || d.status === 'active') return null;
    return d.status;
  }

  deviceLinks(): DeviceLink[] {
    return this.links.map((l) => ({ consumer: l.consumer, supplier: l.supplier, flags: l.flags.slice(), rpmActive: l.rpmActive }));
  }

  // --- the pm_runtime_* API -------------------------------------------------------------------

  /** pm_runtime_get_sync: usage +1 (kept on failure); 1 already active, 0 resumed, <0 error. */
  *getSync(name: string): Op<number> {
    if (!this.enabled) return 1;
    return yield* this.resumeCall(this.dev(name), RPM_GET_PUT);
  }

  /** pm_runtime_get: usage +1, asynchronous resume. */
  *get(name: string): Op<number> {
    if (!this.enabled) return 1;
    return yield* this.resumeCall(this.dev(name), RPM_GET_PUT | RPM_ASYNC);
  }

  /** pm_runtime_resume_and_get: 0 or <0, the usage reference dropped again on failure. */
  *resumeAndGet(name: string): Op<number> {
    const r = yield* this.getSync(name);
    if (r < 0) {
      this.putNoidle(name);
      return r;
    }
    return 0;
  }

  /** pm_runtime_resume: no usage change. */
  *resume(name: string): Op<number> {
    if (!this.enabled) return 1;
    return yield* this.rpmResume(this.dev(name), 0);
  }

  /** pm_runtime_put: usage −1; at zero an asynchronous idle (autosuspend honoured). */
  *put(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.idleCall(this.dev(name), RPM_GET_PUT | RPM_ASYNC);
  }

  /** pm_runtime_put_sync: usage −1; at zero a synchronous idle. */
  *putSync(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.idleCall(this.dev(name), RPM_GET_PUT);
  }

  /** pm_runtime_put_autosuspend: usage −1; at zero an asynchronous autosuspend request. */
  *putAutosuspend(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.suspendCall(this.dev(name), RPM_GET_PUT | RPM_ASYNC | RPM_AUTO);
  }

  /** pm_runtime_put_sync_suspend. */
  *putSyncSuspend(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.suspendCall(this.dev(name), RPM_GET_PUT);
  }

  /** pm_runtime_suspend: synchronous, no usage change. */
  *suspend(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.rpmSuspend(this.dev(name), 0);
  }

  /** pm_runtime_idle: synchronous idle check, no usage change. */
  *idle(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.rpmIdle(this.dev(name), 0);
  }

  /** pm_request_idle. */
  *requestIdle(name: string): Op<number> {
    if (!this.enabled) return -ENOSYS;
    return yield* this.rpmIdle(this.dev(name), RPM_ASYNC);
  }

  /** pm_runtime_get_noresume. */
  getNoresume(name: string): void {
    if (!this.enabled) return;
    this.dev(name).usage++;
  }

  /** pm_runtime_put_noidle: usage −1, never below zero, nothing else. */
  putNoidle(name: string): void {
    if (!this.enabled) return;
    const d = this.dev(name);
    if (d.usage > 0) d.usage--;
  }

  /** pm_runtime_get_if_in_use: +1 only if active and already in use; 1/0, -EINVAL if disabled. */
  getIfInUse(name: string): number {
    return this.getConditional(name, false);
  }

  /** pm_runtime_get_if_active: +1 if active, whatever the usage count. */
  getIfActive(name: string): number {
    return this.getConditional(name, true);
  }

  private getConditional(name: string, ignoreUsage: boolean): number {
    if (!this.enabled) return -EINVAL;
    const d = this.dev(name);
    if (d.disableDepth > 0) return -EINVAL;
    if (d.status !== 'active') return 0;
    if (!ignoreUsage && d.usage === 0) return 0;
    d.usage++;
    return 1;
  }

  /** pm_runtime_mark_last_busy. */
  markLastBusy(name: string): void {
    this.dev(name).lastBusy = this.opts.clock.now();
  }

  /** pm_runtime_enable. */
  enable(name: string): void {
    const d = this.dev(name);
    if (d.disableDepth > 0) d.disableDepth--;
    else this.warn(d, 'Unbalanced pm_runtime_enable!');
    this.trace('rpm_enable', name, { depth: d.disableDepth });
  }

  /** pm_runtime_disable: pending requests are cancelled (a pending resume is carried out first). */
  *disable(name: string): Op<void> {
    const d = this.dev(name);
    if (d.disableDepth === 0 && this.enabled && d.requestPending && d.request === 'resume') {
      d.usage++;
      yield* this.rpmResume(d, 0);
      if (d.usage > 0) d.usage--;
    }
    if (d.disableDepth++ === 0) this.cancelPending(d);
    this.trace('rpm_disable', name, { depth: d.disableDepth });
  }

  /** pm_runtime_set_active: only while disabled; takes references on PM-runtime suppliers. */
  *setActive(name: string): Op<number> {
    const d = this.dev(name);
    if (d.disableDepth === 0 && d.runtimeError === 0) return -EAGAIN;
    if (d.status !== 'active' && this.enabled && d.linksCount > 0) {
      const r = yield* this.getSuppliers(d);
      if (r < 0) {
        this.putSuppliers(d);
        return r;
      }
    }
    d.runtimeError = 0;
    this.setStatus(d, 'active');
    return 0;
  }

  /** pm_runtime_set_suspended: only while disabled; releases supplier references. */
  setSuspended(name: string): number {
    const d = this.dev(name);
    if (d.disableDepth === 0 && d.runtimeError === 0) return -EAGAIN;
    if (d.status === 'active' && d.linksCount > 0) this.putSuppliers(d);
    d.runtimeError = 0;
    this.setStatus(d, 'suspended');
    return 0;
  }

  /** pm_runtime_forbid (power/control = "on"): usage +1 and resume. */
  *forbid(name: string): Op<number> {
    const d = this.dev(name);
    if (!d.runtimeAuto) return 0;
    d.runtimeAuto = false;
    if (!this.enabled) return 0;
    d.usage++;
    const r = yield* this.rpmResume(d, 0);
    return r < 0 ? r : 0;
  }

  /** pm_runtime_allow (power/control = "auto"): usage −1 and an idle check. */
  *allow(name: string): Op<number> {
    const d = this.dev(name);
    if (d.runtimeAuto) return 0;
    d.runtimeAuto = true;
    if (!this.enabled) return 0;
    if (d.usage > 0 && --d.usage === 0) yield* this.rpmIdle(d, RPM_AUTO | RPM_ASYNC);
    return 0;
  }

  /** Writing power/control. */
  *setControl(name: string, value: 'on' | 'auto'): Op<number> {
    if (value === 'on') return yield* this.forbid(name);
    if (value === 'auto') return yield* this.allow(name);
    return -EINVAL;
  }

  control(name: string): 'on' | 'auto' {
    return this.dev(name).runtimeAuto ? 'auto' : 'on';
  }

  /** pm_runtime_use_autosuspend / pm_runtime_dont_use_autosuspend. */
  *useAutosuspend(name: string, use: boolean): Op<void> {
    const d = this.dev(name);
    const oldDelay = d.autosuspendDelayMs;
    const oldUse = d.useAutosuspend;
    d.useAutosuspend = use;
    yield* this.updateAutosuspend(d, oldDelay, oldUse);
  }

  /** pm_runtime_set_autosuspend_delay (power/autosuspend_delay_ms). Negative: never suspend. */
  *setAutosuspendDelay(name: string, ms: number): Op<void> {
    const d = this.dev(name);
    const oldDelay = d.autosuspendDelayMs;
    const oldUse = d.useAutosuspend;
    d.autosuspendDelayMs = ms;
    yield* this.updateAutosuspend(d, oldDelay, oldUse);
  }

  private *updateAutosuspend(d: Dev, oldDelay: number, oldUse: boolean): Op<void> {
    if (!this.enabled) return;
    if (d.useAutosuspend && d.autosuspendDelayMs < 0) {
      if (!oldUse || oldDelay >= 0) {
        d.usage++;
        yield* this.rpmResume(d, 0);
      }
    } else {
      if (oldUse && oldDelay < 0) d.usage--;
      yield* this.rpmIdle(d, RPM_AUTO);
    }
  }

  // --- device links ---------------------------------------------------------------------------

  /**
   * device_link_add(consumer, supplier, flags): the link, or null (bad arguments, a dependency
   * cycle, or an rpm-active supplier that cannot resume). Re-adding an existing link returns it,
   * upgraded to pm-runtime if asked, and with rpm-active takes one more supplier reference.
   */
  *linkAdd(consumer: string, supplier: string, flags: LinkFlag[]): Op<DeviceLink | null> {
    if (consumer === supplier || !this.devs.has(consumer) || !this.devs.has(supplier)) return null;
    const c = this.dev(consumer);
    const s = this.dev(supplier);
    const pmRuntime = flags.includes('pm-runtime');
    const rpmActive = pmRuntime && flags.includes('rpm-active');
    if (rpmActive && this.enabled) {
      const r = yield* this.getSync(supplier);
      if (r < 0) {
        this.putNoidle(supplier);
        return null;
      }
    }
    const existing = this.links.find((l) => l.c === c && l.s === s);
    if (existing) {
      if (pmRuntime && !existing.pmRuntime) {
        existing.pmRuntime = true;
        c.linksCount++;
      }
      for (const f of flags) if (!existing.flags.includes(f)) existing.flags.push(f);
      if (rpmActive && this.enabled) existing.rpmActive++;
      return this.linkView(existing);
    }
    if (this.dependsOn(s, c)) {
      if (rpmActive && this.enabled) yield* this.put(supplier);
      return null;
    }
    const l: Link = { consumer, supplier, flags: flags.slice(), rpmActive: rpmActive && this.enabled ? 2 : 1, c, s, pmRuntime };
    this.links.push(l);
    if (pmRuntime) c.linksCount++;
    this.trace('device_link_add', consumer, { supplier, flags: flags.join('|') });
    return this.linkView(l);
  }

  /** device_link_del: releases the references the link holds, then an idle request on the supplier. */
  *linkDel(consumer: string, supplier: string): Op<boolean> {
    const i = this.links.findIndex((l) => l.consumer === consumer && l.supplier === supplier);
    if (i < 0) return false;
    const l = this.links[i]!;
    this.links.splice(i, 1);
    if (l.pmRuntime) {
      l.c.linksCount--;
      this.releaseSupplier(l);
      if (this.enabled) yield* this.rpmIdle(l.s, RPM_ASYNC);
    }
    this.trace('device_link_del', consumer, { supplier });
    return true;
  }

  private linkView(l: Link): DeviceLink {
    return { consumer: l.consumer, supplier: l.supplier, flags: l.flags.slice(), rpmActive: l.rpmActive };
  }

  /** Whether a depends (through links) on b. */
  private dependsOn(a: Dev, b: Dev): boolean {
    const seen = new Set<Dev>();
    const stack = [a];
    while (stack.length > 0) {
      const x = stack.pop()!;
      if (x === b) return true;
      if (seen.has(x)) continue;
      seen.add(x);
      for (const l of this.links) if (l.c === x) stack.push(l.s);
    }
    return false;
  }

  /** rpm_get_suppliers: get_sync every PM-runtime supplier (-EACCES tolerated). */
  private *getSuppliers(d: Dev): Op<number> {
    for (const l of this.links) {
      if (l.c !== d || !l.pmRuntime) continue;
      const r = yield* this.getSync(l.supplier);
      if (r < 0 && r !== -EACCES) {
        this.putNoidle(l.supplier);
        return r;
      }
      l.rpmActive++;
    }
    return 0;
  }

  /** rpm_put_suppliers: drop every reference the links hold, without idling the suppliers. */
  private putSuppliers(d: Dev): void {
    for (const l of this.links) if (l.c === d && l.pmRuntime) this.releaseSupplier(l);
  }

  private releaseSupplier(l: Link): void {
    while (l.rpmActive > 1) {
      l.rpmActive--;
      if (l.s.usage > 0) l.s.usage--;
    }
  }

  // --- the rpm_* state machine ----------------------------------------------------------------

  private *resumeCall(d: Dev, flags: number): Op<number> {
    if (flags & RPM_GET_PUT) d.usage++;
    return yield* this.rpmResume(d, flags);
  }

  private *idleCall(d: Dev, flags: number): Op<number> {
    if (flags & RPM_GET_PUT) {
      const left = this.dropUsage(d);
      if (left !== 0) return left < 0 ? -EINVAL : 0;
    }
    return yield* this.rpmIdle(d, flags);
  }

  private *suspendCall(d: Dev, flags: number): Op<number> {
    if (flags & RPM_GET_PUT) {
      const left = this.dropUsage(d);
      if (left !== 0) return left < 0 ? -EINVAL : 0;
    }
    return yield* this.rpmSuspend(d, flags);
  }

  /** rpm_drop_usage_count: the count left, or -1 (and a warning) on underflow. */
  private dropUsage(d: Dev): number {
    if (d.usage === 0) {
      this.warn(d, 'Runtime PM usage count underflow!');
      return -1;
    }
    return --d.usage;
  }

  private suspendAllowed(d: Dev): number {
    if (d.runtimeError) return -EINVAL;
    if (d.disableDepth > 0) return -EACCES;
    if (d.usage > 0) return -EAGAIN;
    if ((d.deferredResume && d.status === 'suspending') || (d.requestPending && d.request === 'resume')) return -EAGAIN;
    if (d.status === 'suspended') return 1;
    return 0;
  }

  private *rpmIdle(d: Dev, flags: number): Op<number> {
    let r = this.suspendAllowed(d);
    if (r >= 0) {
      if (d.status !== 'active') r = -EAGAIN;
      else if (d.requestPending && d.request !== 'none' && d.request !== 'idle') r = -EAGAIN;
      else if (d.idleNotification) r = -EINPROGRESS;
    }
    if (r !== 0) return r;
    d.request = 'none';
    if (d.ops.runtimeIdle) {
      if (flags & RPM_ASYNC) {
        this.queueRequest(d, 'idle');
        return 0;
      }
      d.idleNotification = true;
      r = yield* d.ops.runtimeIdle();
      d.idleNotification = false;
      if (r !== 0) return r;
    }
    return yield* this.rpmSuspend(d, flags | RPM_AUTO);
  }

  private autosuspendExpiration(d: Dev): number {
    if (!d.useAutosuspend || d.autosuspendDelayMs < 0) return 0;
    const expires = d.lastBusy + d.autosuspendDelayMs * this.cyclesPerMs;
    return expires > this.opts.clock.now() ? expires : 0;
  }

  private *rpmSuspend(d: Dev, flags: number): Op<number> {
    for (;;) {
      let r = this.suspendAllowed(d);
      if (r < 0) return r;
      if (d.status === 'resuming' && !(flags & RPM_ASYNC)) r = -EAGAIN;
      if (r !== 0) return r;
      if (flags & RPM_AUTO && d.status !== 'suspending') {
        const expires = this.autosuspendExpiration(d);
        if (expires !== 0) {
          d.request = 'none';
          if (!(d.timerExpires && d.timerExpires <= expires)) this.armTimer(d, expires);
          d.timerAutosuspends = true;
          return 0;
        }
      }
      this.cancelPending(d);
      if (d.status === 'suspending') {
        if (flags & (RPM_ASYNC | RPM_NOWAIT)) return -EINPROGRESS;
        const w = yield* this.waitSettled(d);
        if (w < 0) return w;
        continue;
      }
      if (flags & RPM_ASYNC) {
        this.queueRequest(d, flags & RPM_AUTO ? 'autosuspend' : 'suspend');
        return 0;
      }
      this.setStatus(d, 'suspending');
      r = d.ops.runtimeSuspend ? yield* d.ops.runtimeSuspend() : 0;
      if (r !== 0) {
        this.setStatus(d, 'active');
        d.deferredResume = false;
        if (r === -EAGAIN || r === -EBUSY) {
          d.runtimeError = 0;
          if (flags & RPM_AUTO && this.autosuspendExpiration(d) !== 0) continue;
        } else {
          d.runtimeError = r;
          this.cancelPending(d);
          this.warn(d, `runtime_suspend failed: ${errname(r)}`);
        }
        return r;
      }
      if (d.linksCount > 0) this.putSuppliers(d);
      this.setStatus(d, 'suspended');
      this.deactivateTimer(d);
      if (d.deferredResume) {
        d.deferredResume = false;
        yield* this.rpmResume(d, 0);
        return -EAGAIN;
      }
      if (d.linksCount > 0) {
        for (const l of this.links) if (l.c === d && l.pmRuntime && l.rpmActive === 1) yield* this.rpmIdle(l.s, RPM_ASYNC);
      }
      return 0;
    }
  }

  private *rpmResume(d: Dev, flags: number): Op<number> {
    for (;;) {
      if (d.runtimeError) return -EINVAL;
      if (d.disableDepth > 0) return d.status === 'active' ? 1 : -EACCES;
      d.request = 'none';
      if (!d.timerAutosuspends) this.deactivateTimer(d);
      if (d.status === 'active') return 1;
      if (d.status === 'resuming' || d.status === 'suspending') {
        if (flags & (RPM_ASYNC | RPM_NOWAIT)) {
          if (d.status === 'suspending') {
            d.deferredResume = true;
            return flags & RPM_NOWAIT ? -EINPROGRESS : 0;
          }
          return -EINPROGRESS;
        }
        const w = yield* this.waitSettled(d);
        if (w < 0) return w;
        continue;
      }
      if (flags & RPM_ASYNC) {
        this.queueRequest(d, 'resume');
        return 0;
      }
      this.setStatus(d, 'resuming');
      let r = 0;
      if (d.linksCount > 0) r = yield* this.getSuppliers(d);
      if (r === 0 && d.ops.runtimeResume) r = yield* d.ops.runtimeResume();
      if (r !== 0) {
        if (d.linksCount > 0) this.putSuppliers(d);
        this.setStatus(d, 'suspended');
        if (r !== -EAGAIN && r !== -EBUSY) d.runtimeError = r;
        this.cancelPending(d);
        this.warn(d, `runtime resume failed: ${errname(r)}`);
        return r;
      }
      this.setStatus(d, 'active');
      d.lastBusy = this.opts.clock.now();
      yield* this.rpmIdle(d, RPM_ASYNC);
      return 0;
    }
  }

  /** Sleep on the wait queue until another thread's suspend or resume finishes. */
  private *waitSettled(d: Dev): Op<number> {
    for (let i = 0; d.status === 'suspending' || d.status === 'resuming'; i++) {
      if (i >= WAIT_LIMIT) {
        this.warn(d, `waiting forever for ${d.status} to finish (a callback waiting on itself?)`);
        return -EDEADLK;
      }
      yield { ...this.yieldPoint, wait: () => d.status === 'suspending' || d.status === 'resuming' };
    }
    return 0;
  }

  // --- requests, work queue and timers --------------------------------------------------------

  private queueRequest(d: Dev, req: Request): void {
    d.request = req;
    if (!d.requestPending) {
      d.requestPending = true;
      this.queue.push(d);
    }
  }

  private cancelPending(d: Dev): void {
    this.deactivateTimer(d);
    d.request = 'none';
  }

  private armTimer(d: Dev, expires: number): void {
    d.cancelTimer?.();
    d.timerExpires = expires;
    d.cancelTimer = this.opts.clock.after(expires - this.opts.clock.now(), `rpm-autosuspend:${d.name}`, () => {
      d.cancelTimer = null;
      const op = this.timerFired(d);
      (this.opts.runTimerWork ?? runOp)(op);
    });
  }

  private deactivateTimer(d: Dev): void {
    d.cancelTimer?.();
    d.cancelTimer = null;
    d.timerExpires = 0;
    d.timerAutosuspends = false;
  }

  /** pm_suspend_timer_fn, then the work it queued. */
  private *timerFired(d: Dev): Op<void> {
    const expires = d.timerExpires;
    if (expires > 0 && expires <= this.opts.clock.now()) {
      d.timerExpires = 0;
      if (this.enabled) yield* this.rpmSuspend(d, d.timerAutosuspends ? RPM_ASYNC | RPM_AUTO : RPM_ASYNC);
    }
    yield* this.runWork();
  }

  /** Whether pm_wq has work. */
  hasWork(): boolean {
    return this.queue.length > 0;
  }

  /** Run pm_wq until it is empty (pm_runtime_work for each queued device). */
  *runWork(): Op<void> {
    while (this.queue.length > 0) {
      const d = this.queue.shift()!;
      if (!d.requestPending) continue;
      const req = d.request;
      d.request = 'none';
      d.requestPending = false;
      if (!this.enabled) continue;
      if (req === 'idle') yield* this.rpmIdle(d, RPM_NOWAIT);
      else if (req === 'suspend') yield* this.rpmSuspend(d, RPM_NOWAIT);
      else if (req === 'autosuspend') yield* this.rpmSuspend(d, RPM_NOWAIT | RPM_AUTO);
      else if (req === 'resume') yield* this.rpmResume(d, RPM_NOWAIT);
    }
  }

  // --- helpers ----------------------------------------------------------------------------------

  private dev(name: string): Dev {
    const d = this.devs.get(name);
    if (!d) throw new PmError(name, -ENODEV);
    return d;
  }

  private setStatus(d: Dev, s: RpmStatus): void {
    if (d.status === s) return;
    const from = d.status;
    d.status = s;
    this.trace('rpm_status', d.name, { from, to: s, usage: d.usage });
    for (const l of this.listeners) l(d.name, s);
  }

  private trace(name: string, track: string, args: Record<string, string | number | boolean>): void {
    this.opts.trace?.emit({ time: this.opts.clock.now(), cat: 'pm', name, track, args });
  }

  private warn(d: Dev, message: string): void {
    this.opts.findings?.report({ kind: 'driver-warn', severity: 'warning', message: `${d.name}: ${message}`, where: { device: d.name } });
  }

  snapshot(): PmSnapshot {
    return {
      enabled: this.enabled,
      devs: [...this.devs.values()].map((d) => ({
        ...this.state(d.name),
        status: d.status,
        request: d.request,
        requestPending: d.requestPending,
        timerExpires: d.timerExpires,
        timerAutosuspends: d.timerAutosuspends,
      })),
      links: this.deviceLinks(),
      queue: this.queue.map((d) => d.name),
    };
  }

  /** Restores state; autosuspend timers are re-armed on the (restored) clock. */
  restore(s: PmSnapshot): void {
    this.enabled = s.enabled;
    for (const x of s.devs) {
      const d = this.devs.get(x.name);
      if (!d) continue;
      d.cancelTimer?.();
      Object.assign(d, x, { cancelTimer: null, deferredResume: false, idleNotification: false });
      if (x.timerExpires) this.armTimer(d, x.timerExpires);
    }
    this.links = s.links.map((l) => ({ ...l, flags: l.flags.slice(), c: this.dev(l.consumer), s: this.dev(l.supplier), pmRuntime: l.flags.includes('pm-runtime') }));
    this.queue = s.queue.map((n) => this.dev(n));
  }
}

/** A PM call on a device the PM core does not know. */
export class PmError extends Error {
  constructor(
    readonly device: string,
    readonly errno: number,
  ) {
    super(`runtime PM: no device '${device}'`);
    this.name = 'PmError';
  }
}
