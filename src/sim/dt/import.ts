/**
 * Device tree → SoC config (`npm run bringup -- import-dt`). Maps what the console models: the RAM
 * (memory nodes), the IOMMUs it has models for (by compatible), every enabled node whose `iommus`
 * property points at one (a DMA master, its master ID decoded as that driver's of_xlate decodes the
 * specifier), and the power domains, clocks and reset lines those blocks use. Everything it sees
 * but cannot map goes into the report with the node's path and why; nothing is dropped silently.
 * Every generated block keeps its node's path as `dtPath`.
 */
import type { ClockConfig, DeviceConfig, IommuConfig, MemoryConfig, PowerDomainConfig, ResetConfig, SocConfig } from '../config/types';
import { H6_MASTERS } from '../hw/sun50i-h6';
import { prop, walk, type Fdt, type FdtNode } from './fdt';

export interface DtReportEntry {
  dtPath: string;
  /** What the entry is about: a compatible, a property, a specifier. */
  what: string;
  reason: string;
}

export interface DtImportReport {
  source: string;
  /** Config entries made, each with the node it came from. */
  mapped: { kind: 'memory' | 'iommu' | 'device' | 'powerDomain' | 'clock' | 'reset'; name: string; dtPath: string }[];
  /** What the device tree describes that the config does not have. */
  notMapped: DtReportEntry[];
  /** Mapped, but with a simplification the user should know about. */
  notes: DtReportEntry[];
}

export interface DtImport {
  config: SocConfig;
  report: DtImportReport;
}

/** A device tree the importer cannot make any config from (no memory, say). */
export class DtImportError extends Error {}

type Model = IommuConfig['model'];

interface IommuKind {
  model: Model;
  /** #iommu-cells the driver's of_xlate expects. */
  cells: number;
  /** Mapped, but the model is a close relative rather than this exact part. */
  approximate?: string;
}

const MTK_RELATIVE = 'modelled as the MT8183 M4U (v7s tables with MTK_EXT, MT8183 larb ID remap); differences of this part are not modelled';

/** IOMMU compatibles with a model, most specific first as they appear in mainline device trees. */
const IOMMU_KINDS: Record<string, IommuKind> = {
  'allwinner,sun50i-h6-iommu': { model: 'sun50i-h6', cells: 1 },
  'rockchip,iommu': { model: 'rockchip', cells: 0 },
  'rockchip,rk3568-iommu': { model: 'rockchip', cells: 0 },
  'mediatek,mt8183-m4u': { model: 'mtk-v7s', cells: 1 },
  'mediatek,mt2712-m4u': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt6779-m4u': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt8167-m4u': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt8173-m4u': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt8186-iommu-mm': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt8192-m4u': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt8195-iommu-vdo': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'mediatek,mt8195-iommu-vpp': { model: 'mtk-v7s', cells: 1, approximate: MTK_RELATIVE },
  'arm,mmu-500': { model: 'arm-lpae', cells: 1 },
  'arm,smmu-v2': { model: 'arm-lpae', cells: 1 },
  'arm,mmu-400': { model: 'arm-lpae', cells: 1, approximate: 'modelled as an SMMUv2 with stage-1 context banks' },
  'arm,mmu-401': { model: 'arm-lpae', cells: 1, approximate: 'modelled as an SMMUv2 with stage-1 context banks' },
  'qcom,smmu-v2': { model: 'arm-lpae', cells: 1, approximate: 'modelled as a generic SMMUv2; Qualcomm implementation quirks are not modelled' },
  'qcom,smmu-500': { model: 'arm-lpae', cells: 1, approximate: 'modelled as a generic MMU-500; Qualcomm implementation quirks are not modelled' },
};

/** The IOMMU compatibles import-dt maps, for the README and the CLI's help. */
export const IMPORTED_IOMMU_COMPATIBLES = Object.keys(IOMMU_KINDS);

/** Node names too generic to tell instances apart: the config name gets the instance number, as kernel device names do. */
const GENERIC_IOMMU_NAMES = new Set(['iommu', 'smmu', 'm4u', 'mmu']);
const GENERIC_POWER_DOMAIN_NAMES = new Set(['power-domain', 'pd']);
const SMMU_PAGE = 0x1000;
const MAX_NAME = 64;
// The schema's bounds (resources/schema/soc.schema.json).
const MAX_IOMMUS = 64;
const MAX_DEVICES = 256;
const MAX_LINES = 256;
const MAX_BLOCK_LINES = 16;

const enabled = (n: FdtNode): boolean => {
  const s = prop.string(n.props.get('status'));
  return s === undefined || s === 'okay' || s === 'ok';
};
const unitAddress = (n: FdtNode): string | undefined => (n.name.includes('@') ? n.name.slice(n.name.indexOf('@') + 1) : undefined);
const baseNodeName = (n: FdtNode): string => (n.name.includes('@') ? n.name.slice(0, n.name.indexOf('@')) : n.name);
const hex = (v: number): string => `0x${v.toString(16)}`;

function sanitize(s: string): string {
  let out = s.replace(/[^A-Za-z0-9_-]/g, '_');
  if (!/^[A-Za-z_]/.test(out)) out = `n_${out}`;
  return out.slice(0, MAX_NAME);
}

export interface DtImportOptions {
  /**
   * The RAM, when the tree has no memory node (bootloaders add it on many boards) or to replace the
   * tree's.
   */
  memory?: { base: number; size: number };
}

/** Import a parsed device tree. `source` names the file in the config's description and the report. */
export function importDeviceTree(fdt: Fdt, source: string, opts: DtImportOptions = {}): DtImport {
  const root = fdt.root;
  const report: DtImportReport = { source, mapped: [], notMapped: [], notes: [] };
  const notMapped = (n: FdtNode | string, what: string, reason: string): void => void report.notMapped.push({ dtPath: typeof n === 'string' ? n : n.path, what, reason });
  const note = (n: FdtNode, what: string, reason: string): void => void report.notes.push({ dtPath: n.path, what, reason });

  // Overlay bookkeeping nodes describe no hardware.
  const nodes = [...walk(root)].filter((n) => !/^\/__(symbols|fixups|local_fixups)__(\/|$)/.test(n.path));
  const byPhandle = new Map<number, FdtNode>();
  for (const n of nodes) {
    const ph = prop.u32(n.props.get('phandle')) ?? prop.u32(n.props.get('linux,phandle'));
    if (ph !== undefined) byPhandle.set(ph, n);
  }
  // Labels survive compilation only in /__symbols__ (dtc -@); they are the names users know best.
  const labels = new Map<string, string>();
  const symbols = root.children.find((c) => c.name === '__symbols__');
  for (const [label, v] of symbols?.props ?? []) {
    const path = prop.string(v);
    if (path && !labels.has(path)) labels.set(path, label);
  }

  const names = new Set<string>();
  const claim = (want: string, n: FdtNode | undefined): string => {
    let name = sanitize(want);
    const unit = n ? unitAddress(n) : undefined;
    if (names.has(name) && unit) name = sanitize(`${want}_${unit}`);
    for (let k = 2; names.has(name); k++) name = sanitize(`${want}_${k}`);
    names.add(name);
    return name;
  };
  const nodeName = (n: FdtNode): string => labels.get(n.path) ?? baseNodeName(n);

  const cellsOf = (n: FdtNode | null, name: string, dflt: number): number => (n ? (prop.u32(n.props.get(name)) ?? dflt) : dflt);

  /** reg of n as CPU physical (base, size) pairs, through every parent bus's ranges. */
  function regOf(n: FdtNode): { base: number; size: number }[] | string {
    const parent = n.parent;
    const ac = cellsOf(parent, '#address-cells', 2);
    const sc = cellsOf(parent, '#size-cells', 1);
    const raw = n.props.get('reg');
    if (!raw) return 'no reg property';
    const cells = prop.cells(raw);
    if (ac + sc === 0 || cells.length % (ac + sc) !== 0) return `reg has ${cells.length} cells, not a multiple of #address-cells ${ac} + #size-cells ${sc}`;
    const out: { base: number; size: number }[] = [];
    for (let i = 0; i < cells.length; i += ac + sc) {
      const addr = translate(parent, big(cells.slice(i, i + ac)));
      if (typeof addr === 'string') return addr;
      out.push({ base: Number(addr), size: Number(big(cells.slice(i + ac, i + ac + sc))) });
    }
    return out;
  }
  const big = (cells: number[]): bigint => cells.reduce((acc, c) => (acc << 32n) | BigInt(c), 0n);
  /** An address on bus `bus` (the parent node of a reg) as a CPU physical address. */
  function translate(bus: FdtNode | null, addr: bigint): bigint | string {
    for (let b = bus; b && b.parent; b = b.parent) {
      const ranges = b.props.get('ranges');
      if (!ranges) return `bus ${b.path} has no ranges: its children are not in the CPU's address space`;
      if (ranges.length === 0) continue;
      const cac = cellsOf(b, '#address-cells', 2);
      const csc = cellsOf(b, '#size-cells', 1);
      const pac = cellsOf(b.parent, '#address-cells', 2);
      const cells = prop.cells(ranges);
      const step = cac + pac + csc;
      let hit: bigint | undefined;
      for (let i = 0; i + step <= cells.length; i += step) {
        const child = big(cells.slice(i, i + cac));
        const parentAddr = big(cells.slice(i + cac, i + cac + pac));
        const len = big(cells.slice(i + cac + pac, i + step));
        if (addr >= child && addr < child + len) {
          hit = parentAddr + (addr - child);
          break;
        }
      }
      if (hit === undefined) return `address 0x${addr.toString(16)} is outside the ranges of ${b.path}`;
      addr = hit;
    }
    return addr;
  }

  /** A phandle-with-arguments list (iommus, clocks, resets, power-domains). */
  function specifiers(n: FdtNode, propName: string, cellsName: string): { provider: FdtNode; args: number[] }[] {
    const raw = n.props.get(propName);
    if (!raw) return [];
    const cells = prop.cells(raw);
    const out: { provider: FdtNode; args: number[] }[] = [];
    for (let i = 0; i < cells.length; ) {
      const provider = byPhandle.get(cells[i]!);
      if (!provider) {
        notMapped(n, propName, `phandle ${cells[i]} of specifier ${out.length} names no node; the rest of ${propName} is not read`);
        break;
      }
      const count = cellsOf(provider, cellsName, -1);
      if (count < 0) {
        notMapped(n, propName, `${provider.path} has no ${cellsName}; the rest of ${propName} is not read`);
        break;
      }
      out.push({ provider, args: cells.slice(i + 1, i + 1 + count) });
      i += 1 + count;
    }
    return out;
  }

  /** GIC SPI numbers of n's interrupts (the config's irq is a GIC SPI). */
  function spis(n: FdtNode): number[] {
    const out: number[] = [];
    let parent: FdtNode | undefined;
    for (let a: FdtNode | null = n; a && !parent; a = a.parent) {
      const ph = prop.u32(a.props.get('interrupt-parent'));
      if (ph !== undefined) parent = byPhandle.get(ph);
    }
    const raw = n.props.get('interrupts');
    if (!raw) return out;
    const cells = prop.cells(raw);
    const count = parent ? cellsOf(parent, '#interrupt-cells', 0) : 0;
    const gic = parent && prop.strings(parent.props.get('compatible')).some((c) => /gic/.test(c));
    if (!parent || !gic || count < 3) {
      notMapped(n, 'interrupts', `interrupt parent ${parent?.path ?? '(none)'} is not a GIC with 3 or more cells`);
      return out;
    }
    for (let i = 0; i + count <= cells.length; i += count) {
      if (cells[i] === 0 && cells[i + 1]! <= 987) out.push(cells[i + 1]!);
      else notMapped(n, 'interrupts', `interrupt ${i / count} (GIC type ${cells[i]}, number ${cells[i + 1]}) is not an SPI`);
    }
    return out;
  }

  // Power domains, clocks and reset lines: one named line per (provider, arguments), made when a
  // mapped block uses it.
  const powerDomains = new Map<string, PowerDomainConfig>();
  const clocks = new Map<string, ClockConfig>();
  const resets = new Map<string, ResetConfig>();
  function line<T extends { name: string; dtPath?: string }>(
    table: Map<string, T>,
    kind: 'powerDomain' | 'clock' | 'reset',
    spec: { provider: FdtNode; args: number[] },
  ): string | null {
    const key = `${spec.provider.path}#${spec.args.join(',')}`;
    const had = table.get(key);
    if (had) return had.name;
    if (table.size >= MAX_LINES) {
      notMapped(spec.provider, kind, `more than ${MAX_LINES} ${kind} lines: the config holds at most ${MAX_LINES}`);
      return null;
    }
    let dtNode = spec.provider;
    let want = spec.args.length === 0 ? nodeName(spec.provider) : `${nodeName(spec.provider)}_${spec.args.join('_')}`;
    if (kind === 'powerDomain' && spec.args.length === 1) {
      // Rockchip-style providers have a node per domain, nested as the domains are, whose reg is the specifier.
      const child = [...walk(spec.provider)].find((c) => c !== spec.provider && prop.u32(c.props.get('reg')) === spec.args[0]);
      if (child) {
        dtNode = child;
        const label = labels.get(child.path);
        if (label) want = label;
        else if (!GENERIC_POWER_DOMAIN_NAMES.has(baseNodeName(child))) want = baseNodeName(child);
      }
    }
    const entry = { name: claim(want, undefined), dtPath: dtNode.path } as T;
    table.set(key, entry);
    report.mapped.push({ kind, name: entry.name, dtPath: dtNode.path });
    return entry.name;
  }
  const linesOf = (n: FdtNode): Pick<DeviceConfig, 'powerDomain' | 'clocks' | 'resets'> => {
    const out: Pick<DeviceConfig, 'powerDomain' | 'clocks' | 'resets'> = {};
    const pds = specifiers(n, 'power-domains', '#power-domain-cells');
    const pd = pds[0] ? line(powerDomains, 'powerDomain', pds[0]) : null;
    if (pd) out.powerDomain = pd;
    pds.slice(1).forEach((p, i) => notMapped(n, 'power-domains', `power domain ${i + 1} (${p.provider.path} ${p.args.join(' ')}): a block has one power domain in the config`));
    const named = (list: (string | null)[], what: string): string[] | undefined => {
      const uniq = [...new Set(list.filter((x): x is string => x !== null))];
      if (uniq.length > MAX_BLOCK_LINES) notMapped(n, what, `${uniq.length - MAX_BLOCK_LINES} ${what} after the first ${MAX_BLOCK_LINES}: a block lists at most ${MAX_BLOCK_LINES}`);
      return uniq.length > 0 ? uniq.slice(0, MAX_BLOCK_LINES) : undefined;
    };
    const cks = named(specifiers(n, 'clocks', '#clock-cells').map((s) => line(clocks, 'clock', s)), 'clocks');
    if (cks) out.clocks = cks;
    const rsts = named(specifiers(n, 'resets', '#reset-cells').map((s) => line(resets, 'reset', s)), 'resets');
    if (rsts) out.resets = rsts;
    return out;
  };

  // Memory: the engine models one RAM region.
  const regions: { base: number; size: number; node: FdtNode }[] = [];
  for (const n of nodes) {
    if (prop.string(n.props.get('device_type')) !== 'memory' || !enabled(n)) continue;
    const reg = regOf(n);
    if (typeof reg === 'string') notMapped(n, 'reg', reg);
    else for (const r of reg) if (r.size > 0) regions.push({ ...r, node: n });
  }
  regions.sort((a, b) => a.base - b.base);
  // Contiguous banks are one region.
  const merged: typeof regions = [];
  for (const r of regions) {
    const last = merged[merged.length - 1];
    if (last && last.base + last.size === r.base) last.size += r.size;
    else merged.push({ ...r });
  }
  if (opts.memory && merged[0]) for (const r of merged) note(r.node, 'reg', `replaced by the RAM given on the command line`);
  const ram = opts.memory ? { ...opts.memory, node: { path: '/memory', name: 'memory' } as FdtNode } : merged[0];
  if (!ram) {
    throw new DtImportError(
      `${source}: no memory node (device_type = "memory") with a reg: on many boards the bootloader adds it; give the RAM with --memory BASE:SIZE (e.g. --memory 0x40000000:0x80000000)`,
    );
  }
  if (!opts.memory) for (const r of merged.slice(1)) notMapped(r.node, 'reg', `RAM at ${hex(r.base)}+${hex(r.size)}: the console models one RAM region, the first (${hex(ram.base)}) is used`);
  const memBase = Math.ceil(ram.base / 4096) * 4096;
  let memEnd = Math.floor((ram.base + ram.size) / 4096) * 4096;
  if (memEnd > 2 ** 40) {
    note(ram.node, 'reg', `RAM above 1 TiB (40-bit PA) is cut off`);
    memEnd = 2 ** 40;
  }
  if (memBase !== ram.base || memEnd !== ram.base + ram.size) note(ram.node, 'reg', `RAM rounded to 4 KiB pages: ${hex(memBase)}+${hex(memEnd - memBase)}`);
  if (memEnd <= memBase) throw new DtImportError(`${source}: the RAM at ${hex(ram.base)}+${hex(ram.size)} holds no whole 4 KiB page`);
  const memory: MemoryConfig = { name: claim('dram', undefined), base: hex(memBase), size: hex(memEnd - memBase) };
  if (!opts.memory) memory.dtPath = ram.node.path;
  report.mapped.push({ kind: 'memory', name: memory.name, dtPath: opts.memory ? '(--memory)' : ram.node.path });

  // IOMMUs.
  const iommus: IommuConfig[] = [];
  const iommuOf = new Map<FdtNode, { cfg: IommuConfig; kind: IommuKind }>();
  const genericCount = new Map<string, number>();
  for (const n of nodes) {
    const compat = prop.strings(n.props.get('compatible'));
    const match = compat.find((c) => c in IOMMU_KINDS);
    const isIommu = match !== undefined || n.props.has('#iommu-cells');
    if (!isIommu) continue;
    if (!match) {
      notMapped(n, `compatible "${compat.join('", "')}"`, 'unknown IOMMU compatible: no model for it; its masters are not mapped either');
      continue;
    }
    if (!enabled(n)) {
      notMapped(n, `compatible "${match}"`, 'status is not "okay": the IOMMU is disabled in this device tree');
      continue;
    }
    if (iommus.length >= MAX_IOMMUS) {
      notMapped(n, `compatible "${match}"`, `the config holds at most ${MAX_IOMMUS} IOMMUs`);
      continue;
    }
    const kind = IOMMU_KINDS[match]!;
    const reg = regOf(n);
    if (typeof reg === 'string') {
      notMapped(n, 'reg', `${reg}; the IOMMU is not mapped`);
      continue;
    }
    let windows = reg;
    if (kind.model !== 'rockchip' && windows.length > 1) {
      notMapped(n, 'reg', `windows after the first: the ${kind.model} model has one register window`);
      windows = windows.slice(0, 1);
    }
    if (windows.length === 0 || windows.length > 8) {
      notMapped(n, 'reg', `${windows.length} register windows; the IOMMU is not mapped`);
      continue;
    }
    const base = nodeName(n);
    let name: string;
    if (GENERIC_IOMMU_NAMES.has(base)) {
      const k = genericCount.get(base) ?? 0;
      genericCount.set(base, k + 1);
      name = claim(`${base}${k}`, n);
    } else name = claim(base, n);
    const cfg: IommuConfig = { name, model: kind.model, reg: windows.map((w) => ({ base: hex(w.base), size: hex(w.size) })) };
    const irqs = spis(n);
    const options: NonNullable<IommuConfig['options']> = {};
    if (kind.model === 'arm-lpae') {
      const globals = prop.u32(n.props.get('#global-interrupts')) ?? 1;
      const context = irqs.slice(globals);
      if (irqs[0] !== undefined) cfg.irq = irqs[0];
      // The DT lists one interrupt per context bank; the hardware reports its banks in ID1.
      let banks = Math.min(63, Math.max(1, context.length || 8));
      const size = windows[0]!.size;
      while (banks > 1 && 2 * pow2AtLeast(banks) * SMMU_PAGE > size) banks--;
      if (context.length > banks) note(n, 'interrupts', `${context.length} context interrupts, ${banks} context banks fit the ${hex(size)}-byte window`);
      options.contextBanks = banks;
      const consecutive = context.every((v, i) => v === context[0]! + i);
      if (context.length > 0 && consecutive) options.contextIrqBase = context[0]!;
      else if (context.length > 0) note(n, 'interrupts', 'context interrupts are not consecutive SPIs: all are reported on the global one');
      cfg.coherentWalk = n.props.has('dma-coherent');
    } else {
      if (irqs[0] !== undefined) cfg.irq = irqs[0];
      if (irqs.length > 1) notMapped(n, 'interrupts', `${irqs.length - 1} more interrupts: the model has one`);
      cfg.coherentWalk = false;
    }
    if (kind.model === 'rockchip') {
      options.version = match === 'rockchip,rk3568-iommu' ? 'v2' : 'v1';
      if (n.props.has('rockchip,disable-mmu-reset')) options.disableMmuReset = true;
    }
    Object.assign(cfg, linesOf(n));
    if (Object.keys(options).length > 0) cfg.options = options;
    cfg.dtPath = n.path;
    if (kind.approximate) note(n, `compatible "${match}"`, kind.approximate);
    iommus.push(cfg);
    iommuOf.set(n, { cfg, kind });
    report.mapped.push({ kind: 'iommu', name, dtPath: n.path });
  }

  // Masters: every enabled node with an iommus property.
  const devices: DeviceConfig[] = [];
  const usedIds = new Map<string, string>();
  for (const n of nodes) {
    if (!n.props.has('iommus') || iommuOf.has(n)) continue;
    const specs = specifiers(n, 'iommus', '#iommu-cells');
    if (!enabled(n)) {
      if (specs.some((s) => iommuOf.has(s.provider))) notMapped(n, 'iommus', 'status is not "okay": the master is disabled in this device tree');
      continue;
    }
    const compatible = prop.string(n.props.get('compatible'));
    const lines = linesOf(n);
    specs.forEach((s, k) => {
      const what = `iommus specifier ${k} (<${s.provider.path}${s.args.map((a) => ` ${a}`).join('')}>)`;
      const target = iommuOf.get(s.provider);
      if (!target) {
        notMapped(n, what, `${s.provider.path} is not a mapped IOMMU`);
        return;
      }
      if (devices.length >= MAX_DEVICES) {
        notMapped(n, what, `the config holds at most ${MAX_DEVICES} devices`);
        return;
      }
      const id = masterId(target.kind, s.args, s.provider, n, what);
      if (id === undefined) return;
      const key = `${target.cfg.name}#${id}`;
      const prev = usedIds.get(key);
      if (prev) {
        notMapped(n, what, `master ID ${id} on ${target.cfg.name} is already ${prev}'s; the config has one device per master ID`);
        return;
      }
      // The H6 IOMMU's master ports have fixed names in the hardware (DE, VE_R, DI, VE, CSI, VP9).
      const portName = target.kind.model === 'sun50i-h6' ? H6_MASTERS[id] : undefined;
      const want = portName && !names.has(portName) ? portName : k === 0 ? nodeName(n) : `${nodeName(n)}_${k}`;
      const dev: DeviceConfig = { name: claim(want, n), iommu: target.cfg.name, masterId: id, ...lines, coherent: n.props.has('dma-coherent') };
      if (compatible) dev.compatible = compatible.slice(0, 256);
      dev.dtPath = n.path;
      usedIds.set(key, dev.name);
      devices.push(dev);
      report.mapped.push({ kind: 'device', name: dev.name, dtPath: n.path });
    });
  }

  /** The master ID the driver's of_xlate takes from a specifier, or undefined (reported). */
  function masterId(kind: IommuKind, args: number[], iommu: FdtNode, n: FdtNode, what: string): number | undefined {
    if (args.length !== kind.cells && !(kind.model === 'arm-lpae' && args.length === 2)) {
      notMapped(n, what, `${args.length} argument cells; the ${kind.model} driver's of_xlate reads ${kind.cells}`);
      return undefined;
    }
    switch (kind.model) {
      case 'rockchip':
        // rk_iommu_of_xlate takes no arguments: the IOMMU serves the one master it sits in front of.
        return 0;
      case 'sun50i-h6':
        if (args[0]! >= H6_MASTERS.length) {
          notMapped(n, what, `master ${args[0]}: the H6 IOMMU has masters 0..${H6_MASTERS.length - 1}`);
          return undefined;
        }
        return args[0]!;
      case 'mtk-v7s':
        if (args[0]! > 0xffff) {
          notMapped(n, what, `port ID ${hex(args[0]!)} is beyond the model's 16-bit master IDs`);
          return undefined;
        }
        return args[0]!;
      case 'arm-lpae': {
        // arm_smmu_of_xlate: SMR ID from the first cell, the mask from the second or stream-match-mask.
        const mask = args[1] ?? prop.u32(iommu.props.get('stream-match-mask')) ?? 0;
        if ((mask & 0xffff) !== 0) note(n, what, `SMR mask ${hex(mask & 0xffff)} is not modelled: the master has stream ID ${hex(args[0]! & 0xffff)} only`);
        return args[0]! & 0xffff;
      }
    }
  }

  const cpus = root.children.find((c) => c.name === 'cpus');
  const cores = cpus ? cpus.children.filter((c) => prop.string(c.props.get('device_type')) === 'cpu').length : 0;
  const model = prop.string(root.props.get('model'));
  const rootCompat = prop.strings(root.props.get('compatible'));
  const config: SocConfig = {
    version: 1,
    name: (model ?? rootCompat[0] ?? source).slice(0, 128) || 'imported',
    description: `Imported from ${source} by import-dt${rootCompat.length ? ` (compatible ${rootCompat.join(', ')})` : ''}.`.slice(0, 4096),
    seed: 1,
    ...(cores > 0 ? { cpu: { cores: Math.min(64, cores) } } : {}),
    memory: [memory],
    ...(powerDomains.size ? { powerDomains: [...powerDomains.values()] } : {}),
    ...(clocks.size ? { clocks: [...clocks.values()] } : {}),
    ...(resets.size ? { resets: [...resets.values()] } : {}),
    iommus,
    devices,
  };
  return { config, report };
}

function pow2AtLeast(n: number): number {
  let p = 2;
  while (p < n) p *= 2;
  return p;
}
