import { describe, expect, it } from 'vitest';
import type { Finding } from '../core/findings';
import type { TestResult } from '../../shared/session-api';
import { runScript, type RunScriptOptions } from './run';

function run(source: string, more: Partial<RunScriptOptions> = {}) {
  return runScript({ source, fileName: 'suite.ts', bindings: {}, timeoutMs: 2000, ...more });
}

/** Status and message of each test, by name. */
async function outcomes(source: string, more: Partial<RunScriptOptions> = {}): Promise<Record<string, string>> {
  const r = await run(source, more);
  if (r.error) throw new Error(`load: ${r.error.message}`);
  return Object.fromEntries(r.tests.map((t) => [t.name, t.status === 'passed' ? 'passed' : (t.error?.message ?? 'failed')]));
}

const fakeSoc = {
  readl: async (pa: number) => pa + 1,
  now: () => 1234,
  mem: {
    read: async (_pa: number, len: number) => Uint8Array.from({ length: len }, (_, i) => i),
  },
  big: async () => 0x1_0000_0000n,
  bad: async () => {
    throw new Error('bus error at 0x1000');
  },
};

describe('harness: test, describe, ordering', () => {
  it('runs tests sequentially in declaration order with describe-prefixed names', async () => {
    const seen: string[] = [];
    const r = await run(
      `const order = [];
       test('a', async () => { await null; order.push('a'); });
       describe('outer', () => {
         test('b', () => { order.push('b'); });
         describe('inner', () => { test('c', () => { expect(order).toEqual(['a', 'b']); }); });
       });
       test('d', () => {});`,
      { onTest: (t) => seen.push(t.fullName) },
    );
    expect(r.ok).toBe(true);
    expect(r.tests.map((t) => t.fullName)).toEqual(['a', 'outer > b', 'outer > inner > c', 'd']);
    expect(seen).toEqual(['a', 'outer > b', 'outer > inner > c', 'd']);
    expect(r.tests.every((t) => t.durationMs >= 0 && t.findings.length === 0)).toBe(true);
  });

  it("imports from 'soc-console': named, renamed, namespace and type-only", async () => {
    const r = await run(
      `import { test, expect as check, soc } from 'soc-console';
       import * as sc from 'soc-console';
       import type { Finding } from 'soc-console';
       const none: Finding[] = [];
       test('x', async () => {
         check(await soc.readl(1)).toBe(2);
         sc.expect(sc.soc).toBe(soc);
         check(none).toHaveLength(0);
       });`,
      { bindings: { soc: fakeSoc } },
    );
    expect(r.error).toBeUndefined();
    expect(r.tests[0]?.status).toBe('passed');
  });

  it('streams console output', async () => {
    const lines: string[] = [];
    await run(`console.log('at load', 1, { a: [1, 2n] }, new Uint8Array([1, 255])); test('t', () => { console.error('oops'); });`, {
      onOutput: (stream, text) => lines.push(`${stream}: ${text}`),
    });
    expect(lines).toEqual(['log: at load 1 { a: [ 1, 2n ] } Uint8Array(2) [ 01 ff ]', 'error: oops']);
  });

  it('passes the test seed and timeout to beforeTest', async () => {
    const before: unknown[] = [];
    await run(`test('s', () => {}, { seed: 7 }); test('n', () => {}, { timeoutMs: 1234 });`, {
      hooks: { beforeTest: (t) => before.push(t), afterTest: () => [] },
    });
    expect(before).toEqual([
      { name: 's', fullName: 's', seed: 7, timeoutMs: 2000 },
      { name: 'n', fullName: 'n', timeoutMs: 1234 },
    ]);
  });

  it('rejects bindings that would hide the harness', async () => {
    await expect(run(`test('x', () => {})`, { bindings: { expect: 1 } })).rejects.toThrow(/expect/);
  });
});

describe('harness: matchers', () => {
  it('pass and fail with Jest-like messages, including .not', async () => {
    const o = await outcomes(`
      test('toBe', () => { expect(3).toBe(4); });
      test('toBe hex', () => { expect(0x1000).toBe(0x2000); });
      test('not.toBe', () => { expect(3).not.toBe(3); });
      test('toBe objects', () => { expect({ a: 1 }).toBe({ a: 1 }); });
      test('toEqual deep', () => {
        expect({ a: [1, { b: 2n }], u: new Uint8Array([1, 2]), skip: undefined }).toEqual({ a: [1, { b: 2n }], u: new Uint8Array([1, 2]) });
        expect(new Uint8Array([1, 2])).not.toEqual(new Uint8Array([1, 3]));
        expect(new Uint8Array([1, 2])).not.toEqual([1, 2]);
        expect(1n).not.toEqual(1);
        expect(new Map([[1, { a: 1 }]])).toEqual(new Map([[1, { a: 1 }]]));
      });
      test('toEqual fails', () => { expect([1, 2]).toEqual([1, 3]); });
      test('truthy', () => { expect(1).toBeTruthy(); expect(0).toBeFalsy(); expect('').not.toBeTruthy(); expect(0).toBeTruthy(); });
      test('compare', () => { expect(5).toBeGreaterThan(4); expect(5n).toBeLessThan(6n); expect(4).not.toBeGreaterThan(4); expect(2).toBeLessThan(1); });
      test('contain', () => { expect([1, 2]).toContain(2); expect('abc').toContain('b'); expect(new Uint8Array([9])).toContain(9); expect([{ a: 1 }]).not.toContain({ a: 1 }); expect([1]).toContain(3); });
      test('length', () => { expect([1, 2]).toHaveLength(2); expect('abc').toHaveLength(3); expect([]).toHaveLength(1); });
      test('matchObject', () => { expect({ a: 1, b: { c: 2, d: 3 } }).toMatchObject({ b: { c: 2 } }); expect({ a: 1 }).toMatchObject({ a: 2 }); });
      test('toThrow', () => {
        expect(() => { throw new TypeError('bad thing'); }).toThrow();
        expect(() => { throw new TypeError('bad thing'); }).toThrow('bad');
        expect(() => { throw new TypeError('bad thing'); }).toThrow(/thing$/);
        expect(() => { throw new TypeError('bad thing'); }).toThrow(TypeError);
        expect(() => {}).not.toThrow();
        expect(() => { throw new Error('x'); }).toThrow('y');
      });
      test('not.toThrow', () => { expect(() => { throw new Error('boom'); }).not.toThrow(); });
    `);
    expect(o).toEqual({
      toBe: 'expected 3 to be 4',
      'toBe hex': 'expected 4096 (0x1000) to be 8192 (0x2000)',
      'not.toBe': 'expected 3 not to be 3',
      'toBe objects': 'expected { a: 1 } to be { a: 1 } (they are equal but not the same object: use toEqual)',
      'toEqual deep': 'passed',
      'toEqual fails': 'expected [ 1, 2 ] to equal [ 1, 3 ]',
      truthy: 'expected 0 to be truthy',
      compare: 'expected 2 to be less than 1',
      contain: 'expected [ 1 ] to contain 3',
      length: 'expected [] to have length 1, but its length is 0',
      matchObject: 'expected { a: 1 } to match object { a: 2 }',
      toThrow: 'expected function to throw an error containing "y", but it threw Error: x',
      'not.toThrow': 'expected function not to throw an error, but it threw Error: boom',
    });
  });

  it('resolves and rejects, with .not', async () => {
    const o = await outcomes(
      `
      test('rejects ok', async () => { await expect(soc.bad()).rejects.toThrow('bus error'); await expect(soc.bad()).rejects.not.toThrow('other'); });
      test('resolves ok', async () => { await expect(soc.readl(1)).resolves.toBe(2); await expect(soc.big()).resolves.toEqual(0x100000000n); });
      test('rejects but resolved', async () => { await expect(soc.readl(1)).rejects.toThrow(); });
      test('resolves but rejected', async () => { await expect(soc.bad()).resolves.toBe(1); });
      test('rejects wrong', async () => { await expect(soc.bad()).rejects.toThrow(/timeout/); });
    `,
      { bindings: { soc: fakeSoc } },
    );
    expect(o).toEqual({
      'rejects ok': 'passed',
      'resolves ok': 'passed',
      'rejects but resolved': 'expected promise to reject, but it resolved with 2',
      'resolves but rejected': 'expected promise to resolve, but it rejected with Error: bus error at 0x1000',
      'rejects wrong': 'expected promise to reject with an error matching /timeout/, but it rejected with Error: bus error at 0x1000',
    });
  });

  it('copies Uint8Array, bigint and nested data both ways', async () => {
    const got: unknown[] = [];
    const r = await run(
      `test('t', async () => {
        const b = await soc.mem.read(0, 4);
        expect(b).toEqual(new Uint8Array([0, 1, 2, 3]));
        expect(await soc.big()).toBe(4294967296n);
        expect(soc.now()).toBe(1234);
        sink({ bytes: new Uint8Array([7, 8]).subarray(1), n: -0.5, big: -3n, list: [null, undefined, true, 'x'], nested: { deep: { deeper: [1] } } });
      });`,
      { bindings: { soc: fakeSoc, sink: (v: unknown) => void got.push(v) } },
    );
    expect(r.tests[0]?.error).toBeUndefined();
    expect(got).toEqual([{ bytes: new Uint8Array([8]), n: -0.5, big: -3n, list: [null, undefined, true, 'x'], nested: { deep: { deeper: [1] } } }]);
  });
});

describe('errors point at the TypeScript source', () => {
  it('maps an expect failure to the user line and column despite erased types', async () => {
    const r = await run(
      ['interface Regs { ttb: number }', '', "test('maps', async () => {", '  const r: Regs = { ttb: 1 };', '  const v: number = await soc.readl(r.ttb);', '  expect(v).toBe(3);', '});'].join('\n'),
      { bindings: { soc: fakeSoc } },
    );
    const e = r.tests[0]!.error!;
    expect(e).toMatchObject({ message: 'expected 2 to be 3', file: 'suite.ts', line: 6, column: 17 });
    expect(e.stack).toContain('suite.ts:6:17');
    expect(e.stack).not.toContain('harness');
  });

  it('locates a rejected host call at the awaiting line, and a thrown error through its frames', async () => {
    const r = await run(
      [
        'async function helper(): Promise<void> {',
        '  await soc.bad();',
        '}',
        "test('host', async () => {",
        '  await helper();',
        '});',
        'function deref(x: any): number {',
        '  return x.field;',
        '}',
        "test('thrown', () => {",
        '  deref(undefined);',
        '});',
      ].join('\n'),
      { bindings: { soc: fakeSoc } },
    );
    expect(r.tests[0]!.error).toMatchObject({ message: 'bus error at 0x1000', line: 2, column: 16 });
    expect(r.tests[1]!.error).toMatchObject({ message: expect.stringMatching(/^TypeError: cannot read property 'field' of undefined/), line: 8 });
    expect(r.tests[1]!.error!.stack).toMatch(/at deref \(suite\.ts:8:\d+\)\n.*suite\.ts:11:\d+/);
  });

  it('reports syntax errors at load with file, line and column', async () => {
    const r = await run(['// header', "test('x', () => {", '  const a: number = ;', '});'].join('\n'));
    expect(r.ok).toBe(false);
    expect(r.tests).toEqual([]);
    expect(r.error).toMatchObject({ file: 'suite.ts', line: 3, column: 21, message: 'Expression expected.' });
  });

  it('reports a load-time exception at its line', async () => {
    const r = await run(["test('x', () => {});", 'const cfg: { a?: { b: number } } = {};', 'console.log(cfg.a!.b);'].join('\n'));
    expect(r.error).toMatchObject({ file: 'suite.ts', line: 3, message: expect.stringMatching(/TypeError/) });
  });
});

describe('timeouts and findings', () => {
  it('stops a synchronous endless loop at its timeout, names the test, and goes on', async () => {
    const r = await run(["test('spins', () => {", '  let i = 0;', '  while (true) i++;', '}, { timeoutMs: 150 });', "test('next', () => {});"].join('\n'));
    const [spins, next] = r.tests as [TestResult, TestResult];
    expect(spins.status).toBe('failed');
    expect(spins.error?.message).toBe('test "spins" was stopped at its 150 ms timeout while running without a pause (an endless loop?)');
    // QuickJS places an interrupted frame at the start of its function; the error names the loop.
    expect(spins.error).toMatchObject({ line: 3, column: 3 });
    expect(spins.error?.stack).toMatch(/^ {4}at <anonymous> \(suite\.ts:3:3\)/);
    expect(next.status).toBe('passed');
    expect(r.ok).toBe(false);
  });

  it('stops a test whose promise never settles', async () => {
    const r = await run(["describe('g', () => {", "  test('hangs', () => new Promise(() => {}), { timeoutMs: 100 });", '});'].join('\n'));
    expect(r.tests[0]?.error).toMatchObject({
      message: 'test "g > hangs" timed out after 100 ms: it was still waiting (a promise that never settles?)',
      line: 2,
    });
  });

  it('names the loops of a function with several, where the stack cannot say which spins', async () => {
    const r = await run(['function f(n: number) {', '  for (let i = 0; i < n; i++) {}', '  for (;;) {}', '}', "test('spins', () => f(3), { timeoutMs: 150 });"].join('\n'));
    expect(r.tests[0]?.error?.message).toMatch(/an endless loop\?\); the function has loops at lines 2, 3$/);
  });

  it('a promise a test does not await fails the test when it rejects, naming the line', async () => {
    const r = await run(["test('lost', async () => {", "  Promise.reject(new Error('lost'));", '});', "test('fine', () => { Promise.resolve(1); });"].join('\n'));
    expect(r.tests.map((t) => [t.status, t.error?.message])).toEqual([
      ['failed', 'a promise started at line 2 without await rejected: lost'],
      ['passed', undefined],
    ]);
  });

  it('a top-level statement that leaves a rejecting promise un-awaited fails the load', async () => {
    const r = await run(["Promise.reject(new Error('at load'));", "test('never runs', () => {});"].join('\n'));
    expect(r.error).toMatchObject({ message: 'a promise started at line 1 without await rejected: at load', line: 1 });
    expect(r.tests).toEqual([]);
  });

  it('stops an endless loop at load time', async () => {
    const r = await run('for (;;) {}', { timeoutMs: 100 });
    expect(r.error?.message).toBe('loading the script was stopped at its 100 ms timeout while running without a pause (an endless loop?)');
    expect(r.error?.line).toBe(1);
  });

  it('fails a test that leaves an error-level finding untaken', async () => {
    const finding = (kind: Finding['kind'], severity: Finding['severity']): Finding => ({ kind, severity, message: `${kind} at 0x1000`, time: 5 });
    let pending: Finding[] = [];
    const r = await run(
      `test('clean', () => {});
       test('leaves one', () => { raise('error'); });
       test('warning only', () => { raise('warning'); });
       test('takes it', () => { raise('error'); expect(take()).toHaveLength(1); });`,
      {
        bindings: {
          raise: (sev: Finding['severity']) => void pending.push(finding(sev === 'error' ? 'stale-translation' : 'table-leak', sev)),
          take: () => pending.splice(0),
        },
        hooks: { beforeTest: () => void (pending = []), afterTest: () => pending.splice(0) },
      },
    );
    expect(r.tests.map((t) => t.status)).toEqual(['passed', 'failed', 'passed', 'passed']);
    expect(r.tests[1]!.error).toMatchObject({
      message: '1 error-level finding raised during the test was not taken:\n  stale-translation: stale-translation at 0x1000',
      line: 2,
    });
    expect(r.tests[1]!.findings).toHaveLength(1);
    expect(r.tests[2]!.findings.map((f) => f.severity)).toEqual(['warning']);
  });

  it('an abort signal stops the run before the next test', async () => {
    const ac = new AbortController();
    const r = await run(`test('one', () => { stop(); }); test('two', () => {});`, { bindings: { stop: () => ac.abort() }, signal: ac.signal });
    expect(r.tests.map((t) => t.name)).toEqual(['one']);
    expect(r.error?.message).toBe('the run was stopped');
  });
});

describe('event loop turns during a run', () => {
  it('gives the host event loop turns while a script keeps awaiting host calls, when allowed', async () => {
    let turns = 0;
    const timer = setInterval(() => turns++, 1);
    try {
      const started = Date.now();
      await runScript({
        source: `test('busy', async () => { const end = Date.now() + 300; while (Date.now() < end) await host.tick(); });`,
        fileName: 'busy.ts',
        bindings: { host: { tick: async () => 0 } },
        mayYield: () => true,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(turns).toBeGreaterThan(3);
    } finally {
      clearInterval(timer);
    }
  });

  it('stays in microtasks when not allowed (the explorer needs that)', async () => {
    let turns = 0;
    const timer = setInterval(() => turns++, 1);
    try {
      await runScript({
        source: `test('busy', async () => { const end = Date.now() + 100; while (Date.now() < end) await host.tick(); });`,
        fileName: 'busy.ts',
        bindings: { host: { tick: async () => 0 } },
      });
      expect(turns).toBe(0);
    } finally {
      clearInterval(timer);
    }
  });
});
