/**
 * Copies values between the host realm and the QuickJS sandbox. This is the security boundary's
 * only door: nothing crosses by reference. Numbers, strings, booleans, null, undefined, bigint,
 * arrays, plain objects and Uint8Array are copied; host functions become sandbox functions that
 * copy their arguments in and their results out (Promises become sandbox promises); sandbox
 * functions handed to the host (explore threads) become host functions that call back in.
 */
import type { QuickJSContext, QuickJSDeferredPromise, QuickJSHandle } from 'quickjs-emscripten';

const MAX_DEPTH = 64;

/** Sandbox-side helpers the harness provides (see harness.ts). */
export interface VmHelpers {
  /** 'null' | 'array' | 'u8' | 'promise' for a value of typeof 'object', or another object's own enumerable keys as a JSON array. */
  kind: QuickJSHandle;
  /** Uint8Array → a fresh ArrayBuffer holding its bytes. */
  bytesOf: QuickJSHandle;
  /** ArrayBuffer → Uint8Array over it. */
  u8: QuickJSHandle;
  /** Any thrown value → { message, stack }. */
  errorInfo: QuickJSHandle;
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

  /** A new sandbox value equal to v. The caller owns the handle. */
  toVm(v: unknown, depth = 0): QuickJSHandle {
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
        return this.hostFunction(v.name, v as (...a: unknown[]) => unknown, v as unknown as Record<string, unknown>, depth);
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
    if (Array.isArray(v)) {
      const arr = vm.newArray();
      v.forEach((item, i) => this.toVm(item, depth + 1).consume((h) => vm.setProp(arr, i, h)));
      return arr;
    }
    if (ArrayBuffer.isView(v) || v instanceof Map || v instanceof Set || v instanceof Promise) {
      throw new TypeError(`a ${(v as object).constructor.name} cannot be passed into the script`);
    }
    // Any other object travels as a copy of its own enumerable data.
    const obj = vm.newObject();
    this.copyProps(obj, v as Record<string, unknown>, depth);
    return obj;
  }

  private copyProps(target: QuickJSHandle, from: Record<string, unknown>, depth: number): void {
    for (const [k, x] of Object.entries(from)) this.toVm(x, depth + 1).consume((h) => this.vm.setProp(target, k, h));
  }

  /**
   * A sandbox function calling the host function fn (with no `this`: bind methods beforehand). Own
   * enumerable properties of fn are copied too, so a function with members (explore and
   * explore.replay) stays one tree.
   */
  hostFunction(name: string, fn: (...args: unknown[]) => unknown, members?: Record<string, unknown>, depth = 0): QuickJSHandle {
    const vm = this.vm;
    const handle = vm.newFunction(name, (...argHandles) => {
      let result: unknown;
      this.hostCallDepth++;
      try {
        result = fn(...argHandles.map((a) => this.fromVm(a)));
        if (!isPromiseLike(result)) return this.toVm(result);
      } catch (e) {
        return { error: this.errorToVm(e) };
      } finally {
        this.hostCallDepth--;
      }
      return this.promiseToVm(result);
    });
    if (members) this.copyProps(handle, members, depth);
    return handle;
  }

  /** A sandbox promise settled by a host one. Its own stack is left unset: QuickJS then records
   *  the awaiting frame, which is the user's call site. */
  private promiseToVm(p: PromiseLike<unknown>): QuickJSHandle {
    const deferred: QuickJSDeferredPromise = this.vm.newPromise();
    this.kept.add(deferred);
    const settle = (ok: boolean, value: unknown): void => {
      this.kept.delete(deferred);
      if (this.disposed || !deferred.alive) return;
      let h: QuickJSHandle;
      try {
        h = ok ? this.toVm(value) : this.errorToVm(value);
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

  /** A sandbox Error carrying only the message (and name) of a host error: never the host object. */
  errorToVm(e: unknown): QuickJSHandle {
    if (e instanceof SandboxError) return this.vm.newError(e.info.message);
    if (e instanceof Error) return e.name && e.name !== 'Error' ? this.vm.newError({ name: e.name, message: e.message }) : this.vm.newError(e.message);
    return this.vm.newError(String(e));
  }

  // ---- sandbox → host -------------------------------------------------------------------

  /** A host copy of a sandbox value. The handle stays owned by the caller. */
  fromVm(h: QuickJSHandle, depth = 0): unknown {
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
    const kind = this.call(this.h.kind, [h], (r) => vm.getString(r));
    switch (kind) {
      case 'null':
        return null;
      case 'u8':
        return this.call(this.h.bytesOf, [h], (buf) => vm.getArrayBuffer(buf).consume((bytes) => bytes.value.slice()));
      case 'array':
        return this.items(h).map((x) => x.consume((v) => this.fromVm(v, depth + 1)));
      case 'promise':
        throw new TypeError('a promise cannot be passed to the host: await it first');
    }
    const out: Record<string, unknown> = {};
    // The script may have given arrays a toJSON: whatever came back must still be a list of keys.
    const keys: unknown = JSON.parse(kind);
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new TypeError('an object whose keys cannot be listed cannot be passed to the host');
    for (const key of keys) out[key] = vm.getProp(h, key).consume((x) => this.fromVm(x, depth + 1));
    return out;
  }

  /**
   * Elements of a sandbox array, each a handle the caller owns. Reads `length` as a property:
   * the library's getLength and getOwnPropertyNames go wrong once the WebAssembly memory grew.
   */
  private items(arr: QuickJSHandle): QuickJSHandle[] {
    const n = this.vm.getProp(arr, 'length').consume((l) => this.vm.getNumber(l));
    const out: QuickJSHandle[] = [];
    for (let i = 0; i < n; i++) out.push(this.vm.getProp(arr, i));
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
      return r.value.consume((value) => {
        if (this.vm.typeof(value) === 'object' && this.call(this.h.kind, [value], (k) => this.vm.getString(k)) === 'promise') return this.settle(value);
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
    } finally {
      idH.dispose();
    }
    this.pump();
    return settled;
  }

  /**
   * The function the harness's watch() calls back, (id, ok, value): one host function for every
   * settle(), where the library's resolvePromise makes two per promise and looks up the script's
   * (replaceable) global Promise.
   */
  settledFunction(): QuickJSHandle {
    const vm = this.vm;
    return vm.newFunction('settled', (idH, okH, valueH) => {
      const id = vm.getNumber(idH);
      const w = this.watched.get(id);
      if (!w) return;
      this.watched.delete(id);
      if (vm.typeof(okH) === 'boolean' && vm.dump(okH) === true) {
        try {
          w.resolve(this.fromVm(valueH));
        } catch (e) {
          w.reject(e);
        }
      } else w.reject(this.errorFromVm(valueH));
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
    return r.value.consume(read);
  }

  dispose(): void {
    this.disposed = true;
    if (this.helpers) for (const h of Object.values(this.helpers)) h.dispose();
    for (const k of this.kept) if (k.alive) k.dispose();
    this.kept.clear();
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
