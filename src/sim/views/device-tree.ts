/**
 * The SoC as a tree for the workspace: IOMMUs with their register windows, the masters behind each,
 * masters that reach RAM directly, and power domains with their members; with live power state.
 * Once the kernel is booted, also its view: runtime-PM status per device, device links, and the
 * domain each master's group is attached to. Looking never boots the kernel. Blocks imported from a
 * device tree carry their node's path (dtPath), so the view can name the node the user knows.
 */
import { num } from '../config/types';
import type { Soc } from '../soc';
import type { DeviceTree, TreeDevice, TreeDomain, TreeIommu, TreeLink, TreeRpmStatus } from './types';

export type { DeviceTree };

export function deviceTree(soc: Soc): DeviceTree {
  const cfg = soc.config;
  const on = (domain: string | undefined): boolean => domain === undefined || soc.powerDomain(domain).on;
  const k = soc.bootedKernel;
  const rpm = (name: string): TreeRpmStatus | null => (k && k.pm.has(name) ? k.pm.status(name) : null);
  const groups = k?.core.groupList() ?? [];
  const attached = (name: string): TreeDevice['attached'] => {
    const g = groups.find((x) => x.devices.includes(name));
    const d = g?.domain;
    return g && d ? { id: d.id, type: d.type, default: d === g.defaultDomain } : null;
  };
  const iommus = cfg.iommus.map((c): TreeIommu => {
    const model = soc.iommu(c.name);
    return {
      name: c.name,
      model: c.model,
      dtPath: c.dtPath ?? null,
      windows: model.registerFiles().map((w, i) => ({ name: w.window, base: w.base, size: num(c.reg[i]?.size ?? 0) })),
      irq: c.irq ?? null,
      coherentWalk: c.coherentWalk ?? false,
      powerDomain: c.powerDomain ?? null,
      powered: model.isPowered() && on(c.powerDomain),
      rpm: rpm(c.name),
    };
  });
  const devices = cfg.devices.map((d): TreeDevice => ({
    name: d.name,
    dtPath: d.dtPath ?? null,
    iommu: d.iommu ?? null,
    masterId: d.masterId ?? 0,
    powerDomain: d.powerDomain ?? null,
    powered: soc.device(d.name).isPowered() && on(d.powerDomain),
    coherent: d.coherent ?? false,
    compatible: d.compatible ?? null,
    rpm: rpm(d.name),
    attached: attached(d.name),
  }));
  const powerDomains = (cfg.powerDomains ?? []).map((p): TreeDomain => ({
    name: p.name,
    dtPath: p.dtPath ?? null,
    on: soc.powerDomain(p.name).on,
    members: [...cfg.iommus, ...cfg.devices].filter((b) => b.powerDomain === p.name).map((b) => b.name),
  }));
  const links = (k?.pm.deviceLinks() ?? []).map((l): TreeLink => ({ consumer: l.consumer, supplier: l.supplier, flags: l.flags, refs: l.rpmActive - 1 }));
  return { name: cfg.name, memory: cfg.memory.map((m) => ({ name: m.name, base: num(m.base), size: num(m.size), dtPath: m.dtPath ?? null })), iommus, devices, powerDomains, links, ...soc.lines() };
}
