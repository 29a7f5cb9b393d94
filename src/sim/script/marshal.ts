/**
 * Copies values between the host realm and the QuickJS sandbox. This is the security boundary's
 * only door: nothing crosses by reference. Numbers, strings, booleans, null, undefined, bigint,
 * arrays, plain objects and Uint8Array are copied; host functions become sandbox functions that
 * copy their arguments in and their results out (Promises become sandbox promises); sandbox
 * functions handed to the host (explore threads) become host functions that call back in.
 */
import type { QuickJSContext, QuickJSDeferredPromise, QuickJSHandle } from 'quickjs-emscripten';
import { liveSourceOf, type LiveSource } from '../core/live-record';

const MAX_DEPTH = 64;
/**
 * Values one crossing to the host may carry (array items and object keys, nested ones included).
 * Checked before anything is copied: a sparse array of length 2^32-1 or a Proxy claiming 1e8 items
 * costs the sandbox nothing, and would cost the host gigabytes.
 */
export const MAX_VALUES_PER_CROSSING = 1 << 20;

/** Sandbox-side helpers the harness provides (see harness.ts). */
export interface VmHelpers {
  /**
   * (value, left) for a value of typeof 'object': 'null' | 'array' | 'u8' | 'promise', or another
   * object's own enumerable keys as a JSON array, or their count (a number) when more than left.
   */
  kind: QuickJSHandle;
  /** Uint8Array → a fresh ArrayBuffer holding its bytes. */
  bytesOf: QuickJSHandle;
  /** ArrayBuffer → Uint8Array over it. */
  u8: QuickJSHandle;
  /** Any thrown value → { message, stack }. */
  errorInfo: QuickJSHandle;
  /** (value, what) → value made read-only, deeply (assignments throw a TypeError naming what). */
  seal: QuickJSHandle;
  /** (read, write, name) → a live record over two host functions. */
  live: QuickJSHandle;
  /** (name, message) → a new error of the builtin class of that name (TypeError, RangeError, ...). */
  makeError: QuickJSHandle;
  /** (promise, id): calls the bridge's settled function with id once the promise settles. */
  watch: QuickJSHandle;
}

export interface ErrorInfo {
  message: string;
  /** QuickJS stack text: lines of "    at fn (file:line:col)". */
  stack: string;
}

/** An exception thrown inside the sandbox, as the host sees it. */
export class SandboxError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
    this.name = 'SandboxError';
  }
}

export class Bridge {
  /** Non-zero while a host function called from the sandbox is running (its caller is on the stack). */
  hostCallDepth = 0;

  private helpers: VmHelpers | undefined;
  /** Handles the host keeps past a call: sandbox callbacks, pending promises. */
  private readonly kept = new Set<{ alive: boolean; dispose(): void }>();
  private disposed = false;
  /** Promises settle() waits for, by the id watch() reports them with. */
  private readonly watched = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private nextWatch = 0;

  constructor(
    private readonly vm: QuickJSContext,
    /** Schedule a run of the sandbox's pending jobs (after a promise settled or a callback ran). */
    private readonly pump: () => void,
  ) {}

  setHelpers(h: VmHelpers): void {
    this.helpers = h;
  }

  get alive(): boolean {
    return !this.disposed;
  }

  private get h(): VmHelpers {
    if (!this.helpers) throw new Error('sandbox helpers are not installed');
    return this.helpers;
  }

  // ---- host → sandbox -------------------------------------------------------------------

  /**
   * A new sandbox value equal to v. The caller owns the handle. path names v in the script API
   * ('kernel.driver'): host functions carry it into their errors and their results' names.
   */
  toVm(v: unknown, depth = 0, path = ''): QuickJSHandle {
    const vm = this.vm;
    if (depth > MAX_DEPTH) throw new TypeError('value is nested too deeply to pass into the script');
    switch (typeof v) {
      case 'undefined':
        return vm.undefined;
      case 'boolean':
        return v ? vm.true : vm.false;
      case 'number':
        return vm.newNumber(v);
      case 'string':
        return vm.newString(v);
      case 'bigint':
        return vm.newBigInt(v);
      case 'function':
        return this.hostFunction(path || v.name, v as (...a: unknown[]) => unknown, v as unknown as Record<string, unknown>, depth);
      case 'symbol':
        throw new TypeError('a symbol cannot be passed into the script');
    }
    if (v === null) return vm.null;
    if (v instanceof Uint8Array) {
      const buf = vm.newArrayBuffer(v.slice().buffer);
      try {
        return vm.unwrapResult(vm.callFunction(this.h.u8, vm.undefined, buf));
      } finally {
        buf.dispose();
      }
    }
    const live = liveSourceOf(v as object);
    if (live) return this.liveToVm(live.name, live.source);
    if (Array.isArray(v)) {
      const arr = vm.newArray();
      v.forEach((item, i) => this.toVm(item, depth + 1, `${path}[${i}]`).consume((h) => vm.setProp(arr, i, h)));
      return arr;
    }
    if (ArrayBuffer.isView(v) || v instanceof Map || v instanceof Set || v instanceof Promise) {
      throw new TypeError(`a ${(v as object).constructor.name} cannot be passed into the script`);
    }
    // Any other object travels as a copy of its own enumerable data.
    const obj = vm.newObject();
    this.copyProps(obj, v as Record<string, unknown>, depth, path);
    return obj;
  }

  /**
   * The sandbox copy of a value the script API hands out (a global, a call's result): read-only,
   * deeply, so an assignment throws naming `what` instead of changing nothing.
   */
  toVmSealed(v: unknown, path: string, what: string): QuickJSHandle {
    const h = this.toVm(v, 0, path);
    if (!isObjectLike(v) || v instanceof Uint8Array || liveSourceOf(v)) return h;
    const label = this.vm.newString(what);
    try {
      return this.vm.unwrapResult(this.vm.callFunction(this.h.seal, this.vm.undefined, h, label));
    } finally {
      label.dispose();
      h.dispose();
    }
  }

  private liveToVm(name: string, source: LiveSource): QuickJSHandle {
    const vm = this.vm;
    const read = this.hostFunction(`${name} read`, () => source.read());
    const write = this.hostFunction(`${name} write`, (k, v) => source.write(String(k), v));
    const label = vm.newString(name);
    try {
      return vm.unwrapResult(vm.callFunction(this.h.live, vm.undefined, read, write, label));
    } finally {
      read.dispose();
      write.dispose();
      label.dispose();
    }
  }

  private copyProps(target: QuickJSHandle, from: Record<string, unknown>, depth: number, path = ''): void {
    for (const [k, x] of Object.entries(from)) this.toVm(x, depth + 1, path ? `${path}.${k}` : k).consume((h) => this.setOwn(target, k, h));
  }

  /** An own data property, also for the key '__proto__' (which an assignment would take as the prototype). */
  private setOwn(target: QuickJSHandle, key: string, h: QuickJSHandle): void {
    if (key === '__proto__') this.vm.defineProp(target, key, { value: h, enumerable: true, configurable: true });
    else this.vm.setProp(target, key, h);
  }

  /**
   * A sandbox function calling the host function fn (with no `this`: bind methods beforehand). Own
   * enumerable properties of fn are copied too, so a function with members (explore and
   * explore.replay) stays one tree. Results come back read-only, named after path.
   */
  hostFunction(path: string, fn: (...args: unknown[]) => unknown, members?: Record<string, unknown>, depth = 0): QuickJSHandle {
    const vm = this.vm;
    const name = path.slice(path.lastIndexOf('.') + 1);
    const what = `the value ${path}() returned`;
    const handle = vm.newFunction(name, (...argHandles) => {
      let result: unknown;
      this.hostCallDepth++;
      try {
        const budget = { left: MAX_VALUES_PER_CROSSING };
        result = fn(...argHandles.map((a) => this.fromVm(a, 0, budget)));
        if (!isPromiseLike(result)) return this.toVmSealed(result, `${path}()`, what);
      } catch (e) {
        return { error: this.errorToVm(e) };
      } finally {
        this.hostCallDepth--;
      }
      return this.promiseToVm(result, `${path}()`, what);
    });
    if (members) this.copyProps(handle, members, depth, path);
    return handle;
  }

  /** A sandbox promise settled by a host one. Its own stack is left unset: QuickJS then records
   *  the awaiting frame, which is the user's call site. */
  private promiseToVm(p: PromiseLike<unknown>, path: string, what: string): QuickJSHandle {
    const deferred: QuickJSDeferredPromise = this.vm.newPromise();
    this.kept.add(deferred);
    const settle = (ok: boolean, value: unknown): void => {
      this.kept.delete(deferred);
      if (this.disposed || !deferred.alive) return;
      let h: QuickJSHandle;
      try {
        h = ok ? this.toVmSealed(value, path, what) : this.errorToVm(value);
      } catch (e) {
        ok = false;
        h = this.errorToVm(e);
      }
      if (ok) deferred.resolve(h);
      else deferred.reject(h);
      h.dispose();
      deferred.dispose();
      this.pump();
    };
    p.then(
      (v) => settle(true, v),
      (e: unknown) => settle(false, e),
    );
    return deferred.handle;
  }

  /**
   * A sandbox Error carrying only the message (and class) of a host error: never the host object.
   * A host TypeError or RangeError is one in the sandbox too, so `toThrow(TypeError)` holds.
   */
  errorToVm(e: unknown): QuickJSHandle {
    if (e instanceof SandboxError) return this.vm.newError(e.info.message);
    if (!(e instanceof Error)) return this.vm.newError(String(e));
    if (!this.helpers || !e.name || e.name === 'Error') return e.name && e.name !== 'Error' ? this.vm.newError({ name: e.name, message: e.message }) : this.vm.newError(e.message);
    const name = this.vm.newString(e.name);
    const message = this.vm.newString(e.message);
    try {
      const r = this.vm.callFunction(this.helpers.makeError, this.vm.undefined, name, message);
      if (!r.error) return r.value;
      r.error.dispose();
      return this.vm.newError({ name: e.name, message: e.message });
    } finally {
      name.dispose();
      message.dispose();
    }
  }

  // ---- sandbox → host -------------------------------------------------------------------

  /**
   * A host copy of a sandbox value. The handle stays owned by the caller. budget: the values the
   * crossing may still carry (MAX_VALUES_PER_CROSSING), shared by the whole tree.
   */
  fromVm(h: QuickJSHandle, depth = 0, budget = { left: MAX_VALUES_PER_CROSSING }): unknown {
    const vm = this.vm;
    if (depth > MAX_DEPTH) throw new TypeError('value is nested too deeply (or circular) to pass to the host');
    const type = vm.typeof(h);
    switch (type) {
      case 'undefined':
        return undefined;
      case 'boolean':
        return vm.dump(h) as boolean;
      case 'number':
        return vm.getNumber(h);
      case 'string':
        return vm.getString(h);
      case 'bigint':
        return vm.getBigInt(h);
      case 'function':
        return this.vmFunction(h);
      case 'object':
        break;
      default:
        throw new TypeError(`a ${type} cannot be passed to the host`);
    }
    const kind = this.kindOf(h, budget.left);
    switch (kind) {
      case 'null':
        return null;
      case 'u8':
        return this.call(this.h.bytesOf, [h], (buf) => vm.getArrayBuffer(buf).consume((bytes) => bytes.value.slice()));
      case 'array':
        return eachOwned(this.items(h, budget), (v) => this.fromVm(v, depth + 1, budget));
      case 'promise':
        throw new TypeError('a promise cannot be passed to the host: await it first');
    }
    if (typeof kind === 'number') throw tooLarge(kind);
    // The script may have given arrays a toJSON: whatever came back must still be a list of keys.
    const keys: unknown = JSON.parse(kind);
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new TypeError('an object whose keys cannot be listed cannot be passed to the host');
    if (keys.length > budget.left) throw tooLarge(keys.length);
    budget.left -= keys.length;
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      const value = owned(vm.getProp(h, key), (x) => this.fromVm(x, depth + 1, budget));
      // An own '__proto__' key stays a key: assigning it would set the copy's prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
    return out;
  }

  /** The harness's kind() of an object: a kind name, its keys as JSON, or their count when over left. */
  private kindOf(h: QuickJSHandle, left: number): string | number {
    const leftH = this.vm.newNumber(left);
    try {
      return this.call(this.h.kind, [h, leftH], (r) => (this.vm.typeof(r) === 'number' ? this.vm.getNumber(r) : this.vm.getString(r)));
    } finally {
      leftH.dispose();
    }
  }

  /**
   * Elements of a sandbox array, each a handle the caller owns. Reads `length` as a property:
   * the library's getLength and getOwnPropertyNames go wrong once the WebAssembly memory grew.
   * The length is checked against the budget before anything is read.
   */
  private items(arr: QuickJSHandle, budget: { left: number }): QuickJSHandle[] {
    const n = this.vm.getProp(arr, 'length').consume((l) => (this.vm.typeof(l) === 'number' ? this.vm.getNumber(l) : NaN));
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`an array with length ${n} cannot be passed to the host`);
    if (n > budget.left) throw tooLarge(n);
    budget.left -= n;
    const out: QuickJSHandle[] = [];
    try {
      for (let i = 0; i < n; i++) out.push(this.vm.getProp(arr, i));
    } catch (e) {
      for (const h of out) h.dispose();
      throw e;
    }
    return out;
  }

  /** A host function that calls a sandbox function (kept alive until the bridge is disposed). */
  private vmFunction(h: QuickJSHandle): (...args: unknown[]) => unknown {
    const fn = h.dup();
    this.kept.add(fn);
    return (...args: unknown[]): unknown => {
      if (this.disposed) throw new Error('the script has ended');
      const argHandles = args.map((a) => this.toVm(a));
      const r = this.vm.callFunction(fn, this.vm.undefined, argHandles);
      for (const a of argHandles) a.dispose();
      if (r.error) throw r.error.consume((e) => this.errorFromVm(e));
      return owned(r.value, (value) => {
        // left 0: only whether it is a promise matters here, not the keys of an object.
        if (this.vm.typeof(value) === 'object' && this.kindOf(value, 0) === 'promise') return this.settle(value);
        return this.fromVm(value);
      });
    };
  }

  /**
   * Wait for a sandbox promise and copy out its value, or throw its error. The handle is only
   * borrowed during this call: the caller may dispose it at once, even if it never settles.
   */
  settle(promise: QuickJSHandle): Promise<unknown> {
    const id = this.nextWatch++;
    const settled = new Promise<unknown>((resolve, reject) => this.watched.set(id, { resolve, reject }));
    const idH = this.vm.newNumber(id);
    try {
      this.call(this.h.watch, [promise, idH], () => undefined);
    } catch (e) {
      this.watched.delete(id);
      throw e;
    } finally {
      idH.dispose();
    }
    this.pump();
    return settled;
  }

  /**
   * The function the harness's watch() calls back, (id, ok, value): one host function for every
   * settle(), where the library's resolvePromise makes two per promise and goes through the
   * script's (replaceable) global Promise.
   */
  settledFunction(): QuickJSHandle {
    const vm = this.vm;
    return vm.newFunction('settled', (idH, okH, valueH) => {
      const id = vm.getNumber(idH);
      const w = this.watched.get(id);
      if (!w) return;
      this.watched.delete(id);
      if (vm.getNumber(okH) !== 1) return w.reject(this.errorFromVm(valueH));
      try {
        w.resolve(this.fromVm(valueH));
      } catch (e) {
        w.reject(e);
      }
    });
  }

  errorFromVm(e: QuickJSHandle): SandboxError {
    try {
      return new SandboxError(this.call(this.h.errorInfo, [e], (r) => this.fromVm(r) as ErrorInfo));
    } catch {
      return new SandboxError({ message: 'the script threw a value that cannot be described', stack: '' });
    }
  }

  /** Call a helper and read its result; the helper's errors become host exceptions. */
  private call<T>(fn: QuickJSHandle, args: QuickJSHandle[], read: (r: QuickJSHandle) => T): T {
    const r = this.vm.callFunction(fn, this.vm.undefined, args);
    if (r.error) {
      const msg = r.error.consume((e) => String((this.vm.dump(e) as { message?: unknown }).message ?? 'error'));
      throw new TypeError(msg);
    }
    return owned(r.value, read);
  }

  dispose(): void {
    this.disposed = true;
    this.watched.clear();
    if (this.helpers) for (const h of Object.values(this.helpers)) h.dispose();
    for (const k of this.kept) if (k.alive) k.dispose();
    this.kept.clear();
  }
}

/**
 * fn of a handle, which is disposed afterwards even when fn throws (the library's consume() does
 * not, and a handle left alive aborts the runtime's teardown). Copying out may throw anywhere: a
 * value over the budget, a getter of the script's.
 */
export function owned<T>(h: QuickJSHandle, fn: (h: QuickJSHandle) => T): T {
  try {
    return fn(h);
  } finally {
    if (h.alive) h.dispose();
  }
}

/** fn of each handle, all of them disposed, also those after one that threw. */
function eachOwned<T>(handles: QuickJSHandle[], fn: (h: QuickJSHandle) => T): T[] {
  try {
    return handles.map((h) => owned(h, fn));
  } finally {
    for (const h of handles) if (h.alive) h.dispose();
  }
}

function tooLarge(n: number): RangeError {
  return new RangeError(`a value with ${n} items or keys is too large to pass to the host (at most ${MAX_VALUES_PER_CROSSING} per call, nested ones included)`);
}

function isObjectLike(v: unknown): v is object {
  return (typeof v === 'object' && v !== null) || typeof v === 'function';
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
