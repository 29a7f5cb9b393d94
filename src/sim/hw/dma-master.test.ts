import { describe, expect, it } from 'vitest';
import { Soc } from '../soc';
import type { SocConfig } from '../config/types';

const config = (beatBytes: number, coherent = false): SocConfig => ({
  version: 1,
  name: 'flat',
  memory: [{ name: 'dram', base: 0x4000_0000, size: 0x1000_0000 }],
  iommus: [],
  devices: [
    { name: 'dma0', beatBytes, coherent },
    { name: 'scan', beatBytes: 256, traffic: { kind: 'scanout', iova: '0x40000000', bytes: 4096, periodCycles: 1000 } },
  ],
});

describe('DmaMaster', () => {
  it('splits transfers into beats that never cross a 4 KiB page', () => {
    const soc = new Soc(config(1024));
    const beats: number[] = [];
    const op = soc.device('dma0').writeOp(0x4000_0f00, new Uint8Array(0x1400).fill(5));
    for (let r = op.next(); !r.done; r = op.next()) beats.push(r.value.pa!);
    expect(beats).toEqual([0x4000_0f00, 0x4000_1000, 0x4000_1400, 0x4000_1800, 0x4000_1c00, 0x4000_2000]);
    expect(soc.ram.read(0x4000_0f00, 0x1400).every((b) => b === 5)).toBe(true);
  });

  it('copies beat by beat, one point per beat, and a fault stops the copy after the beats before it', () => {
    const soc = new Soc(config(1024));
    soc.ram.writeFrom(0x4000_0f00, new Uint8Array(0x1400).fill(7));
    const beats: number[] = [];
    const op = soc.device('dma0').copyOp(0x4000_0f00, 0x4100_0000, 0x1400);
    let r = op.next();
    for (; !r.done; r = op.next()) beats.push(r.value.pa!);
    // Beats end at 4 KiB boundaries on either side: the source's first page, then the destination's.
    expect(beats).toEqual([0x4000_0f00, 0x4000_1000, 0x4000_1400, 0x4000_1800, 0x4000_1c00, 0x4000_1f00, 0x4000_2000]);
    expect(r.value).toEqual({ ok: true });
    expect(op.next()).toEqual({ done: true, value: undefined });
    expect(soc.ram.read(0x4100_0000, 0x1400).every((b) => b === 7)).toBe(true);

    const end = 0x4000_0000 + 0x1000_0000;
    const cut = soc.device('dma0').copy(0x4000_0f00, end - 0x800, 0x1000);
    expect(cut).toMatchObject({ ok: false, fault: { reason: 'bus-error', iova: end } });
    expect(soc.ram.read(end - 0x800, 0x800).every((b) => b === 7)).toBe(true);

    soc.device('dma0').setPowered(false);
    const off = soc.device('dma0').copyOp(0x4000_0f00, 0x4100_0000, 0x100).next();
    expect(off).toMatchObject({ done: true, value: { ok: false, fault: { reason: 'powered-off' } } });
  });

  it('a non-coherent master misses dirty CPU lines; a coherent one sees them and updates them', () => {
    for (const coherent of [false, true]) {
      const soc = new Soc(config(64, coherent));
      soc.writel(0xabcd, 0x4000_0000);
      expect(soc.device('dma0').read(0x4000_0000, 4).data).toEqual(coherent ? Uint8Array.of(0xcd, 0xab, 0, 0) : new Uint8Array(4));
      soc.device('dma0').write(0x4000_0000, Uint8Array.of(1, 2, 3, 4));
      expect(soc.readl(0x4000_0000)).toBe(coherent ? 0x04030201 : 0xabcd);
    }
  });

  it('DMA outside RAM stops with a bus-error fault', () => {
    const soc = new Soc(config(64));
    const r = soc.device('dma0').read(0x3fff_ffc0, 128);
    expect(r).toMatchObject({ ok: false, fault: { reason: 'bus-error', master: 'dma0', iova: 0x3fff_ffc0 } });
    expect(soc.findings.take().map((f) => f.kind)).toEqual(['bus-error']);
  });

  it('runs background traffic on the clock and re-arms it after restore', () => {
    const soc = new Soc(config(64));
    const scan = soc.device('scan');
    soc.run(2500);
    expect(scan.trafficStats()).toEqual({ runs: 2, faults: 0 });
    const snap = soc.snapshot();
    soc.run(5000);
    soc.restore(snap);
    expect(scan.trafficStats()).toEqual({ runs: 2, faults: 0 });
    soc.run(1000);
    expect(scan.trafficStats()).toEqual({ runs: 3, faults: 0 });
  });
});
