import { describe, expect, it } from 'vitest';
import { transpileScript } from './transpile';

describe('transpileScript', () => {
  it('maps generated positions back to the TypeScript source', () => {
    const src = ['type T = { a: number };', '', 'const x: T = { a: 1 };', 'function f(v: number): number {', '  return v + x.a;', '}'].join('\n');
    const tr = transpileScript(src, 'm.ts');
    if (!tr.ok) throw new Error(tr.error.message);
    const lines = tr.js.split('\n');
    const ret = lines.findIndex((l) => l.includes('return v + x.a'));
    const col = lines[ret]!.indexOf('x.a') + 1;
    expect(tr.map.original({ line: ret + 1, column: col })).toEqual({ line: 5, column: 14 });
  });

  it("rewrites imports of 'soc-console' and refuses any other module", () => {
    const ok = transpileScript(`import { test, expect as e } from 'soc-console';\nimport * as sc from 'soc-console';\nimport type { Finding } from 'soc-console';\ntest('x', () => e(sc).toBeTruthy());`, 'i.ts');
    if (!ok.ok) throw new Error(ok.error.message);
    expect(ok.js).not.toMatch(/\bimport\b/);
    expect(ok.js).toContain('const e = globalThis.expect;');
    expect(ok.js).toMatch(/const sc = Object\.freeze\(\{/);

    const bad = transpileScript(`// x\nimport x from 'soc-console';`, 'd.ts');
    expect(bad).toMatchObject({ ok: false, error: { file: 'd.ts', line: 2, column: 8 } });
    const other = transpileScript(`export * from './other';`, 'o.ts');
    expect(other).toMatchObject({ ok: false, error: { line: 1, column: 15, message: "scripts can only import 'soc-console'" } });
  });

  it('reports the first syntax error with its position', () => {
    const r = transpileScript('test("x", () => {\n  let = ;\n});', 's.ts');
    expect(r).toMatchObject({ ok: false, error: { file: 's.ts', line: 2 } });
  });
});
