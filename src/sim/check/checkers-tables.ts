/**
 * What the checkers need to know of each IOMMU model's table format and registers: the table base
 * each instance translates with now (live tables), and a walk of the tables in memory for one IOVA
 * that uses no cache and changes nothing (peek). The checkers compare the hardware's answers with
 * these. Models not listed here get the model-independent checks only.
 */
import type { IommuConfig } from '../config/types';
import type { Bus } from '../mem/bus';
import type { AccessKind, FaultReason, IommuModel, MasterPort } from '../hw/types';
import { RK_PTE_READABLE, RK_PTE_WRITABLE, RK_VALID, rkDecodeAddr, rkDteIndex, rkPteIndex, type RkVersion } from '../hw/rockchip-format';
import { RK_STATUS } from '../hw/rockchip-regs';

/** One register window's translation context. */
export interface LiveTable {
  /** Register window (instance) name. */
  window: string;
  /** Physical address of the root table the instance walks. */
  root: number;
  /** Translation is on: the IOMMU is powered and walks root for (some) masters. */
  enabled: boolean;
  /** The register that holds root, for messages. */
  reg: string;
}

/** A fresh walk's answer: off (no translation: bypass, disabled, stalled), a PA, or a fault. */
export type Peek = { kind: 'off' } | { kind: 'ok'; pa: number; window: string } | { kind: 'fault'; reason: FaultReason; window: string; detail: string };

export interface ModelTables {
  live(): LiveTable[];
  /** The instance that translates master's access (its window name). */
  windowFor(master: MasterPort, access: AccessKind): string;
  peek(master: MasterPort, iova: number, access: AccessKind): Peek;
  /**
   * For a walk that took a level from the model's walk cache: where a walk for iova would now read
   * that level's table word. The walk agrees with memory when the word there, read as the walker
   * reads it, still holds the cached value (types.ts TranslationSource).
   */
  cachedLevelAt?(iova: number): number;
  /** The walker's view of a table word. */
  read: WalkerRead;
}

/** Reads a table word as the model's walker would (RAM, or RAM plus dirty CPU lines if coherent); null off RAM. */
export type WalkerRead = (pa: number) => number | null;

export function walkerRead(bus: Bus, coherent: boolean): WalkerRead {
  return (pa) => (bus.ram.contains(pa, 4) ? bus.devRead32(pa, coherent, 'checker') : null);
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const OFF: Peek = { kind: 'off' };

function h6Tables(model: IommuModel, read: WalkerRead): ModelTables {
  const regs = model.registerFiles()[0]!.regs;
  const window = model.name;
  // Peek runs on DMA beats: registers are read by slot.
  const ENABLE = regs.slot('ENABLE');
  const BYPASS = regs.slot('BYPASS');
  const TTB = regs.slot('TTB');
  const AUT = Array.from({ length: 8 }, (_, r) => regs.slot(`DM_AUT_CTRL${r}`));
  const fault = (reason: FaultReason, detail: string): Peek => ({ kind: 'fault', reason, window, detail });
  return {
    live: () => [{ window, root: (regs.at(TTB) & 0xffffc000) >>> 0, enabled: model.isPowered() && (regs.at(ENABLE) & 1) !== 0, reg: 'TTB' }],
    windowFor: () => window,
    // The PTW cache holds DTEs, untagged by TTB: the cached word must be the one the DT holds now.
    cachedLevelAt: (iova) => ((regs.at(TTB) & 0xffffc000) >>> 0) + (iova >>> 20) * 4,
    read,
    peek(master, iova, access) {
      const m = master.id;
      if (!model.isPowered() || (regs.at(ENABLE) & 1) === 0 || (regs.at(BYPASS) & (1 << m)) !== 0) return OFF;
      const dtePa = ((regs.at(TTB) & 0xffffc000) >>> 0) + (iova >>> 20) * 4;
      const dte = read(dtePa);
      if (dte === null) return fault('bus-error', `DTE at ${hex(dtePa)} is not RAM`);
      if ((dte & 3) !== 1) return fault('dte-invalid', `DTE at ${hex(dtePa)} is ${hex(dte)}`);
      const ptePa = ((dte & 0xfffffc00) >>> 0) + ((iova >>> 12) & 0xff) * 4;
      const pte = read(ptePa);
      if (pte === null) return fault('bus-error', `PTE at ${hex(ptePa)} is not RAM`);
      if ((pte & 2) === 0) return fault('pte-invalid', `PTE at ${hex(ptePa)} is ${hex(pte)}`);
      // ACI permissions are read from DM_AUT_CTRL on every access, as the model does.
      const aci = (pte >>> 4) & 0xf;
      const half = regs.at(AUT[aci >>> 1]!) >>> ((aci & 1) << 4);
      if (((half >>> (2 * m + (access === 'write' ? 1 : 0))) & 1) !== 0) return fault('permission', `PTE at ${hex(ptePa)} has ACI ${aci}`);
      return { kind: 'ok', pa: ((pte & 0xfffff000) >>> 0) + (iova & 0xfff), window };
    },
  };
}

function rockchipTables(model: IommuModel, cfg: IommuConfig, read: WalkerRead): ModelTables {
  const files = model.registerFiles();
  const version: RkVersion = cfg.options?.version === 'v2' ? 'v2' : 'v1';
  // As the model: reads go through the first instance, writes through the last.
  const fileFor = (access: AccessKind): (typeof files)[number] => files[access === 'write' ? files.length - 1 : 0]!;
  return {
    read,
    live: () =>
      files.map((f) => ({
        window: f.window,
        root: rkDecodeAddr(version, f.regs.get('DTE_ADDR')),
        enabled: model.isPowered() && (f.regs.get('STATUS') & RK_STATUS.PAGING_ENABLED) !== 0,
        reg: 'DTE_ADDR',
      })),
    windowFor: (_m, access) => fileFor(access).window,
    peek(_master, iova, access) {
      const f = fileFor(access);
      const window = f.window;
      const st = f.regs.get('STATUS');
      if (!model.isPowered() || (st & RK_STATUS.STALL_ACTIVE) !== 0 || (st & RK_STATUS.PAGING_ENABLED) === 0) return OFF;
      const fault = (reason: FaultReason, detail: string): Peek => ({ kind: 'fault', reason, window, detail });
      const dtePa = rkDecodeAddr(version, f.regs.get('DTE_ADDR')) + rkDteIndex(iova) * 4;
      const dte = read(dtePa);
      if (dte === null) return fault('bus-error', `DTE at ${hex(dtePa)} is not RAM`);
      if (!(dte & RK_VALID)) return fault('dte-invalid', `DTE at ${hex(dtePa)} is ${hex(dte)}`);
      const ptePa = rkDecodeAddr(version, dte) + rkPteIndex(iova) * 4;
      const pte = read(ptePa);
      if (pte === null) return fault('bus-error', `PTE at ${hex(ptePa)} is not RAM`);
      if (!(pte & RK_VALID)) return fault('pte-invalid', `PTE at ${hex(ptePa)} is ${hex(pte)}`);
      if (!(pte & (access === 'write' ? RK_PTE_WRITABLE : RK_PTE_READABLE))) return fault('permission', `PTE at ${hex(ptePa)} is ${hex(pte)}`);
      return { kind: 'ok', pa: rkDecodeAddr(version, pte) + (iova & 0xfff), window };
    },
  };
}

/** The table knowledge for a model instance, or null for a model the checkers do not know. */
export function modelTables(model: IommuModel, cfg: IommuConfig, bus: Bus): ModelTables | null {
  const read = walkerRead(bus, cfg.coherentWalk ?? false);
  switch (model.model) {
    case 'sun50i-h6':
      return h6Tables(model, read);
    case 'rockchip':
      return rockchipTables(model, cfg, read);
    default:
      return null;
  }
}
