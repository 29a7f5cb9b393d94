import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/validate';
import { IO_PGTABLE_QUIRK_ARM_MTK_EXT, IO_PGTABLE_QUIRK_ARM_NS, IO_PGTABLE_QUIRK_NO_PERMS } from '../kernel/io-pgtable';
import { Soc } from '../soc';
import { domainIovaMap } from './iova-map';
import { domainPageTable, domainWalk, listDomains, pageOwnersIn, v7sFormat } from './page-tables';

const RW = 3;
const R = 1;

/** A preset's SoC with its kernel booted (every preset, not only those presetSoc knows). */
function boot(preset: string): Soc {
  const file = fileURLToPath(new URL(`../../../resources/socs/${preset}.soc.json`, import.meta.url));
  const r = parseConfig(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(r.errors.map((e) => e.message).join('; '));
  const soc = new Soc(r.config, 1);
  void soc.kernel;
  return soc;
}

describe('page-table views: sun50i-h6', () => {
  it('lists domains; the DT/PT tree, the walk and the IOVA map show a 4 KiB mapping', async () => {
    const soc = boot('sun50i-h6');
    const k = soc.kernel.api;
    const d = await k.domainAlloc('iommu0');
    expect(await k.attachGroup(d, k.group('ve'))).toBe(0);
    const pa = await k.allocPages(2);
    expect(await k.map(d, 0x0010_0000, pa, 0x2000, RW)).toBe(0);
    expect(await k.map(d, 0x0030_0000, pa + 0x1000, 0x1000, R)).toBe(0);

    const info = listDomains(soc).find((x) => x.id === d.id)!;
    expect(info).toMatchObject({ iommu: 'iommu0', model: 'sun50i-h6', type: 'unmanaged', live: true, freed: false, format: 'sun50i-h6 DT/PT' });
    expect(info.devices).toContain('ve');
    // The default DMA domain of the group is not walked now.
    expect(listDomains(soc).find((x) => x.type === 'dma')!.live).toBe(false);

    const dt = domainPageTable(soc, d.id, {});
    expect(dt).toMatchObject({ entries: 4096, entrySize: 4, valid: 2 });
    expect(dt.ownerProblem).toBeUndefined();
    expect(dt.rows.map((e) => [e.index, e.kind, e.iova, e.span])).toEqual([
      [1, 'table', 0x10_0000, 0x10_0000],
      [3, 'table', 0x30_0000, 0x10_0000],
    ]);
    expect(domainPageTable(soc, d.id, { all: true }).rows).toHaveLength(4096);

    const pt = domainPageTable(soc, d.id, { table: dt.rows[0]!.next! });
    expect(pt.entries).toBe(256);
    expect(pt.rows.map((e) => [e.index, e.kind, e.out, e.perms])).toEqual([
      [0, 'page', pa, 'RW'],
      [1, 'page', pa + 0x1000, 'RW'],
    ]);
    expect(pt.rows[0]!.fields).toContainEqual({ name: 'ACI', value: '4 (RD_WR)' });
    expect(pt.rows[0]!.raw).toMatch(/^0x[0-9a-f]{8}$/);

    const w = domainWalk(soc, d.id, 0x0010_1234);
    expect(w.steps.map((s) => [s.level, s.index, s.kind])).toEqual([
      [1, 1, 'table'],
      [2, 1, 'page'],
    ]);
    expect(w.result).toEqual({ ok: true, pa: pa + 0x1234, size: 0x1000, perms: 'RW' });
    const miss = domainWalk(soc, d.id, 0x0020_0000);
    expect(miss.result.ok).toBe(false);
    expect(miss.steps).toHaveLength(1);

    const map = domainIovaMap(soc, d.id);
    expect(map.runs).toEqual([
      { iova: 0x10_0000, size: 0x2000, pa, pageSize: 0x1000, perms: 'RW' },
      { iova: 0x30_0000, size: 0x1000, pa: pa + 0x1000, pageSize: 0x1000, perms: 'R' },
    ]);
    expect(map.mappedBytes).toBe(0x3000);
    expect(map.aperture).toEqual({ start: 0, end: 2 ** 32 - 1 });

    const owners = pageOwnersIn(soc.kernel.pages, dt.ref.pa, 0x4000);
    expect(owners[0]).toMatchObject({ pa: dt.ref.pa, kind: 'pgtable', domain: d.id, level: 1, iommu: 'iommu0' });
    expect(soc.findings.list()).toEqual([]);
  });

  it('shows an un-cleaned table write (the walker still reads RAM) and a freed live table', async () => {
    const soc = boot('sun50i-h6');
    const k = soc.kernel.api;
    k.driver('iommu0').setVariant({ flushTables: false, detachBeforeFree: false });
    const d = await k.domainAlloc('iommu0');
    expect(await k.attachGroup(d, k.group('ve'))).toBe(0);
    const pa = await k.allocPages(1);
    expect(await k.map(d, 0x0010_0000, pa, 0x1000, RW)).toBe(0);

    // The DTE sits in a dirty CPU line: a non-coherent walker reads the old (zero) word.
    const w = domainWalk(soc, d.id, 0x0010_0000);
    expect(w.result.ok).toBe(false);
    expect(w.steps[0]!.raw).toBe('0x00000000');
    expect(w.steps[0]!.cpuRaw).toMatch(/^0x[0-9a-f]{7}1$/);
    const dt = domainPageTable(soc, d.id, {});
    expect(dt.valid).toBe(0);
    expect(dt.rows.map((e) => [e.index, e.kind, e.cpuRaw !== undefined])).toEqual([[1, 'invalid', true]]);
    expect(domainIovaMap(soc, d.id).runs).toEqual([]);

    // Freed while the hardware still walks it: the DT is free memory now.
    await k.domainFree(d);
    const info = listDomains(soc).find((x) => x.id === d.id)!;
    expect(info).toMatchObject({ freed: true, live: true });
    expect(domainPageTable(soc, d.id, {}).ownerProblem).toMatch(/is free memory \(last held by page table \(domain \d+, level 1, iommu0\)/);
  });
});

describe('page-table views: rockchip v1', () => {
  it('decodes DTE and PTE with permissions', async () => {
    const soc = boot('rk3399');
    const k = soc.kernel.api;
    const d = await k.domainAlloc('vopb_mmu');
    expect(await k.attachDevice(d, 'vopb')).toBe(0);
    const pa = await k.allocPages(1);
    expect(await k.map(d, 0x0040_3000, pa, 0x1000, R)).toBe(0);
    const dt = domainPageTable(soc, d.id, {});
    expect(dt).toMatchObject({ entries: 1024, format: 'rockchip v1 DTE/PTE' });
    expect(dt.rows.map((e) => [e.index, e.kind, e.span])).toEqual([[1, 'table', 0x40_0000]]);
    const pt = domainPageTable(soc, d.id, { table: dt.rows[0]!.next! });
    expect(pt.rows.map((e) => [e.index, e.iova, e.out, e.perms])).toEqual([[3, 0x40_3000, pa, 'R']]);
    expect(domainWalk(soc, d.id, 0x0040_3010).result).toEqual({ ok: true, pa: pa + 0x10, size: 0x1000, perms: 'R' });
  });
});

describe('page-table views: arm-v7s (MediaTek)', () => {
  it('shows small and large pages, sections and supersections; large entries merge into one run', async () => {
    const soc = boot('mt8183');
    const k = soc.kernel.api;
    const d = await k.domainAlloc('iommu0');
    expect(await k.attachGroup(d, k.group('disp_ovl0'))).toBe(0);
    const base = 0xc100_0000;
    expect(await k.map(d, 0x0100_0000, base, 0x1000, RW)).toBe(0);
    expect(await k.map(d, 0x0101_0000, base + 0x1_0000, 0x1_0000, RW)).toBe(0);
    expect(await k.map(d, 0x0200_0000, 0xc200_0000, 0x10_0000, RW)).toBe(0);
    expect(await k.map(d, 0x0400_0000, 0xc400_0000, 0x100_0000, RW)).toBe(0);

    const info = listDomains(soc).find((x) => x.id === d.id)!;
    expect(info).toMatchObject({ live: true, format: 'arm-v7s + MTK PA ext, 32-bit IOVA' });
    const l1 = domainPageTable(soc, d.id, {});
    expect(l1.rows.filter((e) => e.kind === 'block').map((e) => e.size)).toEqual([0x10_0000, ...Array(16).fill(0x100_0000)]);
    const sup = l1.rows.find((e) => e.iova === 0x0430_0000)!;
    expect(sup.out).toBe(0xc430_0000);
    expect(sup.meaning).toContain('16 MiB supersection → 0xc4000000');
    const l2 = domainPageTable(soc, d.id, { table: l1.rows.find((e) => e.kind === 'table')!.next! });
    expect(l2.rows.map((e) => e.size)).toEqual([0x1000, ...Array(16).fill(0x1_0000)]);

    const map = domainIovaMap(soc, d.id);
    expect(map.runs.map((r) => [r.iova, r.size, r.pa, r.pageSize])).toEqual([
      [0x0100_0000, 0x1000, base, 0x1000],
      [0x0101_0000, 0x1_0000, base + 0x1_0000, 0x1_0000],
      [0x0200_0000, 0x10_0000, 0xc200_0000, 0x10_0000],
      [0x0400_0000, 0x100_0000, 0xc400_0000, 0x100_0000],
    ]);
    expect(domainWalk(soc, d.id, 0x0101_2345).result).toEqual({ ok: true, pa: base + 0x1_2345, size: 0x1_0000, perms: 'RW' });
  });

  it('decodes the MediaTek PA extension bits (PA[34:32] in bits 9, 4, 5)', () => {
    const fmt = v7sFormat(IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT, 32);
    const d = fmt.decode((0x4000_0000 | (1 << 9) | (1 << 5) | 2) >>> 0, 0, 2);
    expect(d).toMatchObject({ kind: 'page', out: 5 * 2 ** 32 + 0x4000_0000, size: 0x1000, perms: 'RW' });
    expect(d.fields).toContainEqual({ name: 'PA[34:32]', value: '5' });
  });
});

describe('page-table views: arm-lpae (SMMUv2)', () => {
  it('walks levels 0-3 to a 4 KiB page and levels 0-2 to a 2 MiB block', async () => {
    const soc = boot('arm64-smmu');
    const k = soc.kernel.api;
    const d = await k.domainAlloc('smmu0');
    expect(await k.attachDevice(d, 'display')).toBe(0);
    expect(await k.map(d, 0x1000_0000, 0x9000_0000, 0x1000, RW)).toBe(0);
    expect(await k.map(d, 0x1000_1000, 0x9000_1000, 0x1000, R)).toBe(0);
    expect(await k.map(d, 0x2000_0000, 0x9020_0000, 0x20_0000, RW)).toBe(0);

    const info = listDomains(soc).find((x) => x.id === d.id)!;
    expect(info).toMatchObject({ live: true, format: 'arm-lpae 4K, 48-bit IOVA', root: { level: 0, iova: 0 } });
    expect(info.devices).toEqual(['display']);

    const page = domainWalk(soc, d.id, 0x1000_0abc);
    expect(page.steps.map((s) => [s.level, s.kind])).toEqual([
      [0, 'table'],
      [1, 'table'],
      [2, 'table'],
      [3, 'page'],
    ]);
    expect(page.steps[3]!.raw).toMatch(/^0x[0-9a-f]{16}$/);
    expect(page.result).toEqual({ ok: true, pa: 0x9000_0abc, size: 0x1000, perms: 'RW' });
    const block = domainWalk(soc, d.id, 0x2012_3456);
    expect(block.steps.map((s) => [s.level, s.kind])).toEqual([
      [0, 'table'],
      [1, 'table'],
      [2, 'block'],
    ]);
    expect(block.result).toEqual({ ok: true, pa: 0x9032_3456, size: 0x20_0000, perms: 'RW' });

    let t = domainPageTable(soc, d.id, {});
    expect(t).toMatchObject({ entries: 512, entrySize: 8, valid: 1 });
    for (let level = 1; level <= 2; level++) {
      t = domainPageTable(soc, d.id, { table: t.rows[0]!.next! });
      expect(t.ref.level).toBe(level);
    }
    expect(t.rows.map((e) => [e.iova, e.kind])).toEqual([
      [0x1000_0000, 'table'],
      [0x2000_0000, 'block'],
    ]);
    const l3 = domainPageTable(soc, d.id, { table: t.rows[0]!.next! });
    expect(l3.rows.map((e) => [e.out, e.perms])).toEqual([
      [0x9000_0000, 'RW'],
      [0x9000_1000, 'R'],
    ]);
    expect(l3.rows[0]!.fields).toContainEqual({ name: 'AF', value: '1' });
    // Cleaned descriptors: the CPU cache holds nothing the walker does not see (SW_SYNC aside).
    expect(l3.rows.every((e) => e.cpuRaw === undefined)).toBe(true);

    expect(domainIovaMap(soc, d.id).runs.map((r) => [r.iova, r.size, r.pageSize, r.perms])).toEqual([
      [0x1000_0000, 0x1000, 0x1000, 'RW'],
      [0x1000_1000, 0x1000, 0x1000, 'R'],
      [0x2000_0000, 0x20_0000, 0x20_0000, 'RW'],
    ]);
    expect(domainWalk(soc, d.id, 2 ** 48).result).toMatchObject({ ok: false, fault: expect.stringContaining('address size') });
  });
});
