import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lineOfPointer } from './json-locate';
import { parseConfig } from './validate';

const minimal = {
  version: 1,
  name: 'mini',
  memory: [{ name: 'dram', base: '0x40000000', size: '0x10000000' }],
  iommus: [{ name: 'iommu0', model: 'sun50i-h6', reg: [{ base: '0x030f0000', size: '0x10000' }] }],
  devices: [{ name: 'de', iommu: 'iommu0', masterId: 0 }],
};

const text = (o: unknown): string => JSON.stringify(o, null, 2);

describe('SoC config validation', () => {
  it('accepts a minimal config', () => {
    const r = parseConfig(text(minimal), 'mini.soc.json');
    expect(r.ok).toBe(true);
  });

  it('names the file, the JSON path and the line of a bad field', () => {
    const bad = structuredClone(minimal) as Record<string, unknown> & typeof minimal;
    (bad.iommus[0] as Record<string, unknown>).model = 'intel-vtd';
    const t = text(bad);
    const r = parseConfig(t, 'bad.soc.json');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors[0]).toMatchObject({ file: 'bad.soc.json', path: '/iommus/0/model' });
    expect(r.errors[0]!.message).toContain('sun50i-h6');
    expect(t.split('\n')[r.errors[0]!.line! - 1]).toContain('"model"');
  });

  it('reports unknown fields by name', () => {
    const r = parseConfig(text({ ...minimal, colour: 'red' }), 'x.soc.json');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatchObject({ path: '/colour', message: 'unknown field "colour"' });
  });

  it('reports invalid JSON with its line', () => {
    const r = parseConfig('{\n  "version": 1,\n  "name": \n}', 'broken.soc.json');
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors[0]!.message).toMatch(/invalid JSON/);
      expect(r.errors[0]!.line).toBe(4);
    }
  });

  it('checks references, duplicate names, overlaps and master IDs', () => {
    const c = structuredClone(minimal) as typeof minimal & { devices: Record<string, unknown>[] };
    c.devices.push({ name: 'de', iommu: 'iommu9' }, { name: 've', iommu: 'iommu0', masterId: 0 });
    c.iommus.push({ name: 'iommu1', model: 'rockchip', reg: [{ base: '0x030f8000', size: '0x100' }] });
    const r = parseConfig(text(c), 'c.soc.json');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.errors.map((e) => e.path);
    expect(paths).toContain('/devices/1/name');
    expect(paths).toContain('/devices/1/iommu');
    expect(paths).toContain('/devices/2/masterId');
    expect(paths).toContain('/iommus/1/reg/0/base');
  });

  it('validates every shipped preset', () => {
    for (const name of ['sun50i-h6', 'rk3399', 'mt8183', 'arm64-smmu']) {
      const path = `resources/socs/${name}.soc.json`;
      let t: string;
      try {
        t = readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      const r = parseConfig(t, path);
      expect(r.ok ? [] : r.errors).toEqual([]);
    }
  });
});

describe('lineOfPointer', () => {
  it('finds nested values', () => {
    const t = '{\n "a": [\n  1,\n  { "b": 2 }\n ]\n}';
    expect(lineOfPointer(t, '/a/1/b')).toBe(4);
    expect(lineOfPointer(t, '/a/0')).toBe(3);
    expect(lineOfPointer(t, '/nope')).toBeUndefined();
  });
});
