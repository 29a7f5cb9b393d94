/**
 * import-dt's options and exit codes with in-memory files and tools (the child-process runs are in
 * test/scenario/config-cli.test.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importDt, type ImportDtDeps } from './import-dt';

async function run(argv: string[], run: ImportDtDeps['run'] = () => null) {
  let stdout = '';
  let stderr = '';
  const written: Record<string, string> = {};
  const code = await importDt(argv, {
    readBytes: async (p) => {
      if (p === 'missing.dtb') throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      return new Uint8Array(readFileSync(p));
    },
    writeFile: async (p, t) => void (written[p] = t),
    run,
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  });
  return { code, stdout, stderr, written };
}

const H6 = 'test/fixtures/dt/sun50i-h6.dtb';

describe('import-dt CLI', () => {
  it('writes the config on stdout and the report to --report', async () => {
    const r = await run([H6, '--report', 'r.json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: 1, name: 'Test H6 board' });
    expect(JSON.parse(r.written['r.json']!)).toMatchObject({ source: H6, notMapped: [expect.objectContaining({ dtPath: '/soc/camera@6620000' })] });
  });

  it('takes the RAM from --memory, and refuses a malformed one', async () => {
    const r = await run([H6, '--memory', '0x40000000:0x20000000']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).memory).toEqual([{ name: 'dram', base: '0x40000000', size: '0x20000000' }]);
    expect(r.stderr).toContain('note: /memory@40000000: reg: replaced by the RAM given on the command line');
    for (const bad of ['0x40000000', '1:0', 'x:y', '0xffffffffff:0x1000']) {
      const b = await run([H6, '--memory', bad]);
      expect(b.code).toBe(2);
      expect(b.stderr).toContain('--memory must be BASE:SIZE');
    }
  });

  it('exit 2 when the imported config does not load, with its errors (RAM over an IOMMU window)', async () => {
    const r = await run(['test/fixtures/dt/compatibles.dtb', '--memory', '0x10000000:0x1000000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the imported config does not load: \/iommus\/0\/reg\/0\/base \(line \d+\): overlaps \/memory\/0/);
  });

  it('exit 2 for no file, two files, a missing file', async () => {
    expect((await run([])).stderr).toContain('no device tree given');
    expect((await run([H6, H6])).stderr).toContain('one device tree at a time');
    const m = await run(['missing.dtb']);
    expect([m.code, m.stderr]).toEqual([2, expect.stringContaining('missing.dtb: cannot read the device tree: no such file')]);
  });

  it('passes a .dts through cpp and dtc -@, with the include directories', async () => {
    const calls: { tool: string; args: string[] }[] = [];
    const blob = new Uint8Array(readFileSync(H6));
    const r = await run(['test/fixtures/dt/rk3399.dts', '-I', 'linux/include'], (tool, args) => {
      calls.push({ tool, args });
      return { status: 0, stdout: tool === 'cpp' ? new TextEncoder().encode('/dts-v1/; / {};') : blob, stderr: '' };
    });
    expect(r.code).toBe(0);
    expect(calls.map((c) => c.tool)).toEqual(['cpp', 'dtc']);
    expect(calls[0]!.args).toEqual(expect.arrayContaining(['-I', 'test/fixtures/dt', '-I', 'linux/include']));
    expect(calls[1]!.args).toEqual(expect.arrayContaining(['-@', '-I', 'dts', '-O', 'dtb']));
    const failed = await run(['test/fixtures/dt/sun50i-h6.dts'], () => ({ status: 1, stdout: new Uint8Array(), stderr: 'Error: syntax error at line 3' }));
    expect([failed.code, failed.stderr]).toEqual([2, expect.stringContaining('dtc failed:\nError: syntax error at line 3')]);
  });
});
