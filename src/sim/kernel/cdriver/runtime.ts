/**
 * One instance of a compiled C driver and the kernel services it imports. Every call into the
 * driver runs on a fiber (its own shadow stack and asyncify buffer); an import that is a
 * preemption point unwinds the C stack, the fiber's generator yields the point (and runs the
 * access once let past it), then the call is re-entered and rewinds to where it stopped. Calls into
 * the driver are never nested inside an import: a callback (runtime PM, IRQ) is its own fiber.
 */
import type { Op, PreemptPoint } from '../../core/coop';
import type { KernelPort } from '../port';
import { KVA_WINDOW, RUNTIME_IMPORTS } from './abi';

/** Where an access comes from in the C source. */
export interface CSite {
  file: string;
  func: string;
  line: number;
}

/** A C WARN/BUG/trap, turned into a finding by the bridge. */
export class COops extends Error {
  constructor(
    message: string,
    readonly site: CSite | null,
    readonly kind: 'bug' | 'trap',
  ) {
    super(message);
    this.name = 'COops';
  }
}

export interface RuntimeHost {
  port: KernelPort;
  /** Cycles per µs, for udelay. */
  cyclesPerUs: number;
  now(): number;
  /** DMA-visible memory: kernel VA window ↔ PA. */
  kvaBase: number;
  /** Engine services (plain calls: not preemption points). */
  services: Record<string, (...a: never[]) => unknown>;
  /** Preemptible services (runtime PM, device links): an Op whose result goes back to C. */
  opServices: Record<string, (...a: never[]) => Op<number>>;
  /** soc_variant(name, default): the instance's variant value, registered with its default on first use. */
  variant(name: string, dflt: number): number;
  /** WARN_ON and friends. */
  warn(site: CSite | null, cond: string): void;
  /** The driver's C file name, for oopses outside any known call site. */
  file: string;
  /** Who runs kernel code (the thread's name in schedules). */
  who: string;
}

interface Fiber {
  stackTop: number;
  data: number;
  dataEnd: number;
  sp: number;
  pending: Op<unknown> | null;
  result: unknown;
  /** Window stores whose address was hooked and whose value hook has not run yet. */
  stores: { id: number; pa: number; bytes: number }[];
  /** A 16-byte slot for out-parameters of entry points (map_pages' mapped). */
  slot: number;
  /** The site of the last preemption-point import (for replay steps and oops messages). */
  site: number;
}

const STACK_BYTES = 32 * 1024;
const ASYNCIFY_BYTES = 8 * 1024;
const FIBERS = 12;
const SCRATCH_OFFSET = 64 * 1024;

export interface CDriverExports {
  memory: WebAssembly.Memory;
  __indirect_function_table: WebAssembly.Table;
  __stack_pointer: WebAssembly.Global;
  asyncify_start_unwind(p: number): void;
  asyncify_stop_unwind(): void;
  asyncify_start_rewind(p: number): void;
  asyncify_stop_rewind(): void;
  [name: string]: unknown;
}

/** The preemption points a C access yields: a copy per access so schedules keep their 'where'. */
function sitedPoint(p: PreemptPoint, where: string): PreemptPoint {
  return { ...p, where };
}

export class CRuntime {
  readonly exports: CDriverExports;
  private readonly fibers: Fiber[] = [];
  private current: Fiber | null = null;
  private rewinding = false;
  private scratch = 0;
  private mem: DataView;
  private u8: Uint8Array;
  private readonly siteCache = new Map<number, CSite>();
  /** Set after a trap: the instance's state is what it was at the trap; nothing more runs. */
  dead: string | null = null;

  constructor(
    module: WebAssembly.Module,
    private readonly host: RuntimeHost,
  ) {
    const instance = new WebAssembly.Instance(module, this.imports(module));
    this.exports = instance.exports as unknown as CDriverExports;
    this.mem = new DataView(this.exports.memory.buffer);
    this.u8 = new Uint8Array(this.exports.memory.buffer);
    this.layout();
  }

  /** Scratch window for redirected accesses, then the fibers, then the C heap. */
  private layout(): void {
    const memory = this.exports.memory;
    const start = memory.buffer.byteLength;
    const bytes = 2 * SCRATCH_OFFSET + FIBERS * (STACK_BYTES + ASYNCIFY_BYTES);
    memory.grow(Math.ceil(bytes / 65536));
    this.refresh();
    this.scratch = start + SCRATCH_OFFSET;
    let at = start + 2 * SCRATCH_OFFSET;
    for (let i = 0; i < FIBERS; i++) {
      const stackTop = at + STACK_BYTES;
      const data = stackTop;
      this.fibers.push({ stackTop: stackTop - 16, data, dataEnd: data + ASYNCIFY_BYTES, sp: 0, pending: null, result: undefined, stores: [], slot: stackTop - 16, site: 0 });
      at += STACK_BYTES + ASYNCIFY_BYTES;
    }
    runToEnd(this.call('__soc_heap_init', [at]));
  }

  private refresh(): void {
    const buf = this.exports.memory.buffer;
    if (this.u8.buffer !== buf) {
      this.mem = new DataView(buf);
      this.u8 = new Uint8Array(buf);
    }
  }

  view(): DataView {
    this.refresh();
    return this.mem;
  }

  readU32(p: number): number {
    return this.view().getUint32(p, true);
  }

  writeU32(p: number, v: number): void {
    this.view().setUint32(p, v >>> 0, true);
  }

  cstring(p: number, max = 4096): string {
    this.refresh();
    let e = p;
    while (e < p + max && this.u8[e] !== 0) e++;
    return new TextDecoder().decode(this.u8.subarray(p, e));
  }

  site(p: number): CSite | null {
    if (!p) return null;
    let s = this.siteCache.get(p);
    if (!s) {
      s = { file: this.cstring(this.readU32(p)), func: this.cstring(this.readU32(p + 4)), line: this.readU32(p + 8) };
      this.siteCache.set(p, s);
    }
    return s;
  }

  siteText(p: number): string {
    const s = this.site(p);
    return s ? `${s.func} (${s.file}:${s.line})` : '';
  }

  kvaToPa(va: number): number {
    return va - KVA_WINDOW + this.host.kvaBase;
  }

  paToKva(pa: number): number {
    return (pa - this.host.kvaBase + KVA_WINDOW) >>> 0;
  }

  /** Call an export (or a table function) on a fresh fiber. */
  *call(fn: string | number, args: readonly (number | bigint)[]): Op<unknown> {
    if (this.dead) throw new COops(this.dead, null, 'trap');
    const f = this.fibers.pop();
    if (!f) throw new Error('C driver: too many kernel calls in flight at once');
    const target = typeof fn === 'string' ? (this.exports[fn] as (...a: unknown[]) => unknown) : (this.exports.__indirect_function_table.get(fn) as (...a: unknown[]) => unknown);
    if (typeof target !== 'function') throw new Error(`C driver: no entry point ${String(fn)}`);
    f.sp = f.stackTop;
    f.stores.length = 0;
    f.site = 0;
    let rewind = false;
    try {
      for (;;) {
        this.current = f;
        this.exports.__stack_pointer.value = f.sp;
        if (rewind) {
          this.exports.asyncify_start_rewind(f.data);
          this.rewinding = true;
        }
        let r: unknown;
        try {
          r = target(...args);
        } catch (e) {
          this.current = null;
          this.rewinding = false;
          throw this.trapped(e, f);
        }
        this.current = null;
        const op = f.pending;
        if (!op) return r;
        f.pending = null;
        this.exports.asyncify_stop_unwind();
        f.sp = this.exports.__stack_pointer.value as number;
        try {
          f.result = yield* op;
        } catch (e) {
          if (e instanceof COops) this.dead = `the C driver hit ${e.message} earlier`;
          throw e;
        }
        rewind = true;
      }
    } finally {
      this.fibers.push(f);
    }
  }

  private trapped(e: unknown, f: Fiber): Error {
    if (e instanceof COops) {
      this.dead = `the C driver hit ${e.message} earlier`;
      return e;
    }
    if (e instanceof WebAssembly.RuntimeError) {
      const func = cFunctionOf(e.stack);
      const last = f.site ? this.site(f.site) : null;
      const msg = `wasm trap in ${func}: ${e.message}${last ? ` (after ${last.func} at ${last.file}:${last.line})` : ''}`;
      this.dead = `the C driver trapped earlier: ${msg}`;
      return new COops(msg, last ? { ...last, func } : { file: this.host.file, func, line: 0 }, 'trap');
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  /** Suspend the current fiber on op: the import returns a dummy value, the C stack unwinds. */
  private suspend(op: Op<unknown>, site: number): void {
    const f = this.current!;
    f.pending = op;
    f.site = site;
    this.writeU32(f.data, f.data + 8);
    this.writeU32(f.data + 4, f.dataEnd);
    this.exports.asyncify_start_unwind(f.data);
  }

  /** If this import is the one the fiber is rewinding to, its result. */
  private resumed(): boolean {
    if (!this.rewinding) return false;
    this.rewinding = false;
    this.exports.asyncify_stop_rewind();
    return true;
  }

  private wrap<T>(op: Op<T>, site: number): Op<T> {
    const where = this.siteText(site);
    return where ? sited(op, where) : op;
  }

  private *loadWindow(pa: number, bytes: number): Op<number[]> {
    const port = this.host.port;
    const base = pa - (pa % 4);
    const words = ((pa % 4) + bytes + 3) >>> 2;
    const out: number[] = [];
    for (let i = 0; i < words; i++) out.push(yield* port.read32(base + 4 * i));
    return out;
  }

  private *storeWindow(pa: number, bytes: number, value: number | bigint): Op<void> {
    const port = this.host.port;
    if (bytes === 4 && (pa & 3) === 0) return yield* port.write32(pa, Number(value) >>> 0);
    if (bytes === 8 && (pa & 3) === 0) {
      const v = BigInt.asUintN(64, BigInt(value));
      yield* port.write32(pa, Number(v & 0xffffffffn));
      yield* port.write32(pa + 4, Number(v >> 32n));
      return;
    }
    // Sub-word or unaligned: read-modify-write of the covering words.
    const base = pa - (pa % 4);
    const words = ((pa % 4) + bytes + 3) >>> 2;
    const buf = new DataView(new ArrayBuffer(words * 4));
    for (let i = 0; i < words; i++) buf.setUint32(4 * i, yield* port.read32(base + 4 * i), true);
    const v = BigInt.asUintN(64, BigInt(value));
    for (let b = 0; b < bytes; b++) buf.setUint8((pa % 4) + b, Number((v >> BigInt(8 * b)) & 0xffn));
    for (let i = 0; i < words; i++) yield* port.write32(base + 4 * i, buf.getUint32(4 * i, true));
  }

  private imports(module: WebAssembly.Module): WebAssembly.Imports {
    const host = this.host;
    const port = host.port;
    const cyclesPerUs = host.cyclesPerUs;
    const self = this;
    /** The value hook after store_ptr: a store to DMA-visible memory goes to the cache model, a preemption point. */
    const storeVal = <T extends number | bigint>(id: number, value: T): T => {
      if (self.resumed()) return value;
      const f = self.current;
      const top = f?.stores[f.stores.length - 1];
      if (!f || !top || top.id !== id) return value;
      f.stores.pop();
      self.suspend(self.storeWindow(top.pa, top.bytes, value), f.site);
      return value;
    };
    const env: Record<string, unknown> = {
      __soc_readl(addr: number, site: number): number {
        if (self.resumed()) return self.current!.result as number;
        self.suspend(self.wrap(port.readl(addr >>> 0), site), site);
        return 0;
      },
      __soc_writel(value: number, addr: number, site: number): void {
        if (self.resumed()) return;
        self.suspend(self.wrap(port.writel(value >>> 0, addr >>> 0), site), site);
      },
      __soc_udelay(us: number, site: number): void {
        if (self.resumed()) return;
        self.suspend(self.wrap(port.delay(Math.max(1, us >>> 0) * cyclesPerUs), site), site);
      },
      __soc_lock(word: number, name: number, site: number): void {
        if (self.resumed()) return;
        self.suspend(self.lockOp(word, name, site), site);
      },
      __soc_unlock(word: number): void {
        self.writeU32(word, 0);
      },
      __soc_assert_locked(word: number, site: number): void {
        if (self.readU32(word) === 0) host.warn(self.site(site), 'assert_spin_locked: lock not held');
      },
      __soc_cmpxchg32(p: number, old: number, nv: number, site: number): number {
        if (self.resumed()) return self.current!.result as number;
        self.suspend(self.atomicOp(p >>> 0, 4, BigInt(old >>> 0), BigInt(nv >>> 0), true, site), site);
        return 0;
      },
      __soc_cmpxchg64(p: number, old: bigint, nv: bigint, site: number): bigint {
        if (self.resumed()) return self.current!.result as bigint;
        self.suspend(self.atomicOp(p >>> 0, 8, BigInt.asUintN(64, old), BigInt.asUintN(64, nv), true, site), site);
        return 0n;
      },
      __soc_xchg32(p: number, v: number, site: number): number {
        if (self.resumed()) return self.current!.result as number;
        self.suspend(self.atomicOp(p >>> 0, 4, 0n, BigInt(v >>> 0), false, site), site);
        return 0;
      },
      __soc_xchg64(p: number, v: bigint, site: number): bigint {
        if (self.resumed()) return self.current!.result as bigint;
        self.suspend(self.atomicOp(p >>> 0, 8, 0n, BigInt.asUintN(64, v), false, site), site);
        return 0n;
      },
      __soc_pm_runtime(what: number, dev: number, site: number): number {
        if (self.resumed()) return self.current!.result as number;
        const op = (host.opServices['pm_runtime'] as (w: number, d: number) => Op<number>)(what, dev);
        self.suspend(self.wrap(op, site), site);
        return 0;
      },
      soc_variant(name: number, dflt: number): number {
        return host.variant(self.cstring(name), dflt);
      },
      __soc_warn(site: number, cond: number): void {
        host.warn(self.site(site), self.cstring(cond));
      },
      __soc_bug(site: number, cond: number): never {
        const s = self.site(site);
        throw new COops(`kernel BUG: BUG_ON(${self.cstring(cond)})${s ? ` at ${s.file}:${s.line} in ${s.func}` : ''}`, s, 'bug');
      },
      __soc_ktime_ns(): bigint {
        return BigInt(Math.floor((host.now() * 1000) / cyclesPerUs));
      },
      __soc_virt_to_phys(p: number): bigint {
        const va = p >>> 0;
        return BigInt(va >= KVA_WINDOW ? self.kvaToPa(va) : va);
      },
      __soc_phys_to_virt(pa: bigint): number {
        return self.paToKva(Number(pa));
      },
      load_ptr(_id: number, bytes: number, offset: number, ptr: number): number {
        const va = (ptr >>> 0) + offset;
        if (va < NULL_PAGE && !self.rewinding) throw self.nullDeref(va, 'read');
        if (self.rewinding) {
          self.resumed();
          const words = self.current!.result as number[];
          const v = self.view();
          for (let i = 0; i < words.length; i++) v.setUint32(self.scratch + 4 * i, words[i]!, true);
          return self.scratch + (va & 3) - offset;
        }
        if (va < KVA_WINDOW) return ptr;
        const f = self.current!;
        self.suspend(self.loadWindow(self.kvaToPa(va), bytes), f.site);
        return 0;
      },
      store_ptr(id: number, bytes: number, offset: number, ptr: number): number {
        const va = (ptr >>> 0) + offset;
        if (va < NULL_PAGE) throw self.nullDeref(va, 'write');
        if (va < KVA_WINDOW) return ptr;
        self.current!.stores.push({ id, pa: self.kvaToPa(va), bytes });
        return self.scratch - offset;
      },
      store_val_i32: storeVal<number>,
      store_val_i64: storeVal<bigint>,
      load_val_i32: (_id: number, v: number) => v,
      load_val_i64: (_id: number, v: bigint) => v,
      load_val_f32: (_id: number, v: number) => v,
      load_val_f64: (_id: number, v: number) => v,
      store_val_f32: (_id: number, v: number) => v,
      store_val_f64: (_id: number, v: number) => v,
      memory_grow_pre: (_id: number, d: number) => d,
      memory_grow_post: (_id: number, r: number) => {
        self.refresh();
        return r;
      },
    };
    const soc: Record<string, unknown> = { ...host.services };
    soc['device_link'] = (consumer: number, supplier: number, flags: number, site: number): number => {
      if (self.resumed()) return self.current!.result as number;
      const op = (host.opServices['device_link'] as (c: number, s: number, f: number) => Op<number>)(consumer, supplier, flags >>> 0);
      self.suspend(self.wrap(op, site), site);
      return 0;
    };
    for (const [m, names] of Object.entries(RUNTIME_IMPORTS)) {
      const provided = m === 'env' ? env : soc;
      for (const n of names) if (!(n in provided)) throw new Error(`C driver runtime: ${m}.${n} is listed in RUNTIME_IMPORTS but not provided`);
    }
    const missing = unsupportedImports(module, { env, soc });
    if (missing.length > 0) throw new Error(`unsupported kernel symbol${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
    return { env: env as WebAssembly.ModuleImports, soc: soc as WebAssembly.ModuleImports };
  }

  /** The oops of a load or store through a pointer into the NULL page. */
  private nullDeref(va: number, access: 'read' | 'write'): COops {
    const func = cFunctionOf(new Error().stack);
    const last = this.current?.site ? this.site(this.current.site) : null;
    const at = `0x${va.toString(16).padStart(8, '0')}`;
    return new COops(
      `Unable to handle kernel NULL pointer dereference at virtual address ${at} (${access}) in ${func}${last ? `, after ${last.func} at ${last.file}:${last.line}` : ''}`,
      last ? { ...last, func } : { file: this.host.file, func, line: 0 },
      'trap',
    );
  }

  private *lockOp(word: number, name: number, site: number): Op<void> {
    if (word >>> 0 < NULL_PAGE) throw this.nullDeref(word >>> 0, 'write');
    const where = this.siteText(site);
    const point: PreemptPoint = { kind: 'yield', who: `${this.host.who} ${this.cstring(name)}`, wait: () => this.readU32(word) !== 0, ...(where ? { where } : {}) };
    yield point;
    for (let spins = 0; this.readU32(word) !== 0; spins++) {
      if (spins >= LOCKUP_SPINS) {
        const s = this.site(site);
        throw new COops(`BUG: spinlock lockup suspected: ${this.cstring(name)} never released${s ? ` (taken at ${s.file}:${s.line} in ${s.func})` : ''}`, s, 'bug');
      }
      yield point;
    }
    this.writeU32(word, 1);
  }

  /** cmpxchg / xchg: on DMA-visible memory through the port (the cache model); else on wasm memory. */
  private *atomicOp(p: number, bytes: 4 | 8, expected: bigint, value: bigint, compare: boolean, site: number): Op<number | bigint> {
    const where = this.siteText(site);
    const port = this.host.port;
    if (p >= KVA_WINDOW) {
      const pa = this.kvaToPa(p);
      if (bytes === 4) {
        if (compare) return yield* sited(port.cmpxchg32(pa, Number(expected), Number(value)), where);
        let cur = 0;
        for (;;) {
          cur = yield* sited(port.read32(pa), where);
          if ((yield* sited(port.cmpxchg32(pa, cur, Number(value)), where)) === cur) return cur;
        }
      }
      if (compare) return BigInt.asUintN(64, yield* sited(port.cmpxchg64(pa, expected, value), where));
      for (;;) {
        const cur = yield* sited(port.read64(pa), where);
        if ((yield* sited(port.cmpxchg64(pa, cur, value), where)) === cur) return cur;
      }
    }
    yield { kind: 'yield', who: this.host.who, ...(where ? { where } : {}) };
    const v = this.view();
    if (bytes === 4) {
      const cur = v.getUint32(p, true);
      if (!compare || BigInt(cur) === expected) v.setUint32(p, Number(value), true);
      return cur;
    }
    const cur = v.getBigUint64(p, true);
    if (!compare || cur === expected) v.setBigUint64(p, value, true);
    return cur;
  }

  /** No call suspended inside the module (snapshot can run). */
  idle(): boolean {
    return this.fibers.length === FIBERS;
  }

  /** Explorer checkpoints: the whole wasm memory and the stack pointer; fibers must be idle. */
  snapshot(): { memory: Uint8Array; sp: number; dead: string | null } {
    if (this.fibers.length !== FIBERS) throw new Error('C driver: cannot checkpoint while a kernel call is in flight inside the driver');
    this.refresh();
    return { memory: this.u8.slice(), sp: this.exports.__stack_pointer.value as number, dead: this.dead };
  }

  restore(s: { memory: Uint8Array; sp: number; dead: string | null }): void {
    this.refresh();
    this.u8.set(s.memory);
    if (this.u8.length > s.memory.length) this.u8.fill(0, s.memory.length);
    this.exports.__stack_pointer.value = s.sp;
    this.dead = s.dead;
    this.current = null;
    this.rewinding = false;
  }
}

/** The innermost C function on a stack that went through the driver (wasm frames are named). */
export function cFunctionOf(stack: string | undefined): string {
  for (const line of (stack ?? '').split('\n')) {
    const m = /at (?:[\w$.]+\.)?([A-Za-z_][\w$]*) \(wasm:/.exec(line);
    if (m && !m[1]!.startsWith('asyncify_')) return m[1]!;
  }
  return 'unknown function';
}

/** Loads and stores below this are NULL-pointer dereferences (wasm-ld puts the stack first, data above 64 KiB). */
const NULL_PAGE = 4096;
/** A spinlock still held after this many attempts is reported as a lockup. */
const LOCKUP_SPINS = 100_000;

/** The imports a module wants that the runtime does not provide. */
export function unsupportedImports(module: WebAssembly.Module, provided: Record<string, Record<string, unknown>>): string[] {
  const out: string[] = [];
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.kind !== 'function') continue;
    if (!(i.name in (provided[i.module] ?? {}))) out.push(i.name);
  }
  return out;
}

/** op with every point it yields carrying `where`. */
function* sited<T>(op: Op<T>, where: string): Op<T> {
  for (;;) {
    const r = op.next();
    if (r.done) return r.value;
    yield where ? sitedPoint(r.value, where) : r.value;
  }
}

/** Run an op that never yields a point that must wait (setup before any other thread exists). */
function runToEnd<T>(op: Op<T>): T {
  let r = op.next();
  while (!r.done) r = op.next();
  return r.value;
}
