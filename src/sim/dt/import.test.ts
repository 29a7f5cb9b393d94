/**
 * import-dt on the test device trees in test/fixtures/dt (written here, one per preset SoC plus one
 * with every recognised IOMMU compatible). The committed .dtb files are what the suite reads; when
 * dtc (and cpp) are on the PATH, a test also checks they match a fresh compile of their .dts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SocConfig } from '../config/types';
import { formatConfig, parseConfig } from '../config/validate';
import { Session } from '../session';
import { parseFdt, prop, walk, type FdtNode } from './fdt';
import { IMPORTED_IOMMU_COMPATIBLES, importDeviceTree, type DtImport } from './import';

const DIR = 'test/fixtures/dt';
const FIXTURES = ['sun50i-h6', 'rk3399', 'mt8183', 'arm64-smmu', 'compatibles'];

function imported(name: string): DtImport {
  return importDeviceTree(parseFdt(new Uint8Array(readFileSync(`${DIR}/${name}.dtb`))), `${name}.dtb`);
}
const preset = (name: string): SocConfig => JSON.parse(readFileSync(`resources/socs/${name}.soc.json`, 'utf8')) as SocConfig;

describe('import-dt', () => {
  it('makes configs that validate and load, for every test tree', () => {
    for (const name of FIXTURES) {
      const { config } = imported(name);
      const text = formatConfig(config);
      const parsed = parseConfig(text, name);
      expect(parsed.ok ? [] : parsed.errors).toEqual([]);
      const loaded = new Session({ emit: () => {}, heartbeat: () => {} }).loadConfig(text, name);
      expect(loaded.ok ? [] : loaded.errors).toEqual([]);
    }
  });

  it('gives the blocks of the preset SoCs the presets\' names, windows, interrupts and master IDs', () => {
    for (const name of ['sun50i-h6', 'rk3399', 'mt8183', 'arm64-smmu']) {
      const { config } = imported(name);
      const want = preset(name);
      expect(config.memory.map((m) => [m.base, m.size].map(Number))).toEqual(want.memory.map((m) => [m.base, m.size].map(Number)));
      for (const got of config.iommus) {
        const p = want.iommus.find((i) => i.name === got.name);
        expect(p, `${name}: IOMMU ${got.name}`).toBeDefined();
        expect([got.model, got.irq, got.reg.map((r) => [Number(r.base), Number(r.size)])]).toEqual([p!.model, p!.irq, p!.reg.map((r) => [Number(r.base), Number(r.size)])]);
      }
      for (const got of config.devices.filter((d) => want.devices.some((p) => p.name === d.name))) {
        const p = want.devices.find((d) => d.name === got.name)!;
        expect([got.name, got.iommu, got.masterId]).toEqual([p.name, p.iommu, p.masterId]);
      }
    }
  });

  it('maps every recognised IOMMU compatible to its model, with a master each', () => {
    const { config, report } = imported('compatibles');
    const fdt = parseFdt(new Uint8Array(readFileSync(`${DIR}/compatibles.dtb`)));
    const compatOf = new Map([...walk(fdt.root)].map((n): [string, string | undefined] => [n.path, prop.string(n.props.get('compatible'))]));
    const seen = config.iommus.map((i) => compatOf.get(i.dtPath!));
    expect(seen.sort()).toEqual([...IMPORTED_IOMMU_COMPATIBLES].sort());
    const modelOf = (c: string): string => config.iommus.find((i) => compatOf.get(i.dtPath!) === c)!.model;
    expect(modelOf('allwinner,sun50i-h6-iommu')).toBe('sun50i-h6');
    expect(modelOf('rockchip,iommu')).toBe('rockchip');
    expect(modelOf('mediatek,mt8173-m4u')).toBe('mtk-v7s');
    expect(modelOf('qcom,smmu-500')).toBe('arm-lpae');
    expect(config.iommus.find((i) => compatOf.get(i.dtPath!) === 'rockchip,rk3568-iommu')!.options).toEqual({ version: 'v2' });
    expect(config.devices).toHaveLength(IMPORTED_IOMMU_COMPATIBLES.length);
    // Relatives modelled by a close model say so.
    expect(report.notes.filter((n) => /modelled as/.test(n.reason)).map((n) => compatOf.get(n.dtPath)).sort()).toEqual(
      IMPORTED_IOMMU_COMPATIBLES.filter((c) => !['allwinner,sun50i-h6-iommu', 'rockchip,iommu', 'rockchip,rk3568-iommu', 'mediatek,mt8183-m4u', 'arm,mmu-500', 'arm,smmu-v2'].includes(c)).sort(),
    );
  });

  it('makes one device per IOMMU specifier of a node with two', () => {
    const h6 = imported('sun50i-h6').config;
    // The H6 IOMMU's master ports have fixed names: the video engine's two are VE_R (1) and VE (3).
    const ve = h6.devices.filter((d) => d.dtPath === '/soc/video-codec@1c0e000');
    expect(ve.map((d) => [d.name, d.masterId])).toEqual([['ve_r', 1], ['ve', 3]]);
    const mt = imported('mt8183').config;
    expect(mt.devices.filter((d) => d.dtPath === '/soc/video-codec@16000000').map((d) => [d.name, d.masterId])).toEqual([['vdec', 32], ['vdec_1', 33]]);
  });

  it('keeps power domains, clocks and resets as named lines: a master behind an IOMMU in another power domain', () => {
    const h6 = imported('sun50i-h6').config;
    const iommu = h6.iommus[0]!;
    const ve = h6.devices.find((d) => d.name === 've')!;
    expect(iommu).toMatchObject({ name: 'iommu0', powerDomain: 'pd_iommu', clocks: ['ccu_48'], resets: ['ccu_24'], dtPath: '/soc/iommu@30f0000' });
    expect(ve).toMatchObject({ powerDomain: 'pd_ve', clocks: ['ccu_77', 'ccu_78'], resets: ['ccu_36'] });
    expect(h6.powerDomains!.map((p) => [p.name, p.dtPath])).toEqual([['pd_iommu', '/power-controller-iommu'], ['pd_ve', '/power-controller-ve']]);
    // A Rockchip power controller: a domain's name is its child node's label, or its node name, or the specifier.
    const rk = imported('rk3399').config;
    expect(rk.powerDomains!.map((p) => [p.name, p.dtPath])).toEqual([
      ['pd_vopb', '/power-controller/pd_vo@22/pd_vopb@20'],
      ['pd_vopl', '/power-controller/power-domain@21'],
      ['power_23', '/power-controller/power-domain@23'],
    ]);
    expect(rk.iommus.find((i) => i.name === 'isp0_mmu')).toMatchObject({ reg: [{ base: '0xff914000' }, { base: '0xff915000' }], options: { version: 'v1', disableMmuReset: true } });
  });

  it('reports what it cannot map: an unknown IOMMU compatible, its masters, disabled nodes', () => {
    const { report } = imported('arm64-smmu');
    expect(report.notMapped).toEqual([
      { dtPath: '/iommu@e1000000', what: 'compatible "acme,npu-iommu"', reason: 'unknown IOMMU compatible: no model for it; its masters are not mapped either' },
      { dtPath: '/npu@e1010000', what: 'iommus specifier 0 (</iommu@e1000000 7>)', reason: '/iommu@e1000000 is not a mapped IOMMU' },
    ]);
    expect(report.notes).toEqual([expect.objectContaining({ dtPath: '/gpu@e0020000', reason: 'SMR mask 0x3 is not modelled: the master has stream ID 0x40 only' })]);
    expect(imported('sun50i-h6').report.notMapped).toEqual([expect.objectContaining({ dtPath: '/soc/camera@6620000', reason: expect.stringMatching(/disabled/) })]);
    expect(imported('rk3399').report.notMapped).toEqual([expect.objectContaining({ dtPath: '/iommu@ff660480', reason: expect.stringMatching(/disabled/) })]);
  });

  it('takes the RAM from the command line when the tree has no memory node (bootloaders add it)', () => {
    const fdt = parseFdt(new Uint8Array(readFileSync(`${DIR}/sun50i-h6.dtb`)));
    fdt.root.children = fdt.root.children.filter((c) => !c.name.startsWith('memory'));
    expect(() => importDeviceTree(fdt, 'board.dtb')).toThrow(/no memory node .* give the RAM with --memory BASE:SIZE/);
    const { config, report } = importDeviceTree(fdt, 'board.dtb', { memory: { base: 0x40000000, size: 0x80000000 } });
    expect(config.memory).toEqual([{ name: 'dram', base: '0x40000000', size: '0x80000000' }]);
    expect(report.mapped).toContainEqual({ kind: 'memory', name: 'dram', dtPath: '(--memory)' });
  });

  it('reads the SMMU context banks and their interrupts from the interrupts list', () => {
    const smmu = imported('arm64-smmu').config.iommus[0]!;
    expect(smmu).toMatchObject({ name: 'smmu0', irq: 64, options: { contextBanks: 8, contextIrqBase: 65 }, powerDomain: 'pd_smmu' });
    expect(imported('arm64-smmu').config.devices.find((d) => d.dtPath === '/dma-controller@e0030000')).toMatchObject({ name: 'dma0', masterId: 0x80, coherent: true });
  });

  it('shows each block\'s node path in the session\'s device tree', () => {
    const s = new Session({ emit: () => {}, heartbeat: () => {} });
    expect(s.loadConfig(formatConfig(imported('rk3399').config), 'rk.soc.json').ok).toBe(true);
    const tree = s.deviceTree();
    expect(tree.iommus.find((i) => i.name === 'vopb_mmu')!.dtPath).toBe('/iommu@ff903f00');
    expect(tree.devices.find((d) => d.name === 'vopb')!.dtPath).toBe('/vop@ff900000');
    expect(tree.powerDomains.find((d) => d.name === 'pd_vopb')!.dtPath).toBe('/power-controller/pd_vo@22/pd_vopb@20');
    expect(tree.memory[0]!.dtPath).toBe('/memory@0');
  });

  const tool = (t: string): boolean => spawnSync(t, ['--version']).status === 0;
  it.runIf(tool('dtc') && tool('cpp'))('committed .dtb fixtures match a fresh compile of their .dts', () => {
    const shape = (n: FdtNode): unknown => ({ name: n.name, props: Object.fromEntries([...n.props].map(([k, v]) => [k, [...v]])), children: n.children.map(shape) });
    for (const name of FIXTURES) {
      const src = spawnSync('cpp', ['-nostdinc', '-undef', '-x', 'assembler-with-cpp', '-D__DTS__', '-I', DIR, `${DIR}/${name}.dts`]);
      expect(src.status).toBe(0);
      const dtb = spawnSync('dtc', ['-@', '-q', '-I', 'dts', '-O', 'dtb', '-o', '-', '-'], { input: src.stdout });
      expect(dtb.status, dtb.stderr.toString()).toBe(0);
      const fresh = parseFdt(new Uint8Array(dtb.stdout));
      const committed = parseFdt(new Uint8Array(readFileSync(`${DIR}/${name}.dtb`)));
      expect(shape(committed.root), `${name}.dtb is stale: recompile it from ${name}.dts`).toEqual(shape(fresh.root));
    }
  });
});
