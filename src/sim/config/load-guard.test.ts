/**
 * Config loading is bounded: every option is typed and ranged, sizes the engine cannot build are
 * refused with the field's path and line, and huge or broken files fail fast (issue 12 item 4).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Session } from '../session';
import { jsonSyntaxError } from './json-locate';
import { MAX_REPORTED_ERRORS, parseConfig } from './validate';
import type { SocConfig } from './types';

const preset = (name: string): SocConfig => JSON.parse(readFileSync(`resources/socs/${name}.soc.json`, 'utf8')) as SocConfig;
const text = (o: unknown): string => JSON.stringify(o, null, 2);
const lineOf = (t: string, line: number | undefined): string => (line === undefined ? '' : t.split('\n')[line - 1]!);

function load(c: unknown): ReturnType<Session['loadConfig']> & { text: string } {
  const t = text(c);
  return { ...new Session({ emit: () => {}, heartbeat: () => {} }).loadConfig(t, 'x.soc.json'), text: t };
}

function firstError(c: unknown): { path: string; message: string; line: string } {
  const r = load(c);
  if (r.ok) throw new Error('expected the config to be refused');
  const e = r.errors[0]!;
  expect(e.file).toBe('x.soc.json');
  return { path: e.path, message: e.message, line: lineOf(r.text, e.line) };
}

describe('model options', () => {
  it('refuses cache sizes the models cannot build (2^29 micro TLB entries used to loop forever)', () => {
    for (const n of [2 ** 29, 1e7, 0, 1.5]) {
      const c = preset('sun50i-h6');
      c.iommus[0]!.options = { microTlbEntries: n };
      const e = firstError(c);
      expect(e.path).toBe('/iommus/0/options/microTlbEntries');
      expect(e.line).toContain('"microTlbEntries"');
    }
  });

  it('rejects an option name the model does not read, per model', () => {
    const h6 = preset('sun50i-h6');
    h6.iommus[0]!.options = { version: 'v2' };
    expect(firstError(h6)).toMatchObject({ path: '/iommus/0/options/version', message: 'unknown field "version"' });
    const rk = preset('rk3399');
    rk.iommus[0]!.options = { version: 'v1', microTlbEntries: 4 };
    expect(firstError(rk).path).toBe('/iommus/0/options/microTlbEntries');
  });

  it('types driver variant options: a string where a boolean belongs is an error, not ignored', () => {
    const c = preset('sun50i-h6');
    c.iommus[0]!.options = { flushTables: 'no' };
    expect(firstError(c)).toMatchObject({ path: '/iommus/0/options/flushTables', message: 'must be boolean' });
  });

  it('checks SMMU context interrupts stay on GIC SPIs', () => {
    const c = preset('arm64-smmu');
    c.iommus[0]!.options = { ...c.iommus[0]!.options, contextIrqBase: 1015 };
    expect(firstError(c).path).toBe('/iommus/0/options/contextIrqBase');
  });

  it('bounds the caches of all IOMMUs together (64 maximal ones took 5 s and 600 MB to build)', () => {
    const c = preset('sun50i-h6');
    const mmu = c.iommus[0]!;
    c.devices = [];
    c.iommus = Array.from({ length: 64 }, (_, i) => ({ ...mmu, name: `m${i}`, powerDomain: undefined, clocks: undefined, tlb: { entries: 65536 }, walkCache: { entries: 65536 }, reg: [{ base: 0x10000000 + i * 0x10000, size: '0x10000' }] }));
    const e = firstError(c);
    expect(e.path).toBe('/iommus/1');
    expect(e.message).toMatch(/would hold \d+ entries up to here; at most 262144 in all are built/);
  });

  it('bounds array sizes', () => {
    const c = preset('sun50i-h6');
    c.devices = Array.from({ length: 300 }, (_, i) => ({ name: `d${i}` }));
    expect(firstError(c)).toMatchObject({ path: '/devices', message: 'at most 256 entries' });
    const m = preset('sun50i-h6');
    m.memory.push({ name: 'dram2', base: '0x100000000', size: '0x1000' });
    expect(firstError(m)).toMatchObject({ path: '/memory', message: 'at most 1 entry' });
  });
});

describe('register windows', () => {
  it('refuses a size that is not a number ("0x_" used to load as NaN)', () => {
    const c = preset('sun50i-h6');
    c.iommus[0]!.reg[0]!.size = '0x_';
    const e = firstError(c);
    expect(e.path).toBe('/iommus/0/reg/0/size');
    expect(e.message).toMatch(/hex string/);
    expect(e.line).toContain('"size"');
  });

  it('refuses a window smaller than the register file, naming the field (size 1 used to fail every run)', () => {
    for (const [name, size] of [['sun50i-h6', 4], ['rk3399', 0x20], ['mt8183', 0x100]] as const) {
      const c = preset(name);
      c.iommus[0]!.reg[0]!.size = size;
      const e = firstError(c);
      expect(e.path).toBe('/iommus/0/reg/0/size');
      expect(e.message).toMatch(/cannot build the SoC: .*register file needs a window of at least 0x/);
      expect(e.line).toContain('"size"');
    }
    const odd = preset('sun50i-h6');
    odd.iommus[0]!.reg[0]!.size = 1;
    expect(firstError(odd)).toMatchObject({ path: '/iommus/0/reg/0/size', message: 'must be a multiple of 4 bytes' });
  });

  it('refuses MMIO beyond 40 bits', () => {
    const c = preset('sun50i-h6');
    c.iommus[0]!.reg[0]!.base = '0xFFFFFFF0000';
    const e = firstError(c);
    expect(e.path).toBe('/iommus/0/reg/0/size');
    expect(e.message).toMatch(/MMIO must end below 1 TiB/);
  });

  it('names the path of a build error (the SMMU window too small for its context banks)', () => {
    const c = preset('arm64-smmu');
    c.iommus[0]!.options = { ...c.iommus[0]!.options, contextBanks: 63 };
    const e = firstError(c);
    expect(e.path).toBe('/iommus/0');
    expect(e.message).toMatch(/cannot build the SoC: smmu0: 63 context banks need/);
    expect(e.line).toContain('{');
  });
});

describe('broken files fail fast and say where', () => {
  it('reports the first errors of a file with ten thousand, and how many more (in one pass)', () => {
    const c = preset('sun50i-h6') as unknown as { devices: unknown[] };
    c.devices = Array.from({ length: 10_000 }, () => ({ name: 7, colour: 'red' }));
    const t = text(c);
    const r = parseConfig(t, 'x.soc.json');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(MAX_REPORTED_ERRORS + 1);
    expect(r.errors[MAX_REPORTED_ERRORS]!.message).toMatch(/^\d+ more errors not shown$/);
    expect(lineOf(t, r.errors[0]!.line)).toMatch(/"devices"|"name"|"colour"/);
  });

  it('reports nesting beyond 64 levels where it starts, not at the end of the file', () => {
    const deep = `{\n  "version": 1,\n  "name": ${'['.repeat(100_000)}${']'.repeat(100_000)}\n}`;
    const e = jsonSyntaxError(deep);
    expect(e).toMatchObject({ line: 3, message: 'nesting deeper than 64 levels' });
    // The object is level 1; the 64th "[" (column 11 + 63) would be level 65.
    expect(e!.column).toBe(11 + 63);
    const r = parseConfig(deep, 'deep.soc.json');
    expect(r.ok ? [] : r.errors[0]).toMatchObject({ line: 3 });
  });

  it('still loads every preset', () => {
    for (const name of ['sun50i-h6', 'rk3399', 'mt8183', 'arm64-smmu']) expect(load(preset(name)).ok).toBe(true);
  });
});
