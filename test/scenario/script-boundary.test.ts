/**
 * What crosses the script boundary, through the real CLI as a user runs it (issues 11 and 12): live
 * variants, read-only returned copies, argument checks, bounded marshalling, timeouts that cannot
 * switch themselves off, endless loops located at the loop, un-awaited rejections, and outputs
 * into missing folders refused before anything runs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = join(ROOT, 'src', 'main', 'cli', 'bringup.ts');
const H6 = join(ROOT, 'resources', 'socs', 'sun50i-h6.soc.json');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TSX, [CLI, ...args], { cwd: ROOT, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'soc-boundary-'));
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** Each test passes only if the boundary holds; the report must be all ✓. */
const BOUNDARY = `const IOMMU = 'iommu0';
const IOVA = 0x1000_0000;

test('variant.flushTables = false takes effect: the walker reads stale tables', async () => {
  kernel.driver(IOMMU).variant.flushTables = false;
  expect(kernel.driver(IOMMU).variant.flushTables).toBe(false);
  const d = await kernel.domainAlloc(IOMMU);
  // The H6's masters share one group: iommu_attach_device refuses it (-EINVAL), the group attaches.
  expect(await kernel.attachGroup(d, kernel.group('ve'))).toBe(0);
  const pa = await kernel.allocPages(1);
  expect(await kernel.map(d, IOVA, pa, 0x1000, kernel.IOMMU_READ)).toBe(0);
  const r = await soc.device('ve').dma.read(IOVA, 4);
  expect(r.ok).toBe(false);
  expect(soc.takeFindings().map((f) => f.kind)).toContain('unflushed-walk');
  kernel.driver(IOMMU).variant.flushTables = true;
});

test('a bad variant key or value throws, naming the allowed ones', () => {
  const v = kernel.driver(IOMMU).variant;
  expect(() => { (v as any).nope = 1; }).toThrow("iommu0: the driver has no variant 'nope' (its variants: flushTables, detachBeforeFree, programInResumeOnly, invalidateOnSwitch, leaveDomain, mapBeforeAttach)");
  expect(() => { (v as any).flushTables = 'no'; }).toThrow(TypeError);
  expect(() => kernel.driver(IOMMU).setVariant({ flushTables: 0 as any })).toThrow('iommu0: variant flushTables must be true or false, got 0');
  expect(v.flushTables).toBe(true);
});

test('returned copies are read-only: assignments throw a TypeError naming the API', async () => {
  const d = await kernel.domainAlloc(IOMMU);
  expect(() => { (d as any).id = 99; }).toThrow("cannot assign to 'id': the value kernel.domainAlloc() returned is a read-only copy");
  expect(() => { (soc.config as any).name = 'x'; }).toThrow("cannot assign to 'name': the global soc is a read-only copy");
  const sloppy = new Function('c', 'c.iommus[0].name = "x"; return "ignored";');
  expect(() => sloppy(soc.config)).toThrow(TypeError);
  expect(() => { (kernel as any).allocPages = null; }).toThrow('the global kernel is a read-only copy');
});

test('arguments are checked: allocPages overflow, negative, NaN; writel and setReg values', async () => {
  await expect(kernel.allocPages(262145)).rejects.toThrow('ENOMEM');
  await expect(kernel.allocPages(-1)).rejects.toThrow('kernel.allocPages: argument 1 (count) must be a positive integer, got -1');
  await expect(kernel.allocPages(NaN)).rejects.toThrow('got NaN');
  await expect(soc.writel(NaN, 0x01c0_e000)).rejects.toThrow('soc.writel: argument 1 (value) must be a 32-bit integer');
  await expect(soc.setReg(IOMMU, 'TTB', '0x1000' as any)).rejects.toThrow('soc.setReg: argument 3 (value) must be a 32-bit integer');
  await expect(soc.setReg(IOMMU, 'TTB', {} as any)).rejects.toThrow(TypeError);
  expect(() => soc.iommu(42 as any)).toThrow('soc.iommu: argument 1 (name) must be a non-empty string, got 42');
});

test('marshalling is bounded: a sparse array of 2^32-1 and a Proxy of 1e8 are refused', async () => {
  const pa = await kernel.allocPages(1);
  const sparse: number[] = [];
  sparse.length = 2 ** 32 - 1;
  expect(() => soc.mem.write(pa, sparse)).toThrow(RangeError);
  const big = new Proxy([] as number[], { get: (t, k) => (k === 'length' ? 1e8 : 0) });
  expect(() => soc.mem.write(pa, big)).toThrow('too large to pass to the host');
});

test('explore workers are bounded by the cores', async () => {
  await expect(explore({ threads: [async () => {}], workers: 1e9 })).rejects.toThrow(/explore: workers must be at most \\d+ \\(one per core of this machine\\), got 1000000000/);
});
`;

describe('the script boundary through the CLI', () => {
  it('live variants, read-only copies, checked arguments and bounded marshalling', async () => {
    const r = await cli(['--soc', H6, write('boundary.ts', BOUNDARY)]);
    expect(r.stdout).not.toContain('✗');
    expect({ code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ code: 0, out: '' });
    expect(r.stdout).toContain('6 passed, 0 failed');
  });

  it('a timeout that would switch itself off, an endless loop and an un-awaited rejection fail clearly', async () => {
    const infinite = write('infinite.ts', `test('spins forever', () => {\n  for (;;) {}\n}, { timeoutMs: Infinity });\n`);
    const huge = write('huge.ts', `test('spins long', () => {\n  for (;;) {}\n}, { timeoutMs: 2 ** 31 });\n`);
    const loop = write('loop.ts', `function spin(): void {\n  const x = 1;\n  while (x) {}\n}\ntest('spins', () => {\n  spin();\n});\n`);
    const rejects = write('rejects.ts', `test('forgets an await', async () => {\n  kernel.allocPages(-1);\n});\n`);
    const t0 = Date.now();
    const r = await cli(['--soc', H6, '--timeout', '500', infinite, huge, loop, rejects]);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`test("spins forever"): timeoutMs must be a number of milliseconds from 1 to 3600000, got Infinity\n      at ${infinite}:1`);
    expect(r.stdout).toContain('test("spins long"): timeoutMs must be a number of milliseconds from 1 to 3600000, got 2147483648');
    expect(r.stdout).toContain(`test "spins" was stopped at its 500 ms timeout while running without a pause (an endless loop?)\n      at ${loop}:3:3`);
    expect(r.stdout).toContain('a promise started at line 2 without await rejected: TypeError: kernel.allocPages: argument 1 (count) must be a positive integer, got -1');
  });

  it('--out or --emit-types into a missing folder exits 2 before anything runs', async () => {
    const script = write('never.ts', `test('runs', () => { throw new Error('should not run'); });\n`);
    const out = join(dir, 'no-such-dir', 'report.xml');
    const r = await cli(['--soc', H6, '--out', out, script]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`bringup: --out ${out}: the folder ${join(dir, 'no-such-dir')} does not exist`);
    expect(r.stdout).toBe('');
  });
});
