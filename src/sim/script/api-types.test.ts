/** The generated .d.ts is type-checked for real: a sample script compiles against it, mistakes do not. */
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { scriptApiDts } from './api-types';
import { defineBlock } from '../regs/dsl';

const H6 = defineBlock({
  type: 'test-iommu',
  size: 0x100,
  regs: [
    { name: 'RESET', offset: 0x10 },
    { name: 'ENABLE', offset: 0x20 },
    { name: 'TTB', offset: 0x50 },
  ],
});

/** Parsed lib files, shared by every check (parsing lib.es2020 dominates the time). */
const libCache = new Map<string, ts.SourceFile | undefined>();

function check(script: string, dts: string): string[] {
  const files: Record<string, string> = { '/soc-console.d.ts': dts, '/script.ts': script };
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.ESNext, lib: ['lib.es2020.d.ts'], types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError) => {
    if (name in files) return ts.createSourceFile(name, files[name]!, lang);
    if (!libCache.has(name)) libCache.set(name, getSourceFile(name, lang, onError));
    return libCache.get(name);
  };
  host.fileExists = (name) => name in files || ts.sys.fileExists(name);
  host.readFile = (name) => files[name] ?? ts.sys.readFile(name);
  const program = ts.createProgram(['/soc-console.d.ts', '/script.ts'], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
}

const SAMPLE = `
import { test, expect, describe, soc, kernel, explore, type Finding, type Domain } from 'soc-console';

describe('h6', () => {
  test('maps and reads back', async () => {
    const d: Domain = await kernel.domainAlloc('iommu0', 'unmanaged');
    expect(await kernel.attachDevice(d, 'de')).toBe(0);
    const pa = await kernel.allocPages(1);
    expect(await kernel.map(d, 0x1000, pa, 4096, kernel.IOMMU_READ | kernel.IOMMU_WRITE)).toBe(0);
    await soc.mem.write(pa, new Uint8Array([1, 2, 3, 4]));
    await soc.mem.clean(pa, 4);
    const r = await soc.device('de').dma.read(0x1000, 4);
    expect(r.ok).toBeTruthy();
    expect(r.data).toEqual(new Uint8Array([1, 2, 3, 4]));
    const ttb: number = await soc.reg('iommu0', 'TTB');
    await soc.setReg('iommu0', 'ENABLE', 1);
    expect(ttb).toBeGreaterThan(0);
    const tlb = soc.iommu('iommu0').tlb();
    expect(tlb.filter((e) => e.valid && e.perms.includes('read'))).toHaveLength(1);
    const kinds: Finding['kind'][] = soc.takeFindings().map((f) => f.kind);
    expect(kinds).not.toContain('stale-translation');
    kernel.driver('iommu0').variant.zapOrder = 'before-update';
    expect(kernel.pm.status('de')).toBe('active');
    const res = await explore({ threads: [async () => kernel.unmap(d, 0x1000, 4096), async () => soc.run(100)], mode: 'exhaustive', preemptionBound: 2 });
    expect(res.failures.map((f) => f.schedule)).toEqual([]);
    await expect(kernel.domainFree(d)).resolves.toBeUndefined();
    await expect(soc.readl(0n)).rejects.toThrow(/bus/);
    console.log(soc.config.iommus[0]?.model, soc.now());
  }, { timeoutMs: 5000, seed: 1 });
});
const f: Finding[] = soc.findings();
test('globals without import', () => { expect(f.length).toBeLessThan(1); });
`;

describe('scriptApiDts', () => {
  const dts = scriptApiDts([{ name: 'iommu0', meta: H6.meta }]);

  it('type-checks a script written against the API', () => {
    expect(check(SAMPLE, dts)).toEqual([]);
  });

  it('works as globals, without importing', () => {
    expect(check(`test('g', async () => { const v: number = await soc.readl(0x1000); expect(v).toBe(1); const d: Domain = await kernel.domainAlloc('iommu0'); void d; });`, dts)).toEqual([]);
  });

  it('rejects unknown registers, wrong argument types and unknown finding kinds', () => {
    const errors = check(
      `import { soc, kernel, type Finding } from 'soc-console';
       async function f() {
         await soc.reg('iommu0', 'NOPE');
         await soc.setReg('iommu0', 'TTB', 'x');
         await kernel.map(null, 0, 0, 4096, 1);
         const k: Finding['kind'] = 'not-a-kind';
         await soc.reg('other-block', 'TTB');
         soc.nothing();
       }`,
      dts,
    );
    expect(errors).toHaveLength(5);
    expect(errors.join('\n')).toMatch(/"NOPE"/);
    expect(errors.join('\n')).toMatch(/'nothing' does not exist/);
  });

  it('accepts block type descriptions and falls back to string without blocks', () => {
    const typed = scriptApiDts([{ type: 'test-iommu', registers: ['TTB'], instances: ['mmu'] }]);
    expect(check(`soc.reg('mmu', 'TTB'); soc.reg('whatever', 'TTB');`, typed)).toEqual([]);
    expect(check(`soc.reg('mmu', 'ENABLE');`, typed)).toHaveLength(1);
    expect(check(`soc.reg('anything', 'ANY');`, scriptApiDts([]))).toEqual([]);
  });
});
