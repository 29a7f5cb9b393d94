/**
 * C drivers end to end: our sun50i-iommu.c fixture compiled by the npm toolchain (cold, into a
 * temporary cache folder), run through the session beside the TypeScript driver on the P6, P7 and
 * P9 scenario scripts, explored and replayed; and the failure paths a user meets: a compile error,
 * an unsupported kernel symbol, WARN_ON, BUG_ON and a wasm trap.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScriptRunResult } from '../../shared/session-api';
import { Session } from '../../sim/session';
import { CDriverBuilder } from './cdriver-build';
import { resourcesDir } from './resources';

const resources = resourcesDir();
const here = join(resources, '..', 'src', 'main', 'host', 'testdata');
const presetFile = join(resources, 'socs', 'sun50i-h6.soc.json');
const COMPILE_MS = 600_000;

let cacheDir: string;
let builder: CDriverBuilder;

beforeAll(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'soc-console-cdriver-'));
  builder = new CDriverBuilder({ cacheDir });
});

afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

function newSession(): Session {
  return new Session({ emit: () => undefined, heartbeat: () => undefined, buildDriver: (r) => builder.build(r) });
}

/** The H6 preset with iommu0 driven by a C file (defines make the historic variants switchable at run time). */
function h6WithDriver(source: string, defines: Record<string, string | number | boolean> = {}): string {
  const cfg = JSON.parse(readFileSync(presetFile, 'utf8')) as { iommus: Record<string, unknown>[] };
  cfg.iommus[0]!['driver'] = { source, defines };
  return JSON.stringify(cfg, null, 2);
}

const RUNTIME_VARIANTS = {
  SUN50I_FLUSH_TABLES: 'soc_variant("flushTables", 1)',
  SUN50I_DETACH_BEFORE_FREE: 'soc_variant("detachBeforeFree", 0)',
  SUN50I_INVALIDATE_ON_SWITCH: 'soc_variant("invalidateOnSwitch", 1)',
};

const verdicts = (r: ScriptRunResult): { name: string; status: string; error?: string; findings: string[] }[] =>
  r.tests.map((t) => ({ name: t.name, status: t.status, ...(t.error ? { error: t.error.message } : {}), findings: t.findings.map((f) => f.kind) }));

describe('our sun50i-iommu.c on the H6', () => {
  const c = newSession();
  const ts = newSession();

  beforeAll(async () => {
    const loaded = await c.loadConfigAsync(h6WithDriver(join(resources, 'drivers', 'sun50i-iommu.c'), RUNTIME_VARIANTS), presetFile);
    expect(loaded).toMatchObject({ ok: true });
    expect(ts.loadConfig(readFileSync(presetFile, 'utf8'), presetFile)).toMatchObject({ ok: true });
  }, COMPILE_MS);

  for (const p of ['p6-h6-unflushed-tables.ts', 'p7-h6-free-live-domain.ts', 'p9-h6-domain-switch.ts']) {
    it(`${p}: the same verdicts and findings as the TypeScript driver`, async () => {
      const source = readFileSync(join(resources, 'examples', 'problems', p), 'utf8');
      const viaTs = await ts.runScript({ source, fileName: p }, 1);
      const viaC = await c.runScript({ source, fileName: p }, 2);
      expect(viaTs.ok).toBe(true);
      expect(verdicts(viaC)).toEqual(verdicts(viaTs));
    });
  }

  it('kernel.driver(name).source names the C file; a warm build comes from the cache', async () => {
    const r = await c.runScript({ source: `test('src', () => { console.log(kernel.driver('iommu0').source); expect(kernel.driver('iommu0').source.endsWith('/sun50i-iommu.c')).toBe(true); });`, fileName: 'src.ts' }, 3);
    expect(r.ok).toBe(true);
    expect(c.inspectIommu('iommu0').driverSource).toBe(join(resources, 'drivers', 'sun50i-iommu.c'));
    expect(ts.inspectIommu('iommu0').driverSource).toBeUndefined();
    const t0 = Date.now();
    const again = await builder.build({ source: join(resources, 'drivers', 'sun50i-iommu.c'), defines: RUNTIME_VARIANTS, includes: [] });
    expect(again).toMatchObject({ ok: true, cached: true });
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('the explorer preempts inside the C driver, and replay steps name its functions and lines', async () => {
    const r = await c.runScript(
      {
        source: `test('race', async () => {
          const d = await kernel.domainAlloc('iommu0');
          expect(await kernel.attachGroup(d, kernel.group('ve'))).toBe(0);
          const pa = await kernel.allocPages(2);
          const spec = {
            threads: [
              async () => expect(await kernel.map(d, 0x2000_0000, pa, 0x1000, 3)).toBe(0),
              async () => expect(await kernel.map(d, 0x2000_1000, pa + 0x1000, 0x1000, 3)).toBe(0),
            ],
            check: async () => {
              expect(await kernel.iovaToPhys(d, 0x2000_0000)).toBe(pa);
              expect(await kernel.iovaToPhys(d, 0x2000_1000)).toBe(pa + 0x1000);
            },
          };
          const res = await explore({ ...spec, mode: 'random', runs: 30, seed: 3 });
          expect(res.failures).toEqual([]);
          expect(res.runs).toBe(30);
          const rep = await explore.replay([], spec);
          const wheres = rep.steps.map((s) => s.where ?? '');
          expect(wheres.some((w) => /^wr \\(sun50i-iommu\\.c:\\d+\\)$/.test(w))).toBe(true);
          expect(wheres.some((w) => /^h6_iotlb_sync_map \\(sun50i-iommu\\.c:\\d+\\)$/.test(w))).toBe(true);
          expect(wheres.some((w) => /^pt_for \\(sun50i-iommu\\.c:\\d+\\)$/.test(w))).toBe(true);
          expect(rep.steps.some((s) => s.kind === 'mem-write' && s.where)).toBe(true);
          await kernel.detachGroup(d, kernel.group('ve'));
        });`,
        fileName: 'race.ts',
      },
      5,
    );
    expect(r.tests[0]?.error?.message).toBeUndefined();
  });
});

describe('what a user meets when the C driver is wrong', () => {
  it('a compile error is a config error at file:line:column', async () => {
    const file = join(here, 'syntax-error.c');
    const r = await newSession().loadConfigAsync(h6WithDriver(file), presetFile);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toMatchObject({ file, line: 5, column: 9, path: '/iommus/0/driver' });
    expect(r.errors[0]!.message).toMatch(/^error: use of undeclared identifier 'undeclared_thing'/);
  }, COMPILE_MS);

  it('an unsupported kernel symbol names the symbol and the driver line', async () => {
    const file = join(here, 'unsupported.c');
    const r = await newSession().loadConfigAsync(h6WithDriver(file), presetFile);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ file, line: 4 });
    expect(r.errors[0]!.message).toContain("unsupported kernel symbol 'iommu_frobnicate'");
  }, COMPILE_MS);

  it('WARN_ON, BUG_ON and a wasm trap become findings with the C file and line', async () => {
    const s = newSession();
    expect(await s.loadConfigAsync(h6WithDriver(join(here, 'oops-iommu.c')), presetFile)).toMatchObject({ ok: true });
    const r = await s.runScript(
      {
        source: `test('oops', async () => {
          const d = await kernel.domainAlloc('iommu0');
          await kernel.attachGroup(d, kernel.group('ve'));
          // The group's six masters are attached one by one: one WARN each.
          const warn = soc.takeFindings().filter((f) => f.kind === 'driver-warn');
          expect(warn.length).toBe(6);
          expect(new Set(warn.map((f) => \`\${f.where.file}:\${f.where.cline} \${f.where.function}\`))).toEqual(new Set(['oops-iommu.c:15 oops_attach']));
          expect(warn[0].message).toContain('oops-iommu.c:15');
          expect(await kernel.map(d, 0x1000, 0x4000_0000, 0x1000, 3)).toBeLessThan(0);
          const trap = soc.takeFindings().filter((f) => f.kind === 'driver-oops');
          expect(trap).toHaveLength(1);
          expect(trap[0].message).toContain('wasm trap in oops_map: unreachable');
          expect([trap[0].where.file, trap[0].where.function]).toEqual(['oops-iommu.c', 'oops_map']);
        });`,
        fileName: 'trap.ts',
      },
      1,
    );
    expect(r.tests.map((t) => t.error?.message)).toEqual([undefined]);
    // Each run is a fresh SoC and driver instance: the trap above does not carry over.
    const b = await s.runScript(
      {
        source: `test('bug', async () => {
          const d = await kernel.domainAlloc('iommu0');
          await kernel.attachGroup(d, kernel.group('ve'));
          soc.takeFindings();
          expect(await kernel.map(d, 0x2000, 0x4000_0000, 0x1000, 3)).toBe(0);
          await kernel.unmap(d, 0x2000, 0x1000);
          const bug = soc.takeFindings().filter((f) => f.kind === 'driver-oops');
          expect(bug.map((f) => f.where.cline)).toEqual([33]);
          expect(bug[0].message).toContain('BUG_ON(iova == 0x2000) at oops-iommu.c:33 in oops_unmap');
        });`,
        fileName: 'bug.ts',
      },
      2,
    );
    expect(b.tests.map((t) => t.error?.message)).toEqual([undefined]);
    const n = await s.runScript(
      {
        source: `test('null', async () => {
          const d = await kernel.domainAlloc('iommu0');
          await kernel.attachGroup(d, kernel.group('ve'));
          soc.takeFindings();
          expect(await kernel.map(d, 0x3000, 0x4000_0000, 0x1000, 3)).toBeLessThan(0);
          const oops = soc.takeFindings().filter((f) => f.kind === 'driver-oops');
          expect(oops.map((f) => f.where.function)).toEqual(['oops_map']);
          expect(oops[0].message).toContain('NULL pointer dereference at virtual address 0x00000010 (read) in oops_map');
        });`,
        fileName: 'null.ts',
      },
      3,
    );
    expect(n.tests.map((t) => t.error?.message)).toEqual([undefined]);
  }, COMPILE_MS);
});
