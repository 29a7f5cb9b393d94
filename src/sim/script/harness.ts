/**
 * The test harness that runs inside the sandbox, as JavaScript source. It is evaluated before the
 * user's script as a function of the host's `out` callback; it defines the globals test, describe,
 * expect and console, and returns the control object the host drives tests with (see sandbox.ts).
 * It captures the builtins it relies on first, so a script that overwrites globals only breaks
 * itself, not the reporting.
 */
import { MAX_TIMEOUT_MS } from '../../shared/session-api';

export const HARNESS_FILE = 'soc-console:harness';

export const HARNESS_SOURCE = String.raw`(function (out, later, settled) {
  'use strict';
  const G = globalThis;
  const { keys, getPrototypeOf, freeze, is: same, prototype: ObjectProto } = Object;
  const hasOwn = Function.prototype.call.bind(Object.prototype.hasOwnProperty);
  const isArray = Array.isArray;
  const isFiniteNum = Number.isFinite;
  const MAX_TIMEOUT_MS = ${MAX_TIMEOUT_MS};
  const U8 = Uint8Array, Err = Error, Prom = Promise, Str = String, RE = RegExp, MapC = Map, SetC = Set, DateC = Date;
  const TypedArrayProto = getPrototypeOf(Uint8Array.prototype);
  const isTyped = (v) => typeof v === 'object' && v !== null && TypedArrayProto.isPrototypeOf(v);
  const typedGetter = (k) => Function.prototype.call.bind(Object.getOwnPropertyDescriptor(TypedArrayProto, k).get);
  const bufferOf = typedGetter('buffer'), offsetOf = typedGetter('byteOffset'), lengthOf = typedGetter('byteLength');
  const sliceBuffer = Function.prototype.call.bind(ArrayBuffer.prototype.slice);
  const hex = (n) => '0x' + n.toString(16);
  // The brand check of typed arrays: unlike instanceof, no script can redefine it (Symbol.hasInstance).
  const tagOf = Function.prototype.call.bind(Object.getOwnPropertyDescriptor(TypedArrayProto, Symbol.toStringTag).get);
  const isU8 = (v) => tagOf(v) === 'Uint8Array';
  // Promises are told apart by the intrinsic then, which throws for anything else (instanceof can be redefined).
  const promiseThen = Function.prototype.call.bind(Promise.prototype.then);
  const promiseResolve = Promise.resolve.bind(Promise);
  const noop = () => undefined;
  const isPromise = (v) => {
    // Only thenables are worth the brand check: it throws, which costs, for everything else.
    if (typeof v.then !== 'function') return false;
    try {
      promiseThen(v, noop, noop);
      return true;
    } catch (_) {
      return false;
    }
  };
  const toJSON = JSON.stringify;
  // By hand, not JSON.stringify(array): the script may have given arrays a toJSON or replaced map/join.
  const keysJSON = (o, left) => {
    const ks = keys(o);
    if (ks.length > left) return ks.length;
    let s = '[';
    for (let i = 0; i < ks.length; i++) s += (i ? ',' : '') + toJSON(ks[i]);
    return s + ']';
  };
  const ProxyC = Proxy, TypeErr = TypeError;
  const ERRORS = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };
  const defineProp = Reflect.defineProperty, setProto = Reflect.setPrototypeOf;
  const wsHas = Function.prototype.call.bind(WeakSet.prototype.has), wsAdd = Function.prototype.call.bind(WeakSet.prototype.add);

  // ---- formatting -------------------------------------------------------------------------
  function fmt(v, opts, depth, seen) {
    depth = depth || 0;
    seen = seen || [];
    const hexInts = opts && opts.hex;
    switch (typeof v) {
      case 'string': return depth === 0 && opts && opts.raw ? v : JSON.stringify(v);
      case 'number':
        if (same(v, -0)) return '-0';
        return hexInts && Number.isInteger(v) && Math.abs(v) > 255 ? v + ' (' + (v < 0 ? '-' + hex(-v) : hex(v)) + ')' : Str(v);
      case 'bigint': return hexInts && (v > 255n || v < -255n) ? v + 'n (' + (v < 0n ? '-' + hex(-v) : hex(v)) + ')' : v + 'n';
      case 'function': return '[Function' + (v.name ? ' ' + v.name : '') + ']';
      case 'undefined': case 'boolean': case 'symbol': return Str(v);
    }
    if (v === null) return 'null';
    if (seen.indexOf(v) >= 0) return '[Circular]';
    if (v instanceof Err) return (v.name || 'Error') + ': ' + v.message;
    if (v instanceof U8) {
      const shown = Array.prototype.slice.call(v, 0, 32).map((b) => (b < 16 ? '0' : '') + b.toString(16));
      return 'Uint8Array(' + v.length + ') [ ' + shown.join(' ') + (v.length > 32 ? ' … ' : ' ') + ']';
    }
    if (v instanceof DateC) return 'Date(' + v.toISOString() + ')';
    if (v instanceof RE) return Str(v);
    if (v instanceof Prom) return 'Promise {}';
    if (depth > 3) return isArray(v) ? '[Array]' : '[Object]';
    const inner = seen.concat([v]);
    const item = (x) => fmt(x, opts, depth + 1, inner);
    if (isArray(v) || isTyped(v)) {
      const items = Array.prototype.slice.call(v, 0, 50).map(item);
      if (v.length > 50) items.push('… ' + (v.length - 50) + ' more');
      return (isArray(v) ? '' : v.constructor.name + '(' + v.length + ') ') + '[' + (items.length ? ' ' + items.join(', ') + ' ' : '') + ']';
    }
    if (v instanceof MapC) return 'Map(' + v.size + ') { ' + Array.from(v, ([k, x]) => item(k) + ' => ' + item(x)).join(', ') + ' }';
    if (v instanceof SetC) return 'Set(' + v.size + ') { ' + Array.from(v, item).join(', ') + ' }';
    const proto = getPrototypeOf(v);
    const name = proto && proto !== ObjectProto && proto.constructor && proto.constructor.name ? proto.constructor.name + ' ' : '';
    const ks = keys(v);
    if (ks.length === 0) return name + '{}';
    const key = (k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k));
    return name + '{ ' + ks.slice(0, 50).map((k) => key(k) + ': ' + item(v[k])).join(', ') + (ks.length > 50 ? ', …' : '') + ' }';
  }
  const show = (v) => fmt(v, { hex: true });

  // ---- console ----------------------------------------------------------------------------
  const line = (args) => Array.prototype.map.call(args, (a) => fmt(a, { raw: true })).join(' ');
  const console = freeze({
    log() { out('log', line(arguments)); },
    info() { out('log', line(arguments)); },
    debug() { out('log', line(arguments)); },
    warn() { out('error', line(arguments)); },
    error() { out('error', line(arguments)); },
  });

  // ---- equality ---------------------------------------------------------------------------
  function definedKeys(o) {
    return keys(o).filter((k) => o[k] !== undefined);
  }
  function equals(a, b, seen) {
    if (same(a, b)) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    seen = seen || [];
    for (const [x, y] of seen) if (x === a && y === b) return true;
    seen = seen.concat([[a, b]]);
    if (isArray(a) !== isArray(b) || isTyped(a) !== isTyped(b)) return false;
    if (isArray(a) || isTyped(a)) {
      if (isTyped(a) && a.constructor !== b.constructor) return false;
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) if (!equals(a[i], b[i], seen)) return false;
      return true;
    }
    if (a instanceof DateC || b instanceof DateC) return a instanceof DateC && b instanceof DateC && same(a.getTime(), b.getTime());
    if (a instanceof RE || b instanceof RE) return a instanceof RE && b instanceof RE && Str(a) === Str(b);
    if (a instanceof MapC || b instanceof MapC) {
      if (!(a instanceof MapC && b instanceof MapC) || a.size !== b.size) return false;
      for (const [k, v] of a) if (!b.has(k) || !equals(v, b.get(k), seen)) return false;
      return true;
    }
    if (a instanceof SetC || b instanceof SetC) {
      if (!(a instanceof SetC && b instanceof SetC) || a.size !== b.size) return false;
      for (const v of a) if (!b.has(v)) return false;
      return true;
    }
    if (a instanceof Err && b instanceof Err && a.message !== b.message) return false;
    const ka = definedKeys(a), kb = definedKeys(b);
    if (ka.length !== kb.length) return false;
    for (const k of ka) if (!hasOwn(b, k) || !equals(a[k], b[k], seen)) return false;
    return true;
  }
  const isPlainish = (v) => typeof v === 'object' && v !== null && !isArray(v) && !isTyped(v);
  function matchesObject(actual, expected) {
    if (isArray(expected)) {
      return isArray(actual) && actual.length === expected.length && expected.every((x, i) => matchesObject(actual[i], x));
    }
    if (!isPlainish(expected) || expected instanceof DateC || expected instanceof RE) return equals(actual, expected);
    if (typeof actual !== 'object' || actual === null) return false;
    return keys(expected).every((k) => k in actual && matchesObject(actual[k], expected[k]));
  }

  // ---- expect -----------------------------------------------------------------------------
  const ASSERTION = Symbol('assertion');
  function AssertionError(message, site) {
    const e = new Err(message);
    e.name = 'AssertionError';
    e[ASSERTION] = true;
    if (site && typeof site.stack === 'string') e.stack = site.stack;
    return e;
  }
  function errorMessage(e) {
    if (e instanceof Err) return e.message;
    return fmt(e);
  }
  function throwMatches(e, expected) {
    if (expected === undefined) return true;
    if (typeof expected === 'string') return errorMessage(e).includes(expected);
    if (expected instanceof RE) return expected.test(errorMessage(e));
    if (typeof expected === 'function') return e instanceof expected;
    if (expected instanceof Err) return errorMessage(e) === expected.message;
    if (isPlainish(expected)) return matchesObject(e, expected);
    throw new TypeError('toThrow: expected a string, RegExp, Error class or Error, got ' + fmt(expected));
  }
  function describeExpected(expected) {
    if (expected === undefined) return '';
    if (typeof expected === 'function') return ' an instance of ' + (expected.name || 'the given class');
    if (expected instanceof RE) return ' an error matching ' + Str(expected);
    if (typeof expected === 'string') return ' an error containing ' + JSON.stringify(expected);
    return ' ' + fmt(expected);
  }

  // Each matcher returns [pass, message when the check fails, message when the negation fails].
  const MATCHERS = {
    toBe: (a, e) => [same(a, e), 'expected ' + show(a) + ' to be ' + show(e) + (equals(a, e) && !same(a, e) ? ' (they are equal but not the same object: use toEqual)' : ''), 'expected ' + show(a) + ' not to be ' + show(e)],
    toEqual: (a, e) => [equals(a, e), 'expected ' + show(a) + ' to equal ' + show(e), 'expected ' + show(a) + ' not to equal ' + show(e)],
    toStrictEqual: (a, e) => [equals(a, e) && (typeof a !== 'object' || a === null || getPrototypeOf(a) === getPrototypeOf(e)), 'expected ' + show(a) + ' to strictly equal ' + show(e), 'expected ' + show(a) + ' not to strictly equal ' + show(e)],
    toBeTruthy: (a) => [!!a, 'expected ' + show(a) + ' to be truthy', 'expected ' + show(a) + ' not to be truthy'],
    toBeFalsy: (a) => [!a, 'expected ' + show(a) + ' to be falsy', 'expected ' + show(a) + ' not to be falsy'],
    toBeNull: (a) => [a === null, 'expected ' + show(a) + ' to be null', 'expected ' + show(a) + ' not to be null'],
    toBeUndefined: (a) => [a === undefined, 'expected ' + show(a) + ' to be undefined', 'expected ' + show(a) + ' not to be undefined'],
    toBeDefined: (a) => [a !== undefined, 'expected ' + show(a) + ' to be defined', 'expected ' + show(a) + ' not to be defined'],
    toBeGreaterThan: (a, e) => [a > e, 'expected ' + show(a) + ' to be greater than ' + show(e), 'expected ' + show(a) + ' not to be greater than ' + show(e)],
    toBeGreaterThanOrEqual: (a, e) => [a >= e, 'expected ' + show(a) + ' to be greater than or equal to ' + show(e), 'expected ' + show(a) + ' not to be greater than or equal to ' + show(e)],
    toBeLessThan: (a, e) => [a < e, 'expected ' + show(a) + ' to be less than ' + show(e), 'expected ' + show(a) + ' not to be less than ' + show(e)],
    toBeLessThanOrEqual: (a, e) => [a <= e, 'expected ' + show(a) + ' to be less than or equal to ' + show(e), 'expected ' + show(a) + ' not to be less than or equal to ' + show(e)],
    toContain: (a, e) => {
      if (typeof a !== 'string' && !isArray(a) && !isTyped(a)) throw new TypeError('toContain: expected a string, array or typed array, got ' + show(a));
      const pass = typeof a === 'string' ? a.includes(Str(e)) : Array.prototype.includes.call(a, e);
      return [pass, 'expected ' + show(a) + ' to contain ' + show(e), 'expected ' + show(a) + ' not to contain ' + show(e)];
    },
    toContainEqual: (a, e) => {
      const pass = (isArray(a) || isTyped(a)) && Array.prototype.some.call(a, (x) => equals(x, e));
      return [pass, 'expected ' + show(a) + ' to contain an item equal to ' + show(e), 'expected ' + show(a) + ' not to contain an item equal to ' + show(e)];
    },
    toHaveLength: (a, n) => {
      const len = a !== null && a !== undefined ? a.length : undefined;
      return [len === n, 'expected ' + show(a) + ' to have length ' + n + (len === undefined ? ', but it has no length' : ', but its length is ' + len), 'expected ' + show(a) + ' not to have length ' + n];
    },
    toMatchObject: (a, e) => [matchesObject(a, e), 'expected ' + show(a) + ' to match object ' + show(e), 'expected ' + show(a) + ' not to match object ' + show(e)],
    toThrow: (a, expected, mode) => {
      let threw = false, error;
      if (mode === 'rejects') { threw = true; error = a; }
      else {
        if (typeof a !== 'function') throw new TypeError('toThrow: expected a function, got ' + show(a));
        try { a(); } catch (e) { threw = true; error = e; }
      }
      const subject = mode === 'rejects' ? 'promise' : 'function';
      const verb = mode === 'rejects' ? 'reject with' : 'throw';
      if (!threw) return [false, 'expected ' + subject + ' to ' + verb + (describeExpected(expected) || ' an error') + ', but it did not', ''];
      const pass = throwMatches(error, expected);
      const got = ', but it ' + (mode === 'rejects' ? 'rejected with ' : 'threw ') + fmt(error);
      return [pass, 'expected ' + subject + ' to ' + verb + describeExpected(expected) + got, 'expected ' + subject + ' not to ' + verb + (describeExpected(expected) || ' an error') + got];
    },
  };
  MATCHERS.toThrowError = MATCHERS.toThrow;

  // Matchers live on one prototype, so expect() builds one small object, not a closure per
  // matcher and variant: explorer threads call it in every run.
  const STATE = Symbol('expect');
  const create = Object.create;
  const MatchersProto = {};
  function matchers(actual, negated, mode) {
    const m = create(MatchersProto);
    m[STATE] = { actual, negated, mode };
    return m;
  }
  const stateOf = (m) => {
    const st = m !== null && typeof m === 'object' ? m[STATE] : undefined;
    if (!st) throw new TypeErr('a matcher was called without its expect(): call it as expect(value).matcher(...)');
    return st;
  };
  for (const name of keys(MATCHERS)) {
    const check = MATCHERS[name];
    const judge = (value, args, negated, mode, site) => {
      const [pass, failMsg, notMsg] = check(value, args[0], mode);
      if (pass === negated) throw AssertionError(negated ? notMsg : failMsg, site);
    };
    MatchersProto[name] = function () {
      const { actual, negated, mode } = stateOf(this);
      if (!mode) {
        judge(actual, arguments, negated, mode);
        return;
      }
      const args = arguments;
      // The await below loses the caller's frames: keep the call site for the error location.
      const site = new Err();
      return Prom.resolve(typeof actual === 'function' ? actual() : actual).then(
        (value) => {
          if (mode === 'rejects') throw AssertionError('expected promise to reject, but it resolved with ' + show(value), site);
          judge(value, args, negated, mode, site);
        },
        (reason) => {
          if (mode === 'resolves') throw AssertionError('expected promise to resolve, but it rejected with ' + fmt(reason), site);
          judge(reason, args, negated, mode, site);
        },
      );
    };
  }
  Object.defineProperties(MatchersProto, {
    not: { get() { const st = stateOf(this); return st.negated ? undefined : matchers(st.actual, true, st.mode); } },
    resolves: { get() { const st = stateOf(this); return st.negated || st.mode ? undefined : matchers(st.actual, false, 'resolves'); } },
    rejects: { get() { const st = stateOf(this); return st.negated || st.mode ? undefined : matchers(st.actual, false, 'rejects'); } },
  });
  freeze(MatchersProto);
  function expect(actual) {
    return matchers(actual, false, undefined);
  }

  // ---- test / describe --------------------------------------------------------------------
  const tests = [];
  const prefix = [];
  let started = false;
  function test(name, fn, opts) {
    if (started) throw new Err('test() called while tests are running: declare tests at the top level or in describe()');
    if (typeof fn !== 'function') throw new TypeError('test(' + JSON.stringify(Str(name)) + '): the second argument must be a function');
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) throw new TypeError('test(' + JSON.stringify(Str(name)) + '): options must be an object');
    const o = opts || {};
    if (o.timeoutMs !== undefined && !(typeof o.timeoutMs === 'number' && isFiniteNum(o.timeoutMs) && o.timeoutMs >= 1 && o.timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new TypeError('test(' + JSON.stringify(Str(name)) + '): timeoutMs must be a number of milliseconds from 1 to ' + MAX_TIMEOUT_MS + ', got ' + fmt(o.timeoutMs));
    }
    if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new TypeError('test(' + JSON.stringify(Str(name)) + '): seed must be an integer');
    tests.push({
      name: Str(name),
      fullName: prefix.concat([Str(name)]).join(' > '),
      fn,
      timeoutMs: o.timeoutMs,
      seed: o.seed,
      site: new Err().stack,
    });
  }
  function describe(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('describe(' + JSON.stringify(Str(name)) + '): the second argument must be a function');
    prefix.push(Str(name));
    try {
      const r = fn();
      if (r instanceof Prom) throw new TypeError('describe(' + JSON.stringify(Str(name)) + '): the callback must not be async; await inside test() instead');
    } finally {
      prefix.pop();
    }
  }

  // ---- what the host API returns: read-only copies, and live records ------------------------
  // A proxy, not only Object.freeze: an assignment to a frozen object is silently dropped in sloppy
  // code (new Function, indirect eval), and would not name the API. Uint8Arrays stay the script's own buffers.
  const sealed = new WeakSet(), lives = new WeakSet();
  const quote = (k) => "'" + Str(k) + "'";
  function readOnlyHandler(what) {
    const refuse = (verb, k) => {
      throw new TypeErr('cannot ' + verb + ' ' + quote(k) + ': ' + what + ' is a read-only copy (changing it would change nothing)');
    };
    return {
      set: (t, k) => refuse('assign to', k),
      defineProperty: (t, k, d) => defineProp(t, k, d) || refuse('define', k),
      deleteProperty: (t, k) => refuse('delete', k),
      setPrototypeOf: (t, p) => setProto(t, p) || refuse('set the prototype of', 'it'),
    };
  }
  function sealTree(v, handler, depth) {
    if ((typeof v !== 'object' && typeof v !== 'function') || v === null || isU8(v) || wsHas(sealed, v) || wsHas(lives, v) || depth > 64) return v;
    for (const k of keys(v)) {
      const x = v[k];
      // Defined, not assigned: an own '__proto__' key must stay a key.
      if ((typeof x === 'object' && x !== null) || typeof x === 'function') defineProp(v, k, { value: sealTree(x, handler, depth + 1) });
    }
    freeze(v);
    // Functions are only frozen: their own properties are members like explore.replay, rarely assigned.
    if (typeof v === 'function') return v;
    const p = new ProxyC(v, handler);
    wsAdd(sealed, p);
    return p;
  }
  function live(read, write, name) {
    const refuse = (what) => {
      throw new TypeErr(name + ': ' + what + '; assign a key instead');
    };
    const p = new ProxyC({}, {
      get: (t, k) => (typeof k === 'string' ? read()[k] : undefined),
      set: (t, k, v) => {
        write(Str(k), v);
        return true;
      },
      has: (t, k) => typeof k === 'string' && hasOwn(read(), k),
      ownKeys: () => keys(read()),
      getOwnPropertyDescriptor: (t, k) => {
        const r = read();
        return typeof k === 'string' && hasOwn(r, k) ? { value: r[k], writable: true, enumerable: true, configurable: true } : undefined;
      },
      deleteProperty: (t, k) => refuse(Str(k) + ' cannot be deleted'),
      defineProperty: (t, k, d) => {
        if (!hasOwn(d, 'value') || d.get || d.set) refuse(Str(k) + ' cannot be an accessor');
        write(Str(k), d.value);
        return true;
      },
      preventExtensions: () => refuse('it is live and cannot be frozen'),
      setPrototypeOf: () => refuse('its prototype cannot be changed'),
    });
    wsAdd(lives, p);
    return p;
  }

  function errorInfo(e) {
    try {
      if (e instanceof Err) {
        const prefixName = e[ASSERTION] || !e.name || e.name === 'Error' ? '' : e.name + ': ';
        return { message: prefixName + Str(e.message), stack: typeof e.stack === 'string' ? e.stack : '' };
      }
      return { message: 'thrown: ' + fmt(e), stack: '' };
    } catch (_) {
      return { message: 'thrown: a value that cannot be described', stack: '' };
    }
  }

  // ---- promises a statement started without awaiting (transpile.ts markFloating) ----------
  let floating = [];
  function markFloating(v, line) {
    if ((typeof v === 'object' && v !== null) || typeof v === 'function') {
      if (isPromise(v)) {
        const entry = { line, rejected: false, reason: undefined, done: undefined };
        entry.done = promiseThen(v, noop, (e) => {
          entry.rejected = true;
          entry.reason = e;
        });
        floating.push(entry);
      }
    }
    return v;
  }
  const raceP = Promise.race.bind(Promise), allP = Promise.all.bind(Promise);
  /**
   * Give the promises left un-awaited a moment (host calls settle within it) and fail with the
   * first that rejected. One still pending after that is left: it never settled, it did not fail.
   */
  async function settleFloating() {
    if (floating.length > 0) {
      const batch = floating;
      floating = [];
      await raceP([allP(batch.map((f) => f.done)), later(FLOATING_GRACE_MS)]);
      for (const f of batch) {
        if (!f.rejected) continue;
        const e = f.reason;
        const info = errorInfo(e);
        throw AssertionError('a promise started at line ' + f.line + ' without await rejected: ' + info.message, e instanceof Err ? e : undefined);
      }
    }
  }
  const FLOATING_GRACE_MS = 50;
  Object.defineProperty(G, '__socFloating', { value: markFloating, writable: false, configurable: false, enumerable: false });

  G.test = test;
  G.describe = describe;
  G.expect = expect;
  G.console = console;

  return freeze({
    count: () => tests.length,
    info: (i) => ({ name: tests[i].name, fullName: tests[i].fullName, timeoutMs: tests[i].timeoutMs, seed: tests[i].seed, site: tests[i].site }),
    // After the module loaded: the promises its top-level statements left un-awaited.
    loaded: async () => {
      try {
        await settleFloating();
        return null;
      } catch (e) {
        floating = [];
        return errorInfo(e);
      }
    },
    run: async (i) => {
      started = true;
      try {
        await tests[i].fn();
        await settleFloating();
        return null;
      } catch (e) {
        floating = [];
        return errorInfo(e);
      }
    },
    errorInfo,
    // Tell the host how a promise settles, once: settled(id, 1, value) or settled(id, 0, reason).
    // Builtins captured before the script ran, which may have replaced Promise and its methods.
    // A module without top-level await evaluates to its namespace, not a promise: resolve() takes both.
    watch: (p, id) => {
      promiseThen(promiseResolve(p), (v) => settled(id, 1, v), (e) => settled(id, 0, e));
    },
    // Marshalling helpers: ask the sandbox's own builtins, which user code cannot have replaced yet.
    // One call per value: its kind, or for any other object its own enumerable keys as JSON, or
    // their count when there are more than the crossing may still carry (left).
    kind: (v, left) => (v === null ? 'null' : isArray(v) ? 'array' : isU8(v) ? 'u8' : isPromise(v) ? 'promise' : keysJSON(v, left)),
    seal: (v, what) => sealTree(v, readOnlyHandler(what), 0),
    makeError: (name, message) => {
      const C = hasOwn(ERRORS, name) ? ERRORS[name] : Err;
      const e = new C(message);
      if (C === Err) e.name = name;
      return e;
    },
    live,
    bytesOf: (u8) => sliceBuffer(bufferOf(u8), offsetOf(u8), offsetOf(u8) + lengthOf(u8)),
    u8: (buf) => new U8(buf),
  });
})`;
