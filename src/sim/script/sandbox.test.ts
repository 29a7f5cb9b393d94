/**
 * The sandbox is the security boundary: these scripts try to reach the host realm and must fail.
 * Each probe runs as a test body; what it reports comes back through a host binding as a copy.
 */
import { describe, expect, it } from 'vitest';
import { runScript } from './run';

async function probe(body: string, bindings: Record<string, unknown> = {}): Promise<unknown> {
  const reports: unknown[] = [];
  const r = await runScript({
    source: `test('probe', async () => { report(await (async () => { ${body} })()); });`,
    fileName: 'probe.ts',
    bindings: { report: (v: unknown) => void reports.push(v), ...bindings },
    timeoutMs: 2000,
  });
  if (r.error) throw new Error(`load: ${r.error.message}`);
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
       v.secret = 'changed'; v.nested.deep.push(3);
       const mine = [1];
       const n = soc.keep(mine);
       return [n, mine.length];`,
      { soc: fakeSoc },
    );
    expect(out).toEqual([2, 1]);
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

  it('runs are isolated: globals set by one script are gone in the next', async () => {
    await probe(`globalThis.leftover = 42; Object.prototype.polluted = 1; return 0;`);
    expect(await probe(`return [typeof leftover, ({}).polluted];`)).toEqual(['undefined', undefined]);
  });
});
