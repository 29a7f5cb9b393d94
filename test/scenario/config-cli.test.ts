/**
 * Configs through the real CLI in a child process, as a user hits them: a bad config is exit 2
 * with the file, line and JSON path; `import-dt` writes a config that loads, and the presets'
 * scenario scripts (P6 on the H6 import, P1 on the RK3399 import) give the same verdicts on it as on
 * the preset; a .dts without dtc on the PATH says how to get it.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX_CLI = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const CLI = join(ROOT, 'src', 'main', 'cli', 'bringup.ts');
const PROBLEMS = join(ROOT, 'resources', 'examples', 'problems');
const DT = join(ROOT, 'test', 'fixtures', 'dt');
const tmp = mkdtempSync(join(tmpdir(), 'config-cli-'));

function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSX_CLI, CLI, ...args], { cwd: ROOT, timeout: 120_000, env, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const SCRIPT = join(PROBLEMS, 'p6-h6-unflushed-tables.ts');

function badConfig(name: string, edit: (c: { iommus: { reg: { size: unknown }[]; options?: Record<string, unknown> }[] }) => void): string {
  const c = JSON.parse(readFileSync(join(ROOT, 'resources', 'socs', 'sun50i-h6.soc.json'), 'utf8'));
  edit(c);
  const file = join(tmp, name);
  writeFileSync(file, JSON.stringify(c, null, 2));
  return file;
}

describe('bad configs through the CLI', () => {
  it('exit 2 naming file, line and path: an option out of range', async () => {
    const file = badConfig('tlb.soc.json', (c) => (c.iommus[0]!.options = { microTlbEntries: 2 ** 29 }));
    const r = await cli(['--soc', file, SCRIPT]);
    expect(r.code).toBe(2);
    const line = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes('"microTlbEntries"')) + 1;
    expect(r.stderr).toContain(`${file}:${line}: /iommus/0/options/microTlbEntries: must be <= 4096`);
  });

  it('exit 2 naming file, line and path: a register window the driver cannot use', async () => {
    const file = badConfig('win.soc.json', (c) => (c.iommus[0]!.reg[0]!.size = 16));
    const r = await cli(['--soc', file, SCRIPT]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+: /iommus/0/reg/0/size: cannot build the SoC: iommu0: the sun50i-h6 register file needs a window of at least 0x`));
  });
});

async function verdicts(soc: string, scripts: string[]): Promise<string[]> {
  const r = await cli(['--soc', soc, '--reporter', 'tap', ...scripts]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.split('\n').filter((l) => /^(not )?ok /.test(l.trim())).map((l) => l.trim().replace(/ # time=.*$/, ''));
}

describe('import-dt through the CLI', () => {
  it('imports the H6 tree; P6 gives the same verdicts as on the preset', async () => {
    const r = await cli(['import-dt', join(DT, 'sun50i-h6.dtb'), '--report', join(tmp, 'h6.report.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/1 IOMMUs, 5 masters/);
    expect(r.stderr).toContain('not mapped: /soc/camera@6620000');
    const soc = join(tmp, 'h6.soc.json');
    writeFileSync(soc, r.stdout);
    const report = JSON.parse(readFileSync(join(tmp, 'h6.report.json'), 'utf8'));
    expect(report.notMapped).toHaveLength(1);
    const p6 = [join(PROBLEMS, 'p6-h6-unflushed-tables.ts')];
    const got = await verdicts(soc, p6);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(await verdicts(join(ROOT, 'resources', 'socs', 'sun50i-h6.soc.json'), p6));
  }, 240_000);

  it('imports the RK3399 source through cpp and dtc when present; P1 gives the same verdicts as on the preset', async () => {
    const haveDtc = ['dtc', 'cpp'].every((t) => spawnSync(t, ['--version']).status === 0);
    const r = await cli(['import-dt', join(DT, haveDtc ? 'rk3399.dts' : 'rk3399.dtb')]);
    expect(r.code, r.stderr).toBe(0);
    const soc = join(tmp, 'rk3399.soc.json');
    writeFileSync(soc, r.stdout);
    const p1 = ['p1-rockchip-zap-order.ts', 'p1-rockchip-zap-order-explore.ts'].map((f) => join(PROBLEMS, f));
    const got = await verdicts(soc, p1);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(await verdicts(join(ROOT, 'resources', 'socs', 'rk3399.soc.json'), p1));
  }, 240_000);

  it('says how to get dtc and cpp when a .dts is given without them', async () => {
    const r = await cli(['import-dt', join(DT, 'rk3399.dts')], { ...process.env, PATH: join(tmp, 'no-tools') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs cpp, which is not on the PATH: .*apt-get install device-tree-compiler cpp/);
    const plain = await cli(['import-dt', join(DT, 'sun50i-h6.dts')], { ...process.env, PATH: join(tmp, 'no-tools') });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/needs dtc, which is not on the PATH: .*apt-get install device-tree-compiler cpp/);
  }, 120_000);

  it('exit 2 for a file that is not a device tree', async () => {
    const file = join(tmp, 'not-a-dt.dtb');
    writeFileSync(file, 'hello');
    const r = await cli(['import-dt', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('neither a device tree blob');
    const trunc = join(tmp, 'trunc.dtb');
    writeFileSync(trunc, readFileSync(join(DT, 'rk3399.dtb')).subarray(0, 200));
    const t = await cli(['import-dt', trunc]);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/not a valid device tree blob: header says \d+ bytes/);
  }, 120_000);
});
