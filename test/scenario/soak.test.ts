/**
 * No false positives: on every preset, a long seeded random workload with the fixed
 * drivers: domains allocated, attached, detached and freed; ranges mapped and unmapped; DMA API
 * maps; masters resumed and suspended; DMA from every master to mapped IOVAs (must translate) and
 * unmapped ones (must fault, and the fault findings are taken, the IRQ handled). Any other
 * error-level finding fails the soak with the operations that led to it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/sim/config/validate';
import type { Finding } from '../../src/sim/core/findings';
import type { DomainHandle } from '../../src/sim/kernel/iommu-core';
import { Soc } from '../../src/sim/soc';

const SOCS = fileURLToPath(new URL('../../resources/socs', import.meta.url));
const OPS = 30_000;
const RW = 3;
const BASE = 0x1000_0000;
const WINDOW_PAGES = 4096;

function presetSoc(name: string, seed: number): Soc {
  const file = join(SOCS, `${name}.soc.json`);
  const r = parseConfig(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(`${file}: ${r.errors.map((e) => e.message).join('; ')}`);
  return new Soc(r.config, seed);
}

/** mulberry32: the workload's own seeded generator. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}

interface Dom {
  h: DomainHandle;
  iommu: string;
}

async function soak(preset: string, seed: number): Promise<{ ops: number; dmas: number; faults: number; warnings: number }> {
  const soc = presetSoc(preset, seed);
  const k = soc.kernel.api;
  const core = soc.kernel.core;
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const iommus = soc.config.iommus.filter((i) => core.iommu(i.name)).map((i) => i.name);
  // Mainline sun50i leaks a freed domain's PTs and oopses on a map before the first attach; the
  // soak wants no known bug, so the H6 runs the variants that fix both.
  for (const i of iommus) if (k.driver(i).model === 'sun50i-h6') k.driver(i).setVariant({ detachBeforeFree: true, mapBeforeAttach: 'ok' });
  const masters = soc.config.devices.filter((d) => d.iommu && iommus.includes(d.iommu)).map((d) => ({ name: d.name, iommu: d.iommu! }));
  const pool = await k.allocPages(64);
  const doms: Dom[] = [];
  const active = new Set<string>();
  const dmaMaps: { dev: string; iova: number; size: number }[] = [];
  /** Ranges map calls were asked for, so DMA and unmaps hit mapped IOVAs (and just-unmapped ones) often. */
  const ranges: { domain: number; iova: number; size: number }[] = [];
  const someIova = (domain: number | undefined): number => {
    const mine = ranges.filter((x) => x.domain === domain);
    if (mine.length === 0 || rand(3) === 0) return BASE + rand(WINDOW_PAGES) * 0x1000;
    const x = pick(mine);
    return x.iova + rand(x.size / 0x1000) * 0x1000;
  };
  const log: string[] = [];
  let dmas = 0;
  let faults = 0;
  let warnings = 0;

  const check = (what: string, allowFaults: boolean): void => {
    const f: Finding[] = soc.findings.take();
    warnings += f.filter((x) => x.severity !== 'error').length;
    const bad = f.filter((x) => x.severity === 'error' && !(allowFaults && x.kind === 'fault'));
    faults += f.filter((x) => x.kind === 'fault').length;
    if (bad.length > 0) throw new Error(`${preset} seed ${seed}: unexpected finding after ${what}:\n${bad.map((x) => `  ${x.kind}: ${x.message}`).join('\n')}\nlast operations:\n  ${log.slice(-12).join('\n  ')}`);
  };

  for (let op = 0; op < OPS; op++) {
    const m = pick(masters);
    const r = rand(100);
    if (r < 8 || doms.length === 0) {
      const d = await k.domainAlloc(pick(iommus));
      doms.push({ h: d, iommu: d.iommu });
      log.push(`alloc domain ${d.id} on ${d.iommu}`);
    } else if (r < 30) {
      const d = pick(doms);
      const pages = 1 + rand(8);
      const iova = BASE + rand(WINDOW_PAGES) * 0x1000;
      const pa = pool + rand(64 - pages) * 0x1000;
      const ret = await k.map(d.h, iova, pa, pages * 0x1000, RW);
      ranges.push({ domain: d.h.id, iova, size: pages * 0x1000 });
      if (ranges.length > 256) ranges.shift();
      log.push(`map d${d.h.id} ${iova.toString(16)}+${pages}p → ${pa.toString(16)}: ${ret}`);
    } else if (r < 42) {
      const d = pick(doms);
      const iova = someIova(d.h.id);
      const n = await k.unmap(d.h, iova, (1 + rand(8)) * 0x1000);
      log.push(`unmap d${d.h.id} ${iova.toString(16)}: ${n}`);
      // Unmapping what is not mapped is a caller's mistake the checker warns about, by design.
      soc.findings.take().forEach((x) => expect(x, x.message).toMatchObject({ severity: 'warning' }));
    } else if (r < 50) {
      const d = pick(doms.filter((x) => x.iommu === m.iommu).concat(doms[0]!));
      if (d.iommu !== m.iommu) continue;
      const cur = core.groupOf(m.name)?.domain;
      if (cur && cur.id !== d.h.id && cur !== core.groupOf(m.name)?.defaultDomain) await k.detachGroup(core.handle(cur), k.group(m.name));
      const ret = await k.attachGroup(d.h, k.group(m.name));
      log.push(`attach d${d.h.id} ${m.name}: ${ret}`);
    } else if (r < 55) {
      const cur = core.groupOf(m.name)?.domain;
      if (cur && cur !== core.groupOf(m.name)?.defaultDomain) {
        await k.detachGroup(core.handle(cur), k.group(m.name));
        log.push(`detach d${cur.id} ${m.name}`);
      }
    } else if (r < 58 && doms.length > 1) {
      const i = rand(doms.length);
      const d = doms[i]!;
      const group = core.groupList().find((g) => g.domain?.id === d.h.id);
      if (group) await k.detachGroup(d.h, String(group.id));
      await k.domainFree(d.h);
      doms.splice(i, 1);
      log.push(`free d${d.h.id}`);
    } else if (r < 66) {
      if (active.has(m.name)) {
        await k.pm.put(m.name);
        active.delete(m.name);
      } else {
        await k.pm.getSync(m.name);
        active.add(m.name);
      }
      log.push(`pm ${m.name} ${active.has(m.name) ? 'get' : 'put'}`);
    } else if (r < 72) {
      if (dmaMaps.length > 0 && rand(2) === 0) {
        const x = dmaMaps.splice(rand(dmaMaps.length), 1)[0]!;
        await k.dma.unmapSingle(x.dev, x.iova, x.size, 'bidirectional');
        log.push(`dma_unmap ${x.dev} ${x.iova.toString(16)}`);
      } else {
        const size = (1 + rand(4)) * 0x1000 - rand(0x800);
        const iova = await k.dma.mapSingle(m.name, pool + rand(32) * 0x1000, size, 'bidirectional');
        dmaMaps.push({ dev: m.name, iova, size });
        log.push(`dma_map ${m.name} ${iova.toString(16)}`);
      }
    } else {
      // DMA: the master is resumed for it (its IOMMU follows through the device link) and put after.
      const had = active.has(m.name);
      if (!had) await k.pm.getSync(m.name);
      const d = core.groupOf(m.name)?.domain;
      const near = dmaMaps.filter((x) => x.dev === m.name);
      const iova = near.length > 0 && rand(3) === 0 ? pick(near).iova : someIova(d?.id) + rand(0xf00);
      const want = d && d.type !== 'identity' ? await k.iovaToPhys(core.handle(d), iova) : iova;
      const dev = soc.device(m.name);
      const res = rand(2) === 0 ? dev.read(iova, 4 + rand(200)) : dev.write(iova, new Uint8Array(4 + rand(200)).fill(op & 0xff));
      dmas++;
      log.push(`dma ${m.name} ${iova.toString(16)} (domain ${d?.id}, maps to ${want.toString(16)}): ${res.ok ? 'ok' : res.fault?.reason}`);
      if (want === 0) {
        expect(res.ok, log.slice(-12).join('\n')).toBe(false);
        check(log.at(-1)!, true);
        await k.handleIrq(m.iommu);
      } else {
        expect(res.ok, log.slice(-12).join('\n')).toBe(true);
      }
      if (!had) await k.pm.put(m.name);
    }
    check(log.at(-1) ?? 'start', false);
  }
  return { ops: OPS, dmas, faults, warnings };
}

describe('soak: random workloads with the fixed drivers raise no unexpected error finding', () => {
  for (const [preset, seed] of [
    ['sun50i-h6', 1],
    ['rk3399', 2],
    ['mt8183', 3],
    ['arm64-smmu', 4],
  ] as const) {
    it(`${preset} (seed ${seed})`, async () => {
      const t0 = performance.now();
      const r = await soak(preset, seed);
      console.log(`soak ${preset}: ${r.ops} operations, ${r.dmas} DMA transfers, ${r.faults} expected faults, ${r.warnings} warnings, ${Math.round(performance.now() - t0)} ms`);
      expect(r.dmas).toBeGreaterThan(OPS / 5);
    });
  }
});
