/**
 * The SoC as a tree for the workspace: IOMMUs with their register windows, the masters behind each,
 * masters that reach RAM directly, and power domains with their members; with live power state.
 */
import { num } from '../config/types';
import type { Soc } from '../soc';
import type { DeviceTree, TreeDevice, TreeDomain, TreeIommu } from './types';

export type { DeviceTree };

export function deviceTree(soc: Soc): DeviceTree {
  const cfg = soc.config;
  const on = (domain: string | undefined): boolean => domain === undefined || soc.powerDomain(domain).on;
  const iommus = cfg.iommus.map((c): TreeIommu => {
    const model = soc.iommu(c.name);
    return {
      name: c.name,
      model: c.model,
      windows: model.registerFiles().map((w, i) => ({ name: w.window, base: w.base, size: num(c.reg[i]?.size ?? 0) })),
      irq: c.irq ?? null,
      coherentWalk: c.coherentWalk ?? false,
      powerDomain: c.powerDomain ?? null,
      powered: model.isPowered() && on(c.powerDomain),
    };
  });
  const devices = cfg.devices.map((d): TreeDevice => ({
    name: d.name,
    iommu: d.iommu ?? null,
    masterId: d.masterId ?? 0,
    powerDomain: d.powerDomain ?? null,
    powered: soc.device(d.name).isPowered() && on(d.powerDomain),
    coherent: d.coherent ?? false,
    compatible: d.compatible ?? null,
  }));
  const powerDomains = (cfg.powerDomains ?? []).map((p): TreeDomain => ({
    name: p.name,
    on: soc.powerDomain(p.name).on,
    members: [...cfg.iommus, ...cfg.devices].filter((b) => b.powerDomain === p.name).map((b) => b.name),
  }));
  return { name: cfg.name, memory: cfg.memory.map((m) => ({ name: m.name, base: num(m.base), size: num(m.size) })), iommus, devices, powerDomains };
}
