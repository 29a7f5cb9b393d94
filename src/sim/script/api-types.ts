/**
 * The script API as a .d.ts (script-api.md): Monaco loads it for completion and type checking, the
 * CLI writes it with --emit-types. Register names come from the register DSL's block metadata, so
 * soc.reg('iommu0', 'TTB') is checked against the block's real register map.
 */
import type { FindingKind } from '../core/findings';
import type { FaultReason } from '../hw/types';
import type { BlockMeta } from '../regs/dsl';

export interface BlockTypeInfo {
  /** Block type from the register DSL, e.g. 'sun50i-h6-iommu'. */
  type: string;
  registers: string[];
  /** Names of the block instances of this type in the loaded SoC (e.g. 'iommu0'), when known. */
  instances?: string[];
}

/** A block type, or one block instance of the loaded SoC with its register metadata. */
export type BlockSource = BlockTypeInfo | { name: string; meta: BlockMeta };

/** One entry per block type, with the instances of each. */
function byType(blocks: BlockSource[]): BlockTypeInfo[] {
  const types = new Map<string, { registers: Set<string>; instances: Set<string> }>();
  for (const b of blocks) {
    const type = 'meta' in b ? b.meta.type : b.type;
    const t = types.get(type) ?? { registers: new Set<string>(), instances: new Set<string>() };
    types.set(type, t);
    for (const r of 'meta' in b ? b.meta.registers.map((m) => m.name) : b.registers) t.registers.add(r);
    for (const i of 'meta' in b ? [b.name] : (b.instances ?? [])) t.instances.add(i);
  }
  return [...types].map(([type, t]) => ({ type, registers: [...t.registers].sort(), instances: [...t.instances].sort() }));
}

const FINDING_KINDS = [
  'stale-translation',
  'unflushed-walk',
  'lost-mapping',
  'table-leak',
  'table-use-after-free',
  'live-domain-free',
  'double-unmap',
  'unmap-mismatch',
  'dma-while-suspended',
  'pm-disabled-no-setup',
  'fault',
  'reserved-bits',
  'misaligned-table',
  'bus-error',
  'mmio-while-off',
  'driver-warn',
  'oops',
  'master-stalled',
  'driver-oops',
] as const satisfies readonly FindingKind[];

const FAULT_REASONS = [
  'dte-invalid',
  'pte-invalid',
  'permission',
  'bus-error',
  'reserved-bits',
  'translation-disabled',
  'powered-off',
  'master-reset',
  'address-size',
  'stalled',
] as const satisfies readonly FaultReason[];

// Compile-time guards: a kind or reason added to the engine must be added here too.
type Missing<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
const kindsComplete: Missing<FindingKind, (typeof FINDING_KINDS)[number]> = true;
const reasonsComplete: Missing<FaultReason, (typeof FAULT_REASONS)[number]> = true;
void kindsComplete;
void reasonsComplete;

const lit = (s: string): string => JSON.stringify(s);
const union = (xs: readonly string[], empty = 'never'): string => (xs.length > 0 ? xs.map(lit).join(' | ') : empty);

function registerTypes(blocks: BlockTypeInfo[]): string {
  const types = blocks.map((b) => `    ${lit(b.type)}: ${union(b.registers)};`).join('\n');
  const instances = blocks.flatMap((b) => (b.instances ?? []).map((i) => `    ${lit(i)}: RegistersOfType[${lit(b.type)}];`)).join('\n');
  const anyRegister = blocks.length > 0 ? 'RegistersOfType[keyof RegistersOfType]' : 'string';
  return `  /** Register names per block type (the register DSL). */
  interface RegistersOfType {
${types}
  }
  /** Register names per block instance of the loaded SoC. */
  interface RegistersOfBlock {
${instances}
  }
  type BlockName = keyof RegistersOfBlock;
  type AnyRegister = ${anyRegister};
  /** Registers of a block: exact for a known instance, any known register otherwise. */
  type RegisterOf<B extends string> = B extends keyof RegistersOfBlock ? RegistersOfBlock[B] : AnyRegister;`;
}

/** The complete .d.ts of the script API, declared as globals and as the module 'soc-console'. */
export function scriptApiDts(blocks: BlockSource[]): string {
  return `// SoC Console driver test script API. Generated: do not edit.
// Every call on soc, kernel and explore may be awaited; scripts always await them.

declare namespace SocConsole {
  type Addr = number | bigint;
  type Num = number | string;

${registerTypes(byType(blocks))}

  // ---- findings -------------------------------------------------------------------------------
  type FindingKind = ${union(FINDING_KINDS)};
  type Severity = 'error' | 'warning' | 'info';
  /** What the engine says about the driver under test. */
  interface Finding {
    kind: FindingKind;
    severity: Severity;
    message: string;
    /** Simulated time in cycles when it was raised. */
    time: number;
    /** Where: block, IOMMU, device, IOVA, script line: whatever locates it. */
    where?: { [key: string]: string | number };
    /** What replays it: seed, and for explorer failures the schedule. */
    replay?: { seed: number; schedule?: number[]; event?: number };
  }

  // ---- hardware -------------------------------------------------------------------------------
  type Access = 'read' | 'write';
  type IommuModel = 'sun50i-h6' | 'rockchip' | 'mtk-v7s' | 'arm-lpae';
  interface TlbEntry {
    iova: number;
    pa: number;
    size: number;
    perms: Access[];
    master?: string;
    valid: boolean;
    /** Which TLB of the IOMMU holds it (e.g. 'micro0', 'macro', 'iotlb'). */
    level?: string;
  }
  /** A cached table entry (or line of entries) the walker read. */
  interface WalkCacheEntry {
    /** IOVA the cached entry covers (start) and the span it covers. */
    iova: number;
    span: number;
    /** Physical address of the table entry or line that was read. */
    tablePa: number;
    /** The cached descriptor value(s) as read from memory. */
    entries: number[];
    valid: boolean;
  }
  type FaultReason = ${union(FAULT_REASONS)};
  interface Fault {
    iova: number;
    master: string;
    access: Access;
    reason: FaultReason;
    time: number;
    iommu?: string;
  }
  interface IommuStats {
    hits: number;
    misses: number;
    walks: number;
    faults: number;
  }
  interface DmaResult {
    ok: boolean;
    data?: Uint8Array;
    fault?: Fault;
  }
  interface Iommu {
    readonly name: string;
    readonly model: IommuModel;
    tlb(): TlbEntry[];
    walkCache(): WalkCacheEntry[];
    faults(): Fault[];
    stats(): IommuStats;
  }
  interface Device {
    readonly name: string;
    readonly iommu: string | null;
    readonly dma: {
      read(iova: Addr, len: number): Promise<DmaResult>;
      write(iova: Addr, bytes: Uint8Array): Promise<DmaResult>;
      copy(srcIova: Addr, dstIova: Addr, len: number): Promise<DmaResult>;
    };
  }

  // ---- the SoC config (read-only view of the loaded *.soc.json) -------------------------------
  interface SocConfig {
    readonly version: 1;
    readonly name: string;
    readonly description?: string;
    readonly seed?: number;
    readonly cpu?: { readonly cores?: number };
    readonly memory: readonly { readonly name: string; readonly base: Num; readonly size: Num }[];
    readonly powerDomains?: readonly { readonly name: string; readonly on?: boolean; readonly offAccess?: 'bus-error' | 'reset-values' }[];
    readonly clocks?: readonly { readonly name: string; readonly rateHz?: number; readonly on?: boolean }[];
    readonly iommus: readonly IommuConfig[];
    readonly devices: readonly DeviceConfig[];
  }
  interface IommuConfig {
    readonly name: string;
    readonly model: IommuModel;
    readonly reg: readonly { readonly base: Num; readonly size: Num }[];
    readonly irq?: number;
    readonly coherentWalk?: boolean;
    readonly powerDomain?: string;
    readonly clocks?: readonly string[];
    readonly tlb?: { readonly entries: number };
    readonly walkCache?: { readonly entries: number };
    readonly options?: { readonly [key: string]: string | number | boolean };
  }
  type TrafficConfig =
    | { readonly kind: 'scanout'; readonly iova: Num; readonly bytes: Num; readonly periodCycles: number }
    | { readonly kind: 'burst'; readonly iova: Num; readonly bytes: Num; readonly periodCycles: number; readonly access: Access }
    | { readonly kind: 'none' };
  interface DeviceConfig {
    readonly name: string;
    readonly iommu?: string | null;
    readonly masterId?: number;
    readonly powerDomain?: string;
    readonly clocks?: readonly string[];
    readonly coherent?: boolean;
    readonly beatBytes?: number;
    readonly traffic?: TrafficConfig;
    readonly compatible?: string;
  }

  /** The hardware, as the loaded config built it. */
  interface Soc {
    readonly config: SocConfig;
    /** Names of the IOMMU instances. */
    iommus(): string[];
    /** Names of the master devices. */
    devices(): string[];
    /** Simulated time in cycles. */
    now(): number;
    /** Advance time: masters progress, IRQs fire. */
    run(cycles: number): Promise<void>;
    /** CPU 32-bit read: MMIO or RAM (through the CPU cache). */
    readl(pa: Addr): Promise<number>;
    writel(value: number, pa: Addr): Promise<void>;
    /** MMIO register by name, e.g. soc.reg('iommu0', 'TTB'). */
    reg<B extends BlockName | (string & {})>(block: B, reg: RegisterOf<B>): Promise<number>;
    setReg<B extends BlockName | (string & {})>(block: B, reg: RegisterOf<B>, value: number): Promise<void>;
    /** Memory as the CPU sees it, and CPU cache maintenance. */
    readonly mem: {
      read(pa: Addr, len: number): Promise<Uint8Array>;
      write(pa: Addr, bytes: Uint8Array): Promise<void>;
      clean(pa: Addr, len: number): Promise<void>;
      invalidate(pa: Addr, len: number): Promise<void>;
    };
    iommu(name: string): Iommu;
    device(name: string): Device;
    findings(): Finding[];
    /** Returns the findings and clears the list (a test that reproduces a bug takes them). */
    takeFindings(): Finding[];
    /** Register windows, masters and power domains; powered is false while off or held in reset. */
    blocks(): { name: string; kind: 'iommu' | 'device' | 'power'; model: string; base: number; size: number; powered: boolean }[];
    /** Interrupt lines: level, rising edges since reset, the blocks that drive each. */
    irqs(): { line: number; level: boolean; raised: number; sources: string[] }[];
    /** Whether an interrupt line (GIC SPI number) is asserted now. */
    irq(line: number): boolean;
    /** Switch a power domain by hand. */
    setPower(domain: string, on: boolean): Promise<void>;
    /** Assert or deassert a reset controller line (config \`resets\`); MMIO to a block held in reset is a bus-error. */
    reset(line: string, asserted: boolean): Promise<void>;
    /** Gate or ungate a clock (config \`clocks\`); MMIO to a block whose clock is off is a bus-error. */
    clock(line: string, on: boolean): Promise<void>;
  }

  // ---- kernel -------------------------------------------------------------------------------
  type DomainType = 'unmanaged' | 'dma' | 'identity' | 'blocked';
  /** An iommu_domain. */
  interface Domain {
    readonly id: number;
    readonly iommu: string;
    readonly type: DomainType;
  }
  type DmaDirection = 'to-device' | 'from-device' | 'bidirectional';
  type PmStatus = 'active' | 'suspended' | 'resuming' | 'suspending';
  type DeviceLinkFlag = 'pm-runtime' | 'stateless' | 'rpm-active';
  /** The driver's historic variants (each driver has the keys that apply to it). */
  interface DriverVariant {
    /** Rockchip: zap first/last IOVA after the PTE update (upstream) or before it (P1). */
    zapOrder: 'after-update' | 'before-update';
    tableInstall: 'cmpxchg' | 'store';
    splitLock: boolean;
    /** H6: clean written table entries for the non-coherent walker (false: P6). */
    flushTables: boolean;
    /** H6: domain_free detaches a live domain (TTB off, invalidate) and frees its PTs (false, upstream: frees the DT only, P7). */
    detachBeforeFree: boolean;
    /** H6 first posting: program the hardware only from runtime-PM resume (P8). */
    programInResumeOnly: boolean;
    /** H6: flush TLBs and PTW cache when a domain is switched in (false: P9). */
    invalidateOnSwitch: boolean;
    /** H6: leaving a domain drops a refcount, teardown at zero (upstream), or disables at once ('disable'). */
    leaveDomain: 'refcount' | 'disable';
    /** H6: map of a never-attached domain oopses on the NULL sun50i_domain->iommu (upstream), or succeeds ('ok'). */
    mapBeforeAttach: 'oops' | 'ok';
    [option: string]: string | number | boolean;
  }
  /** One probed IOMMU driver instance. */
  interface Driver {
    readonly name: string;
    readonly model: string;
    /** The C driver's source file (the config's "driver"), or null for the built-in TypeScript driver. */
    readonly source: string | null;
    /** Live: \`variant.flushTables = false\` takes effect; an unknown key or a wrong value throws a TypeError. */
    readonly variant: DriverVariant;
    /** Several variants at once; all are checked before any applies. */
    setVariant(changes: Partial<DriverVariant>): void;
  }
  /** The Linux-modelled driver layer. */
  interface Kernel {
    /** Probe the drivers now; otherwise the first use of \`kernel\` does (until then every block is at reset). */
    boot(): Promise<void>;
    domainAlloc(iommu: string, type?: DomainType): Promise<Domain>;
    domainFree(d: Domain): Promise<void>;
    /** 0 or -errno. */
    attachDevice(d: Domain, dev: string): Promise<number>;
    detachDevice(d: Domain, dev: string): Promise<void>;
    /** iommu_attach_group: every device of the group; 0 or -errno. attachDevice is -EINVAL on a group of several devices. */
    attachGroup(d: Domain, group: string): Promise<number>;
    detachGroup(d: Domain, group: string): Promise<void>;
    /** The device's IOMMU group (its number, as in /sys/kernel/iommu_groups). */
    group(dev: string): string;
    /** 0, -EEXIST, -EINVAL, -ENOMEM (H6: -EBUSY, Rockchip: -EADDRINUSE on an existing mapping). */
    map(d: Domain, iova: Addr, pa: Addr, size: number, prot: number): Promise<number>;
    /** Bytes unmapped. */
    unmap(d: Domain, iova: Addr, size: number): Promise<number>;
    /** 0 when unmapped. */
    iovaToPhys(d: Domain, iova: Addr): Promise<number | bigint>;
    readonly IOMMU_READ: 1;
    readonly IOMMU_WRITE: 2;
    readonly IOMMU_CACHE: 4;
    readonly IOMMU_NOEXEC: 8;
    readonly IOMMU_MMIO: 16;
    readonly IOMMU_PRIV: 32;
    /** Physical address of count contiguous pages (from the top half of DRAM, which the kernel owns). */
    allocPages(count?: number): Promise<number>;
    freePages(pa: Addr): Promise<void>;
    readonly dma: {
      /** Returns the IOVA. */
      mapSingle(dev: string, pa: Addr, size: number, dir: DmaDirection): Promise<number>;
      unmapSingle(dev: string, iova: Addr, size: number, dir: DmaDirection): Promise<void>;
      allocCoherent(dev: string, size: number): Promise<{ iova: number; pa: number }>;
      freeCoherent(dev: string, size: number, iova: Addr): Promise<void>;
      mapSg(dev: string, segments: { pa: Addr; len: number }[], dir: DmaDirection): Promise<{ iova: number; len: number }[]>;
      unmapSg(dev: string, segments: { iova: number; len: number }[], dir: DmaDirection): Promise<void>;
      syncSingleForCpu(dev: string, iova: Addr, size: number, dir: DmaDirection): Promise<void>;
      syncSingleForDevice(dev: string, iova: Addr, size: number, dir: DmaDirection): Promise<void>;
    };
    readonly pm: {
      getSync(dev: string): Promise<number>;
      put(dev: string): Promise<number>;
      putSync(dev: string): Promise<number>;
      putAutosuspend(dev: string): Promise<number>;
      getIfInUse(dev: string): number;
      markLastBusy(dev: string): void;
      status(dev: string): PmStatus;
      /** power/control: 'on' forbids runtime suspend. 0 or -errno. */
      setControl(dev: string, control: 'on' | 'auto'): Promise<number>;
      /** CONFIG_PM. */
      setEnabled(enabled: boolean): void;
      useAutosuspend(dev: string, use: boolean): Promise<void>;
      setAutosuspendDelay(dev: string, ms: number): Promise<void>;
    };
    deviceLinkAdd(consumer: string, supplier: string, flags: DeviceLinkFlag[]): Promise<void>;
    deviceLinkDel(consumer: string, supplier: string): Promise<void>;
    driver(iommu: string): Driver;
    /** register_kprobe: handler runs when kernel code enters symbol, between two kernel steps. Returns the id. */
    kprobe(symbol: string, handler: () => unknown): Promise<number>;
    /** register_kretprobe: handler runs when the function returns. */
    kretprobe(symbol: string, handler: () => unknown): Promise<number>;
    unregisterKprobe(id: number): Promise<void>;
    /** The symbols the probed drivers offer to kprobes. */
    kprobeSymbols(): string[];
    /** Run the IOMMU driver's interrupt handler, as the GIC would on its line: true if handled. */
    handleIrq(iommu: string): Promise<boolean>;
  }

  // ---- explore ------------------------------------------------------------------------------
  interface ExploreSpec {
    /** CPU threads and/or device activity, run concurrently. */
    threads: Array<() => Promise<unknown>>;
    /** After every run; a throw (or an error finding) is a failure. */
    check?: () => Promise<void> | void;
    /** exhaustive (default): every schedule within the preemption bound; random: sampled schedules. */
    mode?: 'exhaustive' | 'random';
    /** random: how many schedules (default 100); exhaustive: a cap on runs. */
    runs?: number;
    /** random: the schedules' seed (default: the run's seed). */
    seed?: number;
    /** Context switches away from a thread that could go on (default 2 exhaustive, none random). Infinity: unbounded, with sleep-set pruning. */
    preemptionBound?: number;
    /** Stop after this many failing runs (default 10). */
    maxFailures?: number;
    /** Workers to spread the runs over, this one included (default: one per core once an exploration runs for a second). The result is the same whatever the number. */
    workers?: number;
  }
  interface ExploreFailure {
    schedule: number[];
    error?: string;
    findings: Finding[];
  }
  interface ExploreResult {
    runs: number;
    failures: ExploreFailure[];
    /** exhaustive: every schedule within the bound was run (not stopped by runs or maxFailures). */
    complete: boolean;
    /** Runs cut short because they repeated an explored one. */
    pruned: number;
  }
  interface ReplayStep {
    /** Index of the thread that ran. */
    thread: number;
    /** The preemption point it stopped at: 'mem-read', 'mmio-write', 'dma-beat', ... */
    kind: string;
    pa?: number;
    who?: string;
  }
  interface ReplayResult {
    schedule: number[];
    steps: ReplayStep[];
    error?: string;
    findings: Finding[];
  }
  /** The interleaving explorer. Before every run the SoC is restored to its state at the call. */
  interface Explore {
    (spec: ExploreSpec): Promise<ExploreResult>;
    /** The same run, step by step. The run's final state stays (inspect it); its findings are in the result. */
    replay(schedule: number[], spec: ExploreSpec): Promise<ReplayResult>;
  }

  // ---- test harness ---------------------------------------------------------------------------
  interface TestOptions {
    seed?: number;
    /** Default 10 s. */
    timeoutMs?: number;
  }
  type ErrorMatch = string | RegExp | Error | (new (...args: any[]) => unknown) | { [key: string]: unknown };
  interface Matchers<R> {
    toBe(expected: unknown): R;
    /** Deep equality (arrays, objects, Uint8Array, bigint, Map, Set); undefined properties are ignored. */
    toEqual(expected: unknown): R;
    toStrictEqual(expected: unknown): R;
    toBeTruthy(): R;
    toBeFalsy(): R;
    toBeNull(): R;
    toBeUndefined(): R;
    toBeDefined(): R;
    toBeGreaterThan(n: number | bigint): R;
    toBeGreaterThanOrEqual(n: number | bigint): R;
    toBeLessThan(n: number | bigint): R;
    toBeLessThanOrEqual(n: number | bigint): R;
    /** Substring of a string, or item (===) of an array or typed array. */
    toContain(item: unknown): R;
    toContainEqual(item: unknown): R;
    toHaveLength(n: number): R;
    toMatchObject(expected: object): R;
    toThrow(expected?: ErrorMatch): R;
    toThrowError(expected?: ErrorMatch): R;
  }
  interface Expectation extends Matchers<void> {
    not: Matchers<void>;
    resolves: Matchers<Promise<void>> & { not: Matchers<Promise<void>> };
    rejects: Matchers<Promise<void>> & { not: Matchers<Promise<void>> };
  }
}

type Finding = SocConsole.Finding;
type FindingKind = SocConsole.FindingKind;
type TlbEntry = SocConsole.TlbEntry;
type WalkCacheEntry = SocConsole.WalkCacheEntry;
type Fault = SocConsole.Fault;
type DmaResult = SocConsole.DmaResult;
type Domain = SocConsole.Domain;

/** Declare a test. Tests run one by one, in declaration order. */
declare function test(name: string, fn: () => unknown | Promise<unknown>, opts?: SocConsole.TestOptions): void;
/** Group tests: their names are prefixed with the group's ('group > test'). */
declare function describe(name: string, fn: () => void): void;
declare function expect(actual: unknown): SocConsole.Expectation;
declare const soc: SocConsole.Soc;
declare const kernel: SocConsole.Kernel;
declare const explore: SocConsole.Explore;

interface Console {
  log(...data: any[]): void;
  info(...data: any[]): void;
  debug(...data: any[]): void;
  warn(...data: any[]): void;
  error(...data: any[]): void;
}
declare var console: Console;

declare module 'soc-console' {
  export type Finding = SocConsole.Finding;
  export type FindingKind = SocConsole.FindingKind;
  export type Severity = SocConsole.Severity;
  export type TlbEntry = SocConsole.TlbEntry;
  export type WalkCacheEntry = SocConsole.WalkCacheEntry;
  export type Fault = SocConsole.Fault;
  export type FaultReason = SocConsole.FaultReason;
  export type IommuStats = SocConsole.IommuStats;
  export type DmaResult = SocConsole.DmaResult;
  export type Iommu = SocConsole.Iommu;
  export type Device = SocConsole.Device;
  export type Soc = SocConsole.Soc;
  export type SocConfig = SocConsole.SocConfig;
  export type Kernel = SocConsole.Kernel;
  export type Domain = SocConsole.Domain;
  export type DomainType = SocConsole.DomainType;
  export type DmaDirection = SocConsole.DmaDirection;
  export type DriverVariant = SocConsole.DriverVariant;
  export type Driver = SocConsole.Driver;
  export type Explore = SocConsole.Explore;
  export type ExploreSpec = SocConsole.ExploreSpec;
  export type ExploreResult = SocConsole.ExploreResult;
  export type ReplayResult = SocConsole.ReplayResult;
  export type TestOptions = SocConsole.TestOptions;
  export const test: typeof globalThis.test;
  export const describe: typeof globalThis.describe;
  export const expect: typeof globalThis.expect;
  export const soc: SocConsole.Soc;
  export const kernel: SocConsole.Kernel;
  export const explore: SocConsole.Explore;
}
`;
}
