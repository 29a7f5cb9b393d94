/**
 * The sandbox is the security boundary: these scripts try to reach the host realm and must fail.
 * Each probe runs as a test body; what it reports comes back through a host binding as a copy.
 */
import { describe, expect, it } from 'vitest';
import { liveRecord } from '../core/live-record';
import { MAX_VALUES_PER_CROSSING } from './marshal';
import { runScript } from './run';

async function probe(body: string, bindings: Record<string, unknown> = {}): Promise<unknown> {
  const reports: unknown[] = [];
  const r = await runScript({
    source: `test('probe', async () => { report(await (async () => { ${body} })()); });`,
    fileName: 'probe.ts',
    bindings: { report: (v: unknown) => void reports.push(v), ...bindings },
    timeoutMs: 2000,
    // A handle the bridge leaves alive aborts the runtime's teardown: no probe may cause one.
    onOutput: (_stream, text) => {
      if (text.startsWith('internal:')) reports.unshift({ internal: text });
    },
  });
  if (r.error) throw new Error(`load: ${r.error.message}`);
  const internal = reports.find((x) => typeof x === 'object' && x !== null && 'internal' in x);
  if (internal) throw new Error(JSON.stringify(internal));
  const t = r.tests[0]!;
  if (t.status === 'failed') return { failed: t.error?.message };
  return reports[0];
}

const hostObj = { secret: 'x', nested: { deep: [1, 2] } };
const fakeSoc = {
  obj: async () => hostObj,
  bytes: async () => new Uint8Array([1, 2, 3]),
  fail: async () => {
    throw new TypeError('host says no');
  },
  failSync: () => {
    throw new Error('sync no');
  },
  keep: (arr: number[]) => {
    arr.push(99);
    return arr.length;
  },
};

describe('sandbox: no way out', () => {
  it('has no require, process, module system, timers, network or host globals', async () => {
    const names = ['require', 'process', 'module', 'exports', 'Buffer', 'global', 'std', 'os', 'print', 'fetch', 'XMLHttpRequest', 'WebAssembly', 'setTimeout', 'setImmediate', 'queueMicrotask', 'SharedArrayBuffer' + 'X'];
    const types = (await probe(`return [${names.map((n) => `typeof ${n}`).join(', ')}];`)) as string[];
    expect(types).toEqual(names.map(() => 'undefined'));
  });

  it('Function constructors only reach the sandbox global', async () => {
    expect(await probe(`return globalThis.constructor.constructor('return typeof process')();`)).toBe('undefined');
    expect(await probe(`return Function('return this')() === globalThis;`)).toBe(true);
    expect(await probe(`try { globalThis.constructor.constructor('return process')(); return 'escaped'; } catch (e) { return String(e); }`)).toMatch(/ReferenceError: .*process/);
    expect(await probe(`const AsyncFn = (async () => {}).constructor; return await AsyncFn('return typeof require + typeof process')();`)).toBe('undefinedundefined');
    expect(await probe(`const GenFn = (function* () {}).constructor; return GenFn('yield this')().next().value === globalThis;`)).toBe(true);
    expect(await probe(`return (0, eval)('this') === globalThis;`)).toBe(true);
  });

  it('`this` is undefined in module code and in test functions', async () => {
    expect(await probe(`return [typeof this, (function () { return typeof this; })()];`)).toEqual(['undefined', 'undefined']);
  });

  it('import() of anything fails, and a static import is refused at load', async () => {
    expect(await probe(`try { await import('fs'); return 'escaped'; } catch (e) { return String(e); }`)).toMatch(/could not load module 'fs'/);
    expect(await probe(`try { await import('soc-console'); return 'escaped'; } catch (e) { return String(e); }`)).toMatch(/could not load module/);
    const r = await runScript({ source: `import { readFileSync } from 'fs';\ntest('x', () => {});`, fileName: 'imp.ts', bindings: {} });
    expect(r.error).toMatchObject({ file: 'imp.ts', line: 1, column: 30 });
    expect(r.error?.message).toMatch(/cannot import 'fs'/);
  });

  it('values returned by host calls are sandbox copies: their prototypes lead nowhere', async () => {
    const out = (await probe(
      `const v = await soc.obj();
       const b = await soc.bytes();
       return [
         Object.getPrototypeOf(v) === Object.prototype,
         v.constructor.constructor('return typeof process')(),
         Object.getPrototypeOf(v.nested.deep) === Array.prototype,
         b instanceof Uint8Array && b.buffer instanceof ArrayBuffer,
         b.constructor.constructor('return this')() === globalThis,
         soc.obj.constructor === Function,
         soc.obj.constructor('return typeof require')(),
         Object.getPrototypeOf(soc) === Object.prototype,
       ];`,
      { soc: fakeSoc },
    )) as unknown[];
    expect(out).toEqual([true, 'undefined', true, true, true, true, 'undefined', true]);
  });

  it('errors thrown by host calls are sandbox errors carrying only the message', async () => {
    const out = (await probe(
      `const got = [];
       for (const call of [() => soc.fail(), async () => soc.failSync()]) {
         try { await call(); } catch (e) {
           got.push(e instanceof Error, Object.getPrototypeOf(Object.getPrototypeOf(e)) === Error.prototype || Object.getPrototypeOf(e) === Error.prototype,
             e.constructor.constructor('return typeof process')(), e.message, Object.keys(e).filter((k) => k !== 'name' && k !== 'message').join(), typeof e.stack);
         }
       }
       return got;`,
      { soc: fakeSoc },
    )) as unknown[];
    expect(out).toEqual([true, true, 'undefined', 'host says no', '', 'string', true, true, 'undefined', 'sync no', '', 'string']);
  });

  it('mutations do not cross the boundary in either direction', async () => {
    const out = await probe(
      `const v = await soc.obj();
       const mine = [1];
       const n = soc.keep(mine);
       const copy = { ...v, secret: 'changed' };
       return [n, mine.length, copy.secret];`,
      { soc: fakeSoc },
    );
    expect(out).toEqual([2, 1, 'changed']);
    expect(hostObj).toEqual({ secret: 'x', nested: { deep: [1, 2] } });
  });

  it('a sandbox function handed to the host can be called back, and stays in the sandbox', async () => {
    let seenType = '';
    const explore = async (spec: { threads: Array<() => Promise<unknown>> }): Promise<unknown[]> => {
      seenType = typeof spec.threads[0];
      return Promise.all(spec.threads.map((t) => t()));
    };
    const out = await probe(`return await explore({ threads: [async () => 1, async () => { await null; return [2n, 'x']; }] });`, { explore });
    expect(seenType).toBe('function');
    expect(out).toEqual([1, [2n, 'x']]);
  });

  it('the memory limit stops a runaway allocation, and the next test still runs', async () => {
    const r = await runScript({
      source: `test('hog', () => { const a = []; for (;;) a.push(new Uint8Array(1 << 22)); });\ntest('after', () => { expect(1).toBe(1); });`,
      fileName: 'mem.ts',
      bindings: {},
      memoryLimitBytes: 32 * 1024 * 1024,
    });
    expect(r.tests.map((t) => t.status)).toEqual(['failed', 'passed']);
    expect(r.tests[0]!.error?.message).toMatch(/out of memory/);
  });

  it('endless recursion is a stack overflow error, not a crash', async () => {
    expect(await probe(`const f = (n) => f(n + 1) + 1; try { f(0); return 'no'; } catch (e) { return String(e); }`)).toBe('InternalError: stack overflow');
  });

  it('objects still cross whole after the script replaced the builtins the copy could use', async () => {
    const body = `Array.prototype.toJSON = () => 'x'; Array.prototype.map = null; Array.prototype.join = null; JSON.stringify = () => '"y"'; Object.keys = () => ['z'];
      return { a: 1, 'b"c': [2, { d: 3 }] };`;
    expect(await probe(body)).toEqual({ a: 1, 'b"c': [2, { d: 3 }] });
  });

  it('a script that replaces Promise and its methods still has its tests and host calls awaited', async () => {
    const body = `const P = Promise; Promise.resolve = () => { throw new Error('hijacked'); }; P.prototype.then = function () { throw new Error('hijacked'); }; globalThis.Promise = null;
      return (await soc.obj()).secret;`;
    expect(await probe(body, { soc: fakeSoc })).toBe('x');
  });

  it('objects still cross whole after the script replaced the builtins the copy could use', async () => {
    const body = `Array.prototype.toJSON = () => 'x'; Array.prototype.map = null; Array.prototype.join = null; JSON.stringify = () => '"y"'; Object.keys = () => ['z'];
      return { a: 1, 'b"c': [2, { d: 3 }] };`;
    expect(await probe(body)).toEqual({ a: 1, 'b"c': [2, { d: 3 }] });
  });

  it('runs are isolated: globals set by one script are gone in the next', async () => {
    await probe(`globalThis.leftover = 42; Object.prototype.polluted = 1; return 0;`);
    expect(await probe(`return [typeof leftover, ({}).polluted];`)).toEqual(['undefined', undefined]);
  });
});

describe('sandbox: what the API returns is never silently ignored', () => {
  const err = (body: string): string => `try { ${body}; return 'no error'; } catch (e) { return e.constructor.name + ': ' + e.message; }`;

  it('a returned copy is read-only, deeply: assignments, deletes and defines throw a TypeError naming the API', async () => {
    const out = await probe(
      `const v = await soc.obj();
       return [
         (() => { ${err("v.secret = 'changed'")} })(),
         (() => { ${err('v.nested.deep.push(3)')} })(),
         (() => { ${err('delete v.nested')} })(),
         (() => { ${err("Object.defineProperty(v, 'x', { value: 1 })")} })(),
         (() => { ${err('soc.obj = null')} })(),
         Object.isFrozen(v.nested.deep), v.secret, JSON.stringify(v), Object.freeze(v) === v,
       ];`,
      { soc: fakeSoc },
    );
    expect(out).toEqual([
      "TypeError: cannot assign to 'secret': the value soc.obj() returned is a read-only copy (changing it would change nothing)",
      "TypeError: cannot assign to '2': the value soc.obj() returned is a read-only copy (changing it would change nothing)",
      "TypeError: cannot delete 'nested': the value soc.obj() returned is a read-only copy (changing it would change nothing)",
      "TypeError: cannot define 'x': the value soc.obj() returned is a read-only copy (changing it would change nothing)",
      "TypeError: cannot assign to 'obj': the global soc is a read-only copy (changing it would change nothing)",
      true,
      'x',
      '{"secret":"x","nested":{"deep":[1,2]}}',
      true,
    ]);
  });

  it('sloppy-mode code (new Function, indirect eval) gets the same TypeError, not a silent no-op', async () => {
    const out = await probe(
      `const v = await soc.obj();
       const sloppy = new Function('v', 'try { v.secret = 1; return "ignored"; } catch (e) { return e.message; }');
       const viaEval = (0, eval)('(function (v) { try { v.nested.deep[0] = 9; return "ignored"; } catch (e) { return e.message; } })');
       return [sloppy(v), viaEval(v), v.nested.deep[0]];`,
      { soc: fakeSoc },
    );
    expect(out).toEqual([
      "cannot assign to 'secret': the value soc.obj() returned is a read-only copy (changing it would change nothing)",
      "cannot assign to '0': the value soc.obj() returned is a read-only copy (changing it would change nothing)",
      1,
    ]);
  });

  it('Uint8Arrays returned stay the script\'s own buffers', async () => {
    expect(await probe(`const b = await soc.bytes(); b[0] = 9; return Array.from(b);`, { soc: fakeSoc })).toEqual([9, 2, 3]);
  });

  it('a live record reads and writes through to its owner, checked there', async () => {
    const variant: Record<string, boolean> = { flush: true };
    const drv = {
      driver: () => ({
        variant: liveRecord('drv.variant', {
          read: () => ({ ...variant }),
          write: (k, v) => {
            if (!(k in variant)) throw new TypeError(`no variant '${k}' (its variants: flush)`);
            if (typeof v !== 'boolean') throw new TypeError(`variant ${k} must be true or false`);
            variant[k] = v;
          },
        }),
      }),
    };
    const out = await probe(
      `const v = drv.driver().variant;
       v.flush = false;
       const sloppy = new Function('v', 'try { v.nope = 1; return "ignored"; } catch (e) { return e.constructor.name + ": " + e.message; }');
       return [drv.driver().variant.flush, Object.keys(v), JSON.stringify(v), 'flush' in v, sloppy(v),
         (() => { ${err('v.flush = 1')} })(), (() => { ${err('delete v.flush')} })(), (() => { ${err('Object.freeze(v)')} })()];`,
      { drv },
    );
    expect(out).toEqual([
      false,
      ['flush'],
      '{"flush":false}',
      true,
      "TypeError: no variant 'nope' (its variants: flush)",
      'TypeError: variant flush must be true or false',
      'TypeError: drv.variant: flush cannot be deleted; assign a key instead',
      'TypeError: drv.variant: it is live and cannot be frozen; assign a key instead',
    ]);
    expect(variant).toEqual({ flush: false });
  });
});

describe('sandbox: marshalling is bounded before anything is copied', () => {
  const sink = { take: (v: unknown) => (Array.isArray(v) ? v.length : typeof v === 'object' && v !== null ? Object.keys(v).length : 0) };

  it.each([
    ['a sparse array of length 2^32-1', 'const a = []; a.length = 2 ** 32 - 1; return a;'],
    ['a Proxy claiming 1e8 items', 'return new Proxy([], { get: (t, k) => (k === "length" ? 1e8 : 0) });'],
    ['nested arrays that add up', `const row = new Array(${MAX_VALUES_PER_CROSSING / 2}).fill(0); return [row, row, row];`],
  ])('%s is refused with a clear error', async (_what, make) => {
    const out = await probe(`const v = (() => { ${make} })(); try { sink.take(v); return 'copied'; } catch (e) { return e.constructor.name + ': ' + e.message; }`, { sink });
    expect(out).toMatch(/^RangeError: a value with \d+ items or keys is too large to pass to the host \(at most 1048576 per call/);
  });

  it('an object with millions of keys is refused too', async () => {
    const r = await runScript({
      source: `test('keys', () => { const o = {}; for (let i = 0; i < 1.2e6; i++) o['k' + i] = 0; sink.take(o); });`,
      fileName: 'keys.ts',
      bindings: { sink },
      timeoutMs: 50_000,
    });
    expect(r.tests[0]!.error?.message).toMatch(/^RangeError: a value with 1200000 items or keys is too large/);
  }, 60_000);

  it('an own __proto__ key stays a plain key in both directions', async () => {
    let got: unknown;
    const out = await probe(
      `const o = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
       host.take(o);
       const back = await host.give();
       return [Object.getPrototypeOf(back) === Object.prototype, Object.keys(back), back.polluted];`,
      {
        host: {
          take: (v: unknown) => void (got = v),
          give: async () => JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
        },
      },
    );
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(Object.keys(got as object)).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(out).toEqual([true, ['__proto__'], undefined]);
  });

  it('tampering with Symbol.hasInstance breaks only the script', async () => {
    const r = await runScript({
      source: `
        test('tamper', async () => {
          for (const C of [Uint8Array, Promise, Error, Array, Object]) Object.defineProperty(C, Symbol.hasInstance, { value: () => { throw new Error('trap'); } });
          host.take({ a: [1, 2] }, new Uint8Array([1, 2]));
          expect(await host.echo(new Uint8Array([7]))).toEqual(new Uint8Array([7]));
          throw new TypeError('after tampering');
        });
        test('still runs', () => {});`,
      fileName: 'tamper.ts',
      bindings: { host: { take: () => undefined, echo: async (b: Uint8Array) => b } },
      timeoutMs: 2000,
    });
    expect(r.tests.map((t) => t.status)).toEqual(['failed', 'passed']);
    expect(r.tests[0]!.error?.message).toMatch(/after tampering|trap|cannot be described/);
  });
});

