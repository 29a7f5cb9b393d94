/**
 * One QuickJS runtime + context per script run: limits, a deadline enforced by the interrupt
 * handler, the harness, the host bindings as globals, and the calls the runner drives tests with.
 * The context starts with only the ECMAScript builtins: no require, process, module loader, timers,
 * file system or network exist inside.
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from 'quickjs-emscripten';
import { HARNESS_FILE, HARNESS_SOURCE } from './harness';
import { Bridge, owned, SandboxError, type ErrorInfo } from './marshal';
import { discardQuickJS, loadQuickJS } from './quickjs';

export interface SandboxOptions {
  memoryLimitBytes: number;
  maxStackBytes: number;
  onOutput(stream: 'log' | 'error', text: string): void;
  /**
   * Whether the pump may give the host's event loop a turn now and then. A script that keeps
   * awaiting host calls otherwise runs entirely in microtasks, and the worker answers nothing
   * (views, heartbeats) until it ends. The explorer needs pure microtask progress, so it says no.
   */
  mayYield?(): boolean;
}

/** How long the sandbox may run host-call continuations before the event loop gets a turn. */
const YIELD_EVERY_MS = 20;

/** What the harness knows about a declared test. */
export interface TestInfo {
  name: string;
  fullName: string;
  timeoutMs?: number;
  seed?: number;
  /** Stack where test() was called: the fallback location of its failures. */
  site: string;
}

export class Sandbox {
  private deadline = Infinity;
  private pumpQueued = false;
  private lastYield = Date.now();
  private mayYield: () => boolean = () => false;
  private onInterrupt: (() => void) | undefined;
  private readonly bridge: Bridge;
  /** The harness's control object (count, info, run, and the marshalling helpers). */
  private control!: QuickJSHandle;

  private constructor(
    private readonly rt: QuickJSRuntime,
    private readonly vm: QuickJSContext,
  ) {
    this.bridge = new Bridge(vm, () => this.schedulePump());
    rt.setInterruptHandler(() => {
      if (Date.now() <= this.deadline) return false;
      // One interrupt is enough: QuickJS makes it uncatchable, so it unwinds to the host.
      this.deadline = Infinity;
      // The unwinding that follows must reach the runner within microtasks, before its timer.
      this.lastYield = Date.now();
      this.onInterrupt?.();
      return true;
    });
  }

  static async create(opts: SandboxOptions): Promise<Sandbox> {
    const rt = (await loadQuickJS()).newRuntime();
    rt.setMemoryLimit(opts.memoryLimitBytes);
    rt.setMaxStackSize(opts.maxStackBytes);
    const sb = new Sandbox(rt, rt.newContext());
    if (opts.mayYield) sb.mayYield = opts.mayYield;
    try {
      sb.installHarness(opts.onOutput);
    } catch (e) {
      sb.dispose();
      throw e;
    }
    return sb;
  }

  private installHarness(onOutput: SandboxOptions['onOutput']): void {
    const vm = this.vm;
    const factory = vm.unwrapResult(vm.evalCode(HARNESS_SOURCE, HARNESS_FILE, { type: 'global', strict: true }));
    const out = this.bridge.hostFunction('out', (stream, text) => onOutput(stream === 'error' ? 'error' : 'log', String(text)));
    // The harness's only clock: it waits a moment for promises a test left un-awaited.
    const later = this.bridge.hostFunction('later', (ms) => new Promise<void>((r) => setTimeout(r, Math.min(1000, Number(ms) || 0))));
    const settled = this.bridge.settledFunction();
    this.control = factory.consume((f) => out.consume((o) => later.consume((l) => settled.consume((s) => vm.unwrapResult(vm.callFunction(f, vm.undefined, o, l, s))))));
    const get = (name: string): QuickJSHandle => vm.getProp(this.control, name);
    this.bridge.setHelpers({ kind: get('kind'), bytesOf: get('bytesOf'), u8: get('u8'), errorInfo: get('errorInfo'), seal: get('seal'), live: get('live'), makeError: get('makeError'), watch: get('watch') });
  }

  /** Define a global from a host value tree (copied, read-only; functions become host calls). */
  defineGlobal(name: string, value: unknown): void {
    this.bridge.toVmSealed(value, name, `the global ${name}`).consume((h) => this.vm.setProp(this.vm.global, name, h));
  }

  /**
   * Stop synchronous script code once the wall clock passes `at` (ms since the epoch); onInterrupt
   * is told when that happens. Infinity disarms.
   */
  setDeadline(at: number, onInterrupt?: () => void): void {
    this.deadline = at;
    this.onInterrupt = onInterrupt;
  }

  /** Evaluate the user's module; resolves when it (and any top-level await) finished. */
  async evalModule(js: string, fileName: string): Promise<ErrorInfo | null> {
    const r = this.vm.evalCode(js, fileName, { type: 'module', strict: true });
    if (r.error) return r.error.consume((e) => this.bridge.errorFromVm(e).info);
    const settled = r.value.consume((p) => this.bridge.settle(p));
    const error = await settled.then(
      () => null,
      (e: unknown) => errorInfoOf(e),
    );
    return error ?? this.callHarness('loaded');
  }

  /** Call an async function of the harness's control object: its error info, or null. */
  private async callHarness(name: string, ...args: number[]): Promise<ErrorInfo | null> {
    const fn = this.vm.getProp(this.control, name);
    const argHandles = args.map((a) => this.vm.newNumber(a));
    const r = this.vm.callFunction(fn, this.vm.undefined, argHandles);
    fn.dispose();
    for (const a of argHandles) a.dispose();
    if (r.error) return r.error.consume((e) => this.bridge.errorFromVm(e).info);
    const settled = r.value.consume((p) => this.bridge.settle(p));
    return settled.then(
      (v) => v as ErrorInfo | null,
      (e: unknown) => errorInfoOf(e),
    );
  }

  testCount(): number {
    return this.callControl('count', []) as number;
  }

  /**
   * The sandbox's stack at the host call in progress (undefined outside one): evaluated only when
   * a finding asks where it comes from, so ordinary calls pay nothing.
   */
  currentStack(): string | undefined {
    if (this.bridge.hostCallDepth === 0) return undefined;
    const r = this.vm.evalCode('new Error().stack', 'soc-console:site');
    if (r.error) {
      r.error.dispose();
      return undefined;
    }
    return r.value.consume((v) => this.vm.getString(v));
  }

  testInfo(i: number): TestInfo {
    return this.callControl('info', [i]) as TestInfo;
  }

  /** Run test i; resolves with its error, or null when it passed. */
  runTest(i: number): Promise<ErrorInfo | null> {
    return this.callHarness('run', i);
  }

  private callControl(name: string, args: unknown[]): unknown {
    const fn = this.vm.getProp(this.control, name);
    const argHandles = args.map((a) => this.bridge.toVm(a));
    try {
      const r = this.vm.callFunction(fn, this.vm.undefined, argHandles);
      if (r.error) throw r.error.consume((e) => this.bridge.errorFromVm(e));
      return owned(r.value, (v) => this.bridge.fromVm(v));
    } finally {
      fn.dispose();
      for (const a of argHandles) a.dispose();
    }
  }

  /** Pending jobs run from a fresh host task, never nested inside a running sandbox call. */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    const now = Date.now();
    const yieldNow = now - this.lastYield > YIELD_EVERY_MS && this.mayYield();
    if (yieldNow) this.lastYield = now;
    (yieldNow ? setImmediate : queueMicrotask)(() => {
      this.pumpQueued = false;
      if (!this.bridge.alive) return;
      const r = this.rt.executePendingJobs();
      // A job's own exceptions land in its promise; what reaches here is an interrupt or OOM,
      // which the runner sees through the deadline callback or the test's promise.
      if (r.error) r.error.dispose();
    });
  }

  /**
   * Free the runtime. QuickJS aborts its whole WebAssembly instance when a handle leaked; then the
   * cached module is dropped so the next run starts on a fresh one. Returns false in that case.
   */
  dispose(): boolean {
    this.bridge.dispose();
    this.control?.dispose();
    try {
      this.vm.dispose();
      this.rt.dispose();
      return true;
    } catch {
      discardQuickJS();
      return false;
    }
  }
}

function errorInfoOf(e: unknown): ErrorInfo {
  if (e instanceof SandboxError) return e.info;
  return { message: e instanceof Error ? e.message : String(e), stack: '' };
}
