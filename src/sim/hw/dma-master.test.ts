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
