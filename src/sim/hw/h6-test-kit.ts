/** Test kit: an H6 SoC from the preset, and driver-like helpers that build DT/PTs with CPU stores. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SocConfig } from '../config/types';
import { Soc } from '../soc';

export const PRESET_FILE = fileURLToPath(new URL('../../../resources/socs/sun50i-h6.soc.json', import.meta.url));
export const IOMMU = 'iommu0';
export const DT = 0x4000_0000;
export const PT_POOL = 0x4010_0000;
export const ACI_NONE = 1;
export const ACI_RD = 2;
export const ACI_WR = 3;
export const ACI_RD_WR = 4;

export function presetConfig(): SocConfig {
  return JSON.parse(readFileSync(PRESET_FILE, 'utf8')) as SocConfig;
}

export function h6Soc(edit?: (c: SocConfig) => void, seed = 1): Soc {
  const c = presetConfig();
  edit?.(c);
  return new Soc(c, seed);
}

/** A minimal driver: one DT, PTs from a bump allocator, flushes unless told not to. */
export class H6Driver {
  private nextPt = PT_POOL;

  constructor(readonly soc: Soc) {}

  reg(name: string): number {
    return this.soc.readReg(IOMMU, name);
  }

  set(name: string, v: number): void {
    this.soc.writeReg(IOMMU, name, v);
  }

  dtePa(iova: number): number {
    return DT + (iova >>> 20) * 4;
  }

  ptePa(iova: number): number {
    const dte = this.soc.readl(this.dtePa(iova));
    return ((dte & 0xfffffc00) >>> 0) + ((iova >>> 12) & 0xff) * 4;
  }

  map(iova: number, pa: number, aci = ACI_RD_WR, flush = true): void {
    const dtePa = this.dtePa(iova);
    if ((this.soc.readl(dtePa) & 3) !== 1) {
      const pt = this.nextPt;
      this.nextPt += 1024;
      this.soc.writel((pt | 1) >>> 0, dtePa);
      if (flush) this.soc.cache.clean(dtePa, 4);
    }
    const ptePa = this.ptePa(iova);
    this.soc.writel((pa | (aci << 4) | 2) >>> 0, ptePa);
    if (flush) this.soc.cache.clean(ptePa, 4);
  }

  unmap(iova: number): void {
    const ptePa = this.ptePa(iova);
    this.soc.writel(0, ptePa);
    this.soc.cache.clean(ptePa, 4);
  }

  /** The mainline enable sequence (hardware-facts §1.9), ACI programming included. */
  enable(aut = { 0x0b0: 0x0fff0000, 0x0b4: [0x00000aaa, 0x05550000] }): void {
    this.set('TTB', DT);
    this.set('TLB_PREFETCH', 0x3f);
    this.set('INT_ENABLE', 0x0003003f);
    this.set('DM_AUT_CTRL0', aut[0x0b0]);
    for (const v of aut[0x0b4]) this.set('DM_AUT_CTRL1', v);
    this.flushAll();
    this.set('AUTO_GATING', 1);
    this.set('ENABLE', 1);
  }

  flushAll(): void {
    this.set('TLB_FLUSH', 0x0003003f);
    this.poll('TLB_FLUSH');
  }

  zapIova(iova: number, mask = 0xfffff000): void {
    this.set('TLB_IVLD_ADDR', iova);
    this.set('TLB_IVLD_ADDR_MASK', mask);
    this.set('TLB_IVLD_ENABLE', 1);
    this.poll('TLB_IVLD_ENABLE');
  }

  zapPtw(iova: number): void {
    this.set('PC_IVLD_ADDR', iova);
    this.set('PC_IVLD_ENABLE', 1);
    this.poll('PC_IVLD_ENABLE');
  }

  poll(name: string, tries = 2000): number {
    for (let i = 1; i <= tries; i++) if (this.reg(name) === 0) return i;
    throw new Error(`${name} still busy after ${tries} reads`);
  }
}
