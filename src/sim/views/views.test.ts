import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { SocConfig } from '../config/types';
import type { TraceEvent } from '../core/trace';
import { ACI_RD, ACI_RD_WR, DT, H6Driver, h6Soc, IOMMU } from '../hw/h6-test-kit';
import { RK_PTE_READABLE, RK_PTE_WRITABLE, RK_VALID } from '../hw/rockchip-format';
import { Soc } from '../soc';
import { deviceTree } from './device-tree';
import { dirtyLinesIn, touchedFramesIn } from './memory';
import { toPerfetto } from './perfetto';
import { checkTlb, checkWalkCache, staleness, walkH6 } from './stale-tlb';
import { traceWindow } from './trace-window';

const IOVA = 0x1000_0000;
const PAGE_A = 0x4800_0000;
const PAGE_B = 0x4900_0000;

function rk3399(): Soc {
  const file = fileURLToPath(new URL('../../../resources/socs/rk3399.soc.json', import.meta.url));
  return new Soc(JSON.parse(readFileSync(file, 'utf8')) as SocConfig);
}

describe('memory view helpers', () => {
  it('lists touched frames of a range without touching any', () => {
    const soc = h6Soc();
    soc.ram.write32(0x4000_1004, 1);
    soc.ram.write32(0x4000_5000, 2);
    expect(touchedFramesIn(soc.ram, 0x4000_0000, 0x10000)).toEqual([0x4000_1000, 0x4000_5000]);
    expect(touchedFramesIn(soc.ram, 0x4000_1ff0, 0x20)).toEqual([0x4000_1000]);
    // The whole 4 GiB space answers from the frame list.
    expect(touchedFramesIn(soc.ram, 0, 2 ** 32)).toEqual([0x4000_1000, 0x4000_5000]);
    expect(soc.ram.touchedFrames()).toBe(2);
  });

  it('lists dirty cache lines of a range; a clean removes them', () => {
    const soc = h6Soc();
    soc.writel(0xdead_beef, 0x4000_0040);
    soc.writel(1, 0x4000_2000);
    expect(dirtyLinesIn(soc.cache, 0x4000_0000, 0x1000)).toEqual([0x4000_0040]);
    soc.cache.clean(0x4000_0040, 4);
    expect(dirtyLinesIn(soc.cache, 0x4000_0000, 0x1000)).toEqual([]);
  });

  it('peeks the CPU view without filling cache lines', () => {
    const soc = h6Soc();
    soc.ram.write32(0x4000_0000, 0x1122_3344);
    expect([...soc.cache.peek(0x4000_0000, 4)]).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect(soc.cache.size()).toBe(0);
  });
});

describe('stale TLB detection', () => {
  it('H6: a PTE changed in RAM without invalidation leaves a stale TLB entry', () => {
    const soc = h6Soc();
    const drv = new H6Driver(soc);
    drv.map(IOVA, PAGE_A);
    drv.enable();
    expect(soc.device('de').read(IOVA, 64).ok).toBe(true);
    expect(checkTlb(soc, IOMMU).every((e) => !e.stale)).toBe(true);
    expect(checkTlb(soc, IOMMU).length).toBeGreaterThan(0);

    // Remap to another page in RAM, no TLB invalidation: every cached copy of IOVA is now stale.
    const ptePa = drv.ptePa(IOVA);
    soc.ram.write32(ptePa, (PAGE_B | (ACI_RD_WR << 4) | 2) >>> 0);
    const stale = checkTlb(soc, IOMMU).filter((e) => e.iova === IOVA);
    expect(stale.length).toBeGreaterThan(0);
    expect(stale.every((e) => e.stale)).toBe(true);
    expect(stale[0]!.staleReason).toContain('0x49000000');

    drv.zapIova(IOVA);
    expect(checkTlb(soc, IOMMU).some((e) => e.iova === IOVA)).toBe(false);
  });

  it('H6: the walk cache entry is stale once its DTE changes in memory', () => {
    const soc = h6Soc();
    const drv = new H6Driver(soc);
    drv.map(IOVA, PAGE_A);
    drv.enable();
    soc.device('de').read(IOVA, 4);
    expect(checkWalkCache(soc, IOMMU).every((e) => !e.stale)).toBe(true);
    soc.ram.write32(DT + (IOVA >>> 20) * 4, 0);
    const w = checkWalkCache(soc, IOMMU).find((e) => e.iova === IOVA);
    expect(w?.stale).toBe(true);
  });

  it('H6 re-walk decodes DTE and PTE', () => {
    const mem = new Map<number, number>([
      [DT + (IOVA >>> 20) * 4, 0x4010_0001],
      [0x4010_0000, (PAGE_A | (ACI_RD << 4) | 2) >>> 0],
    ]);
    const read = (pa: number): number => mem.get(pa) ?? 0;
    expect(walkH6(read, DT, IOVA)).toEqual({ ok: true, pa: PAGE_A, perms: ['read', 'write'], attrs: { aci: ACI_RD } });
    expect(walkH6(read, DT, IOVA + 0x1000)).toMatchObject({ ok: false, reason: expect.stringContaining('PTE') });
    expect(walkH6(read, DT, 0)).toMatchObject({ ok: false, reason: expect.stringContaining('DTE') });
  });

  it('compares pa, permissions and attributes', () => {
    const e = { iova: IOVA, pa: PAGE_A, size: 4096, perms: ['read' as const, 'write' as const], valid: true, attrs: { aci: 4 } };
    expect(staleness(e, { ok: true, pa: PAGE_A, perms: ['read', 'write'], attrs: { aci: 4 } }, true)).toBeNull();
    expect(staleness(e, { ok: true, pa: PAGE_A, perms: ['read'] }, true)).toMatch(/perms/);
    expect(staleness(e, { ok: true, pa: PAGE_A, perms: ['read'] }, false)).toBeNull();
    expect(staleness(e, { ok: true, pa: PAGE_A, perms: ['read', 'write'], attrs: { aci: 2 } }, true)).toMatch(/aci/);
  });

  it('Rockchip: a PTE made read-only in RAM leaves a stale IOTLB entry', () => {
    const soc = rk3399();
    const mmu = 'vopb_mmu';
    const dt = 0x0010_0000;
    const pt = 0x0010_1000;
    const iova = 0x1000_0000;
    soc.ram.write32(dt + (iova >>> 22) * 4, pt | RK_VALID);
    soc.ram.write32(pt + ((iova >>> 12) & 0x3ff) * 4, 0x0080_0000 | RK_VALID | RK_PTE_READABLE | RK_PTE_WRITABLE);
    soc.writeReg(mmu, 'DTE_ADDR', dt);
    soc.writeReg(mmu, 'COMMAND', 0); // ENABLE_PAGING
    const dev = soc.devices().find((d) => soc.device(d).iommu?.name === mmu)!;
    expect(soc.device(dev).read(iova, 16).ok).toBe(true);
    expect(checkTlb(soc, mmu).filter((e) => e.stale)).toEqual([]);
    soc.ram.write32(pt + ((iova >>> 12) & 0x3ff) * 4, 0x0080_0000 | RK_VALID | RK_PTE_READABLE);
    const [entry] = checkTlb(soc, mmu);
    expect(entry?.stale).toBe(true);
    expect(entry?.staleReason).toMatch(/perms/);
    expect(checkWalkCache(soc, mmu).some((l) => l.stale)).toBe(true);
  });
});

const ev = (time: number, cat: TraceEvent['cat'], name: string, track: string, dur?: number): TraceEvent => ({ time, cat, name, track, dur, args: { n: time } });

describe('trace window', () => {
  const events = [ev(100, 'dma', 'read', 'de', 50), ev(10, 'fault', 'pte-invalid', 'iommu0'), ev(300, 'inval', 'flush', 'iommu0'), ev(20, 'dma', 'write', 've', 500)];

  it('returns overlapping events in time order, spans included by overlap', () => {
    const w = traceWindow(events, 120, 310, 100);
    expect(w.events.map((e) => e.name)).toEqual(['write', 'read', 'flush']);
    expect(w.total).toBe(3);
    // Sequence numbers in emission order (the ring's), offset by the first one's.
    expect(w.seq).toEqual([4, 1, 3]);
    expect(traceWindow(events, 120, 310, 100, 501).seq).toEqual([504, 501, 503]);
    expect(w.extent).toEqual({ start: 10, end: 520 });
  });

  it('thins evenly to the limit', () => {
    const many = Array.from({ length: 1000 }, (_, i) => ev(i, 'dma', `e${i}`, 'de'));
    const w = traceWindow(many, 0, 1000, 10);
    expect(w.events).toHaveLength(10);
    expect(w.total).toBe(1000);
    expect(w.events[9]!.time).toBe(900);
  });

  it('has no extent when empty', () => {
    expect(traceWindow([], 0, 10, 10)).toEqual({ events: [], seq: [], total: 0, extent: null });
  });
});

describe('Perfetto export', () => {
  it('writes complete and instant events in µs with named tracks, and parses back as JSON', () => {
    const out = JSON.parse(JSON.stringify(toPerfetto([ev(2000, 'dma', 'read', 'de', 1000), ev(500, 'fault', 'pte-invalid', 'iommu0')], { socName: 'h6', cyclesPerUs: 1000 }))) as ReturnType<typeof toPerfetto>;
    const body = out.traceEvents.filter((e) => e.ph !== 'M');
    expect(body).toEqual([
      { name: 'pte-invalid', cat: 'fault', ph: 'i', s: 't', ts: 0.5, pid: 1, tid: 1, args: { n: 500 } },
      { name: 'read', cat: 'dma', ph: 'X', ts: 2, dur: 1, pid: 1, tid: 2, args: { n: 2000 } },
    ]);
    const names = out.traceEvents.filter((e) => e.name === 'thread_name').map((e) => [e.tid, e.args.name]);
    expect(names).toEqual([
      [1, 'iommu0'],
      [2, 'de'],
    ]);
    expect(out.otherData.cyclesPerUs).toBe(1000);
  });
});

describe('device tree', () => {
  it('lists IOMMUs, masters behind them and power domains with live state', () => {
    const soc = h6Soc();
    const t = deviceTree(soc);
    expect(t.iommus.map((i) => [i.name, i.model, i.powered, i.powerDomain])).toEqual([['iommu0', 'sun50i-h6', true, 'pd_iommu']]);
    expect(t.devices.find((d) => d.name === 've')).toMatchObject({ iommu: 'iommu0', masterId: 3 });
    expect(t.powerDomains).toEqual([{ name: 'pd_iommu', dtPath: null, on: true, members: ['iommu0'] }]);
    soc.powerDomain('pd_iommu').set(false);
    expect(deviceTree(soc).iommus[0]!.powered).toBe(false);
  });

  it("shows the kernel's view once it is booted: device links, runtime-PM status, attached domains", async () => {
    const soc = rk3399();
    const before = deviceTree(soc);
    // Looking does not boot the kernel.
    expect(soc.bootedKernel).toBeNull();
    expect(before.links).toEqual([]);
    expect(before.devices.find((d) => d.name === 'vopb')).toMatchObject({ rpm: null, attached: null });
    const k = soc.kernel.api;
    await k.pm.getSync('vopb');
    const t = deviceTree(soc);
    expect(t.links).toContainEqual({ consumer: 'vopb', supplier: 'vopb_mmu', flags: ['stateless', 'pm-runtime'], refs: 1 });
    expect(t.devices.find((d) => d.name === 'vopb')).toMatchObject({ rpm: 'active', attached: { type: 'dma', default: true } });
    expect(t.iommus.find((i) => i.name === 'vopb_mmu')!.rpm).toBe('active');
    const d = await k.domainAlloc('vopb_mmu');
    expect(await k.attachDevice(d, 'vopb')).toBe(0);
    expect(deviceTree(soc).devices.find((x) => x.name === 'vopb')!.attached).toEqual({ id: d.id, type: 'unmanaged', default: false });
  });
});
