/**
 * Each checker against the bug it exists for (it fires, naming what a driver developer needs) and
 * against the fixed behaviour (it stays quiet). Engine-level: the preset SoCs with their kernel.
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../core/findings';
import { ACI_RD_WR, DT, H6Driver, h6Soc, PT_POOL } from '../hw/h6-test-kit';
import { presetSoc } from '../kernel/testing/presets';
import type { Soc } from '../soc';

const RW = 3;
const IOVA = 0x1000_0000;
const H6 = 'iommu0';

const kinds = (f: Finding[]): string[] => f.map((x) => x.kind);

/** A page holding 4 recognisable bytes, cleaned to RAM. */
async function page(soc: Soc, fill: number): Promise<number> {
  const pa = await soc.kernel.api.allocPages(1);
  soc.cache.write(pa, new Uint8Array(4).fill(fill));
  soc.cache.clean(pa, 4);
  return pa;
}

/** H6: domains a (IOVA → page of 0xaa) and b (→ 0xbb); ve reads through a, then b is attached. */
async function h6Switch(invalidateOnSwitch: boolean): Promise<{ soc: Soc; read: () => Uint8Array | undefined; pageA: number }> {
  const soc = presetSoc('sun50i-h6');
  const k = soc.kernel.api;
  k.driver(H6).setVariant({ invalidateOnSwitch });
  const pageA = await page(soc, 0xaa);
  const pageB = await page(soc, 0xbb);
  const a = await k.domainAlloc(H6);
  const b = await k.domainAlloc(H6);
  // A domain maps only once attached (before, upstream oopses): b is attached once to map it.
  await k.attachGroup(b, k.group('ve'));
  await k.map(b, IOVA, pageB, 0x1000, RW);
  await k.detachGroup(b, k.group('ve'));
  await k.attachGroup(a, k.group('ve'));
  await k.map(a, IOVA, pageA, 0x1000, RW);
  soc.device('ve').read(IOVA, 4);
  await k.detachGroup(a, k.group('ve'));
  await k.attachGroup(b, k.group('ve'));
  return { soc, read: () => soc.device('ve').read(IOVA, 4).data, pageA };
}

describe('stale-translation', () => {
  it('fires when a TLB hit contradicts the tables (domain switch without invalidation), naming the PAs', async () => {
    const { soc, read, pageA } = await h6Switch(false);
    expect(read()).toEqual(new Uint8Array(4).fill(0xaa));
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['stale-translation']);
    expect(f[0]!.severity).toBe('error');
    expect(f[0]!.message).toContain(`translated to 0x${pageA.toString(16)} through a cached entry (cached by the walk at t=`);
    expect(f[0]!.message).toMatch(/tables in memory \(domain \d+\) map it to 0x/);
    expect(f[0]!.where).toMatchObject({ iommu: H6, device: 've', iova: '0x10000000' });
    expect(f[0]!.replay).toEqual({ seed: 1, event: expect.any(Number) });
    // Once per cause: the same stale hit again is not a new finding.
    read();
    expect(soc.findings.list()).toEqual([]);
  });

  it('stays quiet when the switch invalidates', async () => {
    const { soc, read } = await h6Switch(true);
    expect(read()).toEqual(new Uint8Array(4).fill(0xbb));
    expect(soc.findings.list()).toEqual([]);
  });

  it('names a fault on a cached invalid line (Rockchip zap before update)', async () => {
    const soc = presetSoc('rk3399');
    const k = soc.kernel.api;
    k.driver('vopb_mmu').setVariant({ zapOrder: 'before-update' });
    await k.pm.getSync('vopb');
    const d = await k.domainAlloc('vopb_mmu');
    await k.attachDevice(d, 'vopb');
    const pa = await k.allocPages(2);
    await k.map(d, IOVA, pa, 0x1000, RW);
    // A walk of the neighbour's line right after the zap, before the PTE write.
    await k.kretprobe('rk_iommu_zap_iova_first_last', () => soc.device('vopb').read(IOVA, 4));
    await k.map(d, IOVA + 0x1000, pa + 0x1000, 0x1000, RW);
    expect(soc.findings.take()).toEqual([]);
    expect(soc.device('vopb').read(IOVA + 0x1000, 4).ok).toBe(false);
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['fault', 'stale-translation']);
    expect(f[0]!.message).toContain('(IRQ 118)');
    expect(f[1]!.message).toContain('faulted (pte-invalid) on a cached entry');
    expect(f[1]!.message).toContain(`map it to 0x${(pa + 0x1000).toString(16)}`);
    expect(f[1]!.message).toContain('last change: map(0x10001000, size 0x1000');
  });
});

describe('stale-translation through the H6 PTW cache (a walk that reads the PTE but takes the DTE from its cache)', () => {
  const PA1 = 0x4800_0000;
  const PA2 = 0x4900_0000;
  const FLUSH_TLBS = 0x0001003f;

  function rig(): { soc: Soc; drv: H6Driver; read: (iova: number) => void } {
    const soc = h6Soc();
    const drv = new H6Driver(soc);
    drv.map(IOVA, PA1);
    drv.map(IOVA + 0x1000, PA1 + 0x1000);
    drv.enable();
    drv.set('TLB_PREFETCH', 0);
    const ve = soc.device('ve');
    const read = (iova: number): void => void ve.read(iova, 4);
    read(IOVA);
    // Through the cached DTE, which memory still holds: consistent, nothing to report.
    read(IOVA + 0x1000);
    expect(soc.findings.take()).toEqual([]);
    return { soc, drv, read };
  }

  it('fires when the DTE in memory changed and only the TLBs were invalidated', () => {
    const { soc, drv, read } = rig();
    // A new PT for the same 1 MiB region, installed with a clean, TLB flush but no PTW invalidation.
    const pt = PT_POOL + 0x8000;
    soc.writel(((PA2 + 0x1000) | (ACI_RD_WR << 4) | 2) >>> 0, pt + 4);
    soc.cache.clean(pt + 4, 4);
    soc.writel((pt | 1) >>> 0, drv.dtePa(IOVA));
    soc.cache.clean(drv.dtePa(IOVA), 4);
    drv.set('TLB_FLUSH', FLUSH_TLBS);
    read(IOVA + 0x1000);
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['stale-translation']);
    expect(f[0]!.message).toContain(`translated to 0x${(PA1 + 0x1000).toString(16)}`);
    expect(f[0]!.message).toContain(`map it to 0x${(PA2 + 0x1000).toString(16)}`);
  });

  // The checker reads a walk-cached DTE once while nothing changes, but RAM can change without the
  // CPU or MMIO. Pages 2 and 3 of the region are mapped in the old PT and page 2 in a new one, all
  // behind the CPU; page 3's walk takes the cached DTE after that, page 2's after the DTE changed.
  function newTable(soc: Soc, drv: H6Driver, read: (iova: number) => void, stage: (dte: number) => void = () => {}): number {
    const oldPt = (soc.ram.read32(drv.dtePa(IOVA)) & ~0x3ff) >>> 0;
    soc.ram.write32(oldPt + 8, ((PA1 + 0x2000) | (ACI_RD_WR << 4) | 2) >>> 0);
    soc.ram.write32(oldPt + 12, ((PA1 + 0x3000) | (ACI_RD_WR << 4) | 2) >>> 0);
    const pt = PT_POOL + 0x8000;
    soc.ram.write32(pt + 8, ((PA2 + 0x2000) | (ACI_RD_WR << 4) | 2) >>> 0);
    stage((pt | 1) >>> 0);
    read(IOVA + 0x3000);
    expect(soc.findings.take()).toEqual([]);
    return (pt | 1) >>> 0;
  }

  it('fires when the DTE changed in RAM behind the CPU cache (a device, a debugger)', () => {
    const { soc, drv, read } = rig();
    const dte = newTable(soc, drv, read);
    soc.ram.write32(drv.dtePa(IOVA), dte);
    read(IOVA + 0x2000);
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['stale-translation']);
    expect(f[0]!.message).toContain(`map it to 0x${(PA2 + 0x2000).toString(16)}`);
  });

  it('fires when a DMA copy still queued in RAM lands on the DTE', () => {
    const { soc, drv, read } = rig();
    const staged = PT_POOL + 0xc000;
    newTable(soc, drv, read, (dte) => soc.ram.write32(staged, dte));
    // A copy beat over the DTE, merged and not yet applied when the next walk takes the cached DTE.
    soc.ram.queueCopy(drv.dtePa(IOVA), staged, 4);
    read(IOVA + 0x2000);
    expect(kinds(soc.findings.take())).toEqual(['stale-translation']);
  });

  it('fires when TTB moved to another DT and only the TLBs were invalidated', () => {
    const { soc, drv, read } = rig();
    const dt2 = DT + 0x4000;
    const pt = PT_POOL + 0x8000;
    soc.writel(((PA2 + 0x1000) | (ACI_RD_WR << 4) | 2) >>> 0, pt + 4);
    soc.cache.clean(pt + 4, 4);
    soc.writel((pt | 1) >>> 0, dt2 + (IOVA >>> 20) * 4);
    soc.cache.clean(dt2 + (IOVA >>> 20) * 4, 4);
    drv.set('TTB', dt2);
    drv.set('TLB_FLUSH', FLUSH_TLBS);
    read(IOVA + 0x1000);
    expect(kinds(soc.findings.take())).toEqual(['stale-translation']);
  });
});

describe('unflushed-walk', () => {
  it('names the table, its domain and the IOVA', async () => {
    const soc = presetSoc('sun50i-h6');
    const k = soc.kernel.api;
    k.driver(H6).setVariant({ flushTables: false });
    const d = await k.domainAlloc(H6);
    await k.attachGroup(d, k.group('ve'));
    await k.map(d, IOVA, await page(soc, 1), 0x1000, RW);
    soc.device('ve').read(IOVA, 4);
    const f = soc.findings.take().find((x) => x.kind === 'unflushed-walk')!;
    expect(f.message).toContain(`the DTE for IOVA 0x10000000`);
    expect(f.message).toContain(`in page table (domain ${d.id}, level 1, iommu0)`);
    expect(f.where).toMatchObject({ iommu: H6, iova: '0x10000000', domain: d.id });
  });
});

describe('table-use-after-free and live-domain-free', () => {
  async function freeLive(detachBeforeFree: boolean): Promise<{ soc: Soc; atFree: Finding[]; ttb: number; domain: number }> {
    const soc = presetSoc('sun50i-h6');
    const k = soc.kernel.api;
    k.driver(H6).setVariant({ detachBeforeFree });
    const d = await k.domainAlloc(H6);
    await k.attachGroup(d, k.group('ve'));
    await k.map(d, IOVA, await page(soc, 1), 0x1000, RW);
    const ttb = soc.readReg(H6, 'TTB');
    await k.domainFree(d);
    const atFree = soc.findings.take();
    // The freed DT comes back as the next 16 KiB allocation, full of other data.
    expect(await k.allocPages(4)).toBe(ttb);
    soc.cache.write(ttb, new Uint8Array(0x4000).fill(0xff));
    soc.cache.clean(ttb, 0x4000);
    soc.device('ve').read(0x5000_0000, 4);
    return { soc, atFree, ttb, domain: d.id };
  }

  it('fire at the free of a live domain and at the walk of its reused table', async () => {
    const { soc, atFree, ttb, domain } = await freeLive(false);
    // Upstream's domain_free frees the DT only: the PT is leaked, and named too.
    expect(kinds(atFree)).toEqual(['live-domain-free', 'table-leak']);
    expect(atFree[0]!.message).toContain(`domain ${domain} freed while live in iommu0: TTB still points at its level-1 table 0x${ttb.toString(16)}`);
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['table-use-after-free', 'fault']);
    expect(f[0]!.message).toContain(`it was a level-1 page table of domain ${domain}`);
    expect(f[0]!.message).toContain('it now belongs to script pages');
  });

  it('stay quiet when the domain is detached before its tables are freed', async () => {
    const { soc, atFree } = await freeLive(true);
    expect(atFree).toEqual([]);
    // No walk of a freed table: sun50i_iommu_disable left the IOMMU gated and in reset, and a DMA
    // through it is named as that (the master would hang on silicon).
    const f = soc.findings.list();
    expect(kinds(f)).toEqual(['dma-while-suspended']);
    expect(f[0]!.message).toContain('while iommu0 is powered off');
  });
});

describe('lost-mapping', () => {
  it('fires when a promised mapping is gone after a later kernel call, naming both calls', async () => {
    const soc = presetSoc('sun50i-h6');
    const k = soc.kernel.api;
    const d = await k.domainAlloc(H6);
    await k.attachGroup(d, k.group('ve'));
    const pa = await k.allocPages(2);
    await k.map(d, IOVA, pa, 0x1000, RW);
    // Something outside the driver's map/unmap clears the PTE (a racing table store, in P2).
    const dt = (soc.kernel.domain(d).priv as { dt: number }).dt;
    const pt = (soc.cache.read32(dt + (IOVA >>> 20) * 4) & 0xfffffc00) >>> 0;
    soc.cache.write32(pt, 0);
    await k.map(d, IOVA + 0x1000, pa + 0x1000, 0x1000, RW);
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['lost-mapping']);
    expect(f[0]!.message).toContain(`map(0x10000000, size 0x1000 → 0x${pa.toString(16)}) returned success`);
    expect(f[0]!.message).toContain('iova_to_phys(0x10000000) now gives nothing (unmapped)');
    expect(f[0]!.message).toContain('the call that disagrees: map(0x10001000, size 0x1000');
  });

  it('stays quiet through maps, partial unmaps and remaps', async () => {
    const soc = presetSoc('rk3399');
    const k = soc.kernel.api;
    const d = await k.domainAlloc('vopb_mmu');
    const pa = await k.allocPages(8);
    await k.map(d, IOVA, pa, 0x8000, RW);
    expect(await k.unmap(d, IOVA + 0x2000, 0x2000)).toBe(0x2000);
    await k.map(d, IOVA + 0x2000, pa, 0x1000, RW);
    await k.map(d, IOVA + 0x40_0000, pa, 0x1000, RW);
    expect(soc.findings.list()).toEqual([]);
  });
});

describe('unmap of what is not mapped (raw iommu_unmap)', () => {
  it('warns, naming the range', async () => {
    const soc = presetSoc('sun50i-h6');
    const k = soc.kernel.api;
    const d = await k.domainAlloc(H6);
    await k.attachGroup(d, k.group('ve'));
    await k.map(d, IOVA, await k.allocPages(1), 0x1000, RW);
    expect(await k.unmap(d, IOVA, 0x2000)).toBe(0x1000);
    const f = soc.findings.take();
    expect(f.map((x) => [x.kind, x.severity])).toEqual([['unmap-mismatch', 'warning']]);
    expect(f[0]!.message).toContain('iommu_unmap(0x10000000, size 0x2000) unmapped 0x1000 bytes: the range is mapped only up to 0x10001000');
    expect(await k.unmap(d, IOVA, 0x1000)).toBe(0);
    expect(soc.findings.take()[0]!.message).toContain('nothing is mapped there');
  });
});

describe('dma-while-suspended', () => {
  async function rk(linked: boolean): Promise<Soc> {
    const soc = presetSoc('rk3399');
    const k = soc.kernel.api;
    if (!linked) await k.deviceLinkDel('vopb', 'vopb_mmu');
    const d = await k.domainAlloc('vopb_mmu');
    await k.attachDevice(d, 'vopb');
    await k.map(d, IOVA, await page(soc, 1), 0x1000, RW);
    await k.pm.getSync('vopb');
    soc.device('vopb').read(IOVA, 4);
    return soc;
  }

  it('fires for DMA through a runtime-suspended IOMMU, naming device, IOMMU and state', async () => {
    const f = (await rk(false)).findings.take();
    expect(kinds(f)).toEqual(['dma-while-suspended']);
    expect(f[0]!.message).toContain('through vopb_mmu while vopb_mmu is runtime-suspended; no pm-runtime device link from vopb to vopb_mmu');
  });

  it('stays quiet when the link resumes the IOMMU with its master', async () => {
    expect((await rk(true)).findings.list()).toEqual([]);
  });

  it('fires for DMA through a powered-off IOMMU and by a powered-off master', () => {
    const soc = presetSoc('rk3399');
    soc.powerDomain('pd_vopb').set(false);
    soc.device('vopb').read(IOVA, 4);
    const f = soc.findings.take();
    expect(kinds(f)).toEqual(['dma-while-suspended']);
    expect(f[0]!.message).toContain('while the master is powered off (power domain pd_vopb is off)');
  });
});

describe('pm-disabled-no-setup', () => {
  async function h6(programInResumeOnly: boolean): Promise<Soc> {
    const soc = presetSoc('sun50i-h6');
    const k = soc.kernel.api;
    k.driver(H6).setVariant({ programInResumeOnly });
    k.pm.setEnabled(false);
    const d = await k.domainAlloc(H6);
    await k.attachGroup(d, k.group('ve'));
    await k.map(d, IOVA, await page(soc, 1), 0x1000, RW);
    soc.device('ve').read(IOVA, 4);
    return soc;
  }

  it('fires when CONFIG_PM=n leaves a resume-only driver never programmed', async () => {
    const f = (await h6(true)).findings.take();
    expect(kinds(f)).toContain('pm-disabled-no-setup');
    const m = f.find((x) => x.kind === 'pm-disabled-no-setup')!;
    expect(m.message).toContain('runtime PM is compiled out (CONFIG_PM=n)');
    expect(m.where).toMatchObject({ iommu: H6, device: 've', iova: '0x10000000' });
  });

  it('stays quiet when attach programs the hardware', async () => {
    expect((await h6(false)).findings.list()).toEqual([]);
  });
});

describe('snapshots', () => {
  it('restore brings back what the checkers knew, so a replayed run reports the same', async () => {
    const soc = presetSoc('sun50i-h6');
    const k = soc.kernel.api;
    const d = await k.domainAlloc(H6);
    await k.attachGroup(d, k.group('ve'));
    const pa = await k.allocPages(1);
    await k.map(d, IOVA, pa, 0x1000, RW);
    const snap = soc.checks.snapshot();
    await k.unmap(d, IOVA, 0x1000);
    soc.checks.restore(snap);
    expect(soc.checks.snapshot()).toEqual(snap);
  });
});
