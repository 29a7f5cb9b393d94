/**
 * SoC config file format, version 1 (`*.soc.json`). The JSON Schema in
 * resources/schema/soc.schema.json is the published form of these types; numbers that are
 * addresses may be written as hex strings ("0x40000000").
 */
export type Num = number | string;

export interface SocConfig {
  $schema?: string;
  version: 1;
  name: string;
  description?: string;
  /** Default seed for runs that give none. */
  seed?: number;
  /** When the kernel layer boots: 'lazy' (default: first use of `kernel`), 'eager', or 'none'. */
  kernel?: 'none' | 'lazy' | 'eager';
  cpu?: { cores?: number };
  memory: MemoryConfig[];
  powerDomains?: PowerDomainConfig[];
  clocks?: ClockConfig[];
  /** Reset controller lines (e.g. the H6's RST_BUS_IOMMU), named; blocks list the lines they are wired to. */
  resets?: ResetConfig[];
  iommus: IommuConfig[];
  devices: DeviceConfig[];
}

/** The device tree node a block came from (`import-dt`), so views and findings can name it. */
export interface DtOrigin {
  dtPath?: string;
}

export interface MemoryConfig extends DtOrigin {
  name: string;
  base: Num;
  size: Num;
}

export interface PowerDomainConfig extends DtOrigin {
  name: string;
  /** Whether the domain is on at reset (default true). */
  on?: boolean;
  /** What MMIO to a block in this domain does while it is off. */
  offAccess?: 'bus-error' | 'reset-values';
}

export interface ClockConfig extends DtOrigin {
  name: string;
  rateHz?: number;
  on?: boolean;
}

export interface ResetConfig extends DtOrigin {
  name: string;
  /** Whether the line is asserted (the block held in reset) at power-on (default false). */
  asserted?: boolean;
}

export interface CacheSizeConfig {
  entries: number;
}

export interface IommuConfig extends DtOrigin {
  name: string;
  model: 'sun50i-h6' | 'rockchip' | 'mtk-v7s' | 'arm-lpae';
  /** Register windows: one for most IOMMUs, several for a multi-instance Rockchip IOMMU. */
  reg: { base: Num; size: Num }[];
  irq?: number;
  /** Whether the table walker snoops the CPU cache (true) or reads RAM only (false). */
  coherentWalk?: boolean;
  powerDomain?: string;
  clocks?: string[];
  /** Reset lines that hold this block in reset while asserted. */
  resets?: string[];
  tlb?: CacheSizeConfig;
  walkCache?: CacheSizeConfig;
  /** Model-specific options (e.g. Rockchip 'v1' | 'v2'). */
  options?: Record<string, string | number | boolean>;
  /** The user's own C driver for this instance (paths relative to the config file). */
  driver?: IommuDriverConfig;
}

export interface IommuDriverConfig {
  source: string;
  defines?: Record<string, string | number | boolean>;
  includes?: string[];
}

export type TrafficConfig =
  | { kind: 'scanout'; iova: Num; bytes: Num; periodCycles: number }
  | { kind: 'burst'; iova: Num; bytes: Num; periodCycles: number; access: 'read' | 'write' }
  | { kind: 'none' };

export interface DeviceConfig extends DtOrigin {
  name: string;
  /** IOMMU name, or null/absent for a master that reaches RAM directly. */
  iommu?: string | null;
  /** Master / stream ID at its IOMMU. */
  masterId?: number;
  powerDomain?: string;
  clocks?: string[];
  resets?: string[];
  /** Whether the device's own DMA is cache-coherent (default false). */
  coherent?: boolean;
  /** Bytes per DMA beat (default 64). */
  beatBytes?: number;
  traffic?: TrafficConfig;
  compatible?: string;
}

/** Parse a Num: decimal number, or "0x..." hex string. Text that is neither is an error, never NaN. */
export function num(v: Num): number {
  if (typeof v === 'number') return v;
  const s = v.trim().toLowerCase().replace(/_/g, '');
  const n = s.startsWith('0x') ? (/^0x[0-9a-f]+$/.test(s) ? parseInt(s.slice(2), 16) : Number.NaN) : /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (Number.isNaN(n)) throw new Error(`not a number: ${JSON.stringify(v)}`);
  return n;
}
