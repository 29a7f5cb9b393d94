/**
 * The one typed session API. The engine worker implements it, the host wraps it, and three
 * transports carry it unchanged: Electron IPC (window.soc), a WebSocket (web mode) and the CLI.
 * Everything that crosses it is structured-clone and JSON friendly (Uint8Array via the codec).
 */
import type { Finding } from '../sim/core/findings';
import type { ExploreResult } from '../sim/check/explore';
import type { ShardCall } from '../sim/check/explore-shard';
import type { TraceEvent } from '../sim/core/trace';
import type { BlockMeta } from '../sim/regs/dsl';
import type { Fault, IommuStats, TlbEntry, WalkCacheEntry } from '../sim/hw/types';
import type { CheckedTlbEntry, CheckedWalkCacheEntry, DeviceTree, TraceWindow } from '../sim/views/types';
import type { DomainInfo, IovaMap, IovaRun, IovaWalk, PageOwnerInfo, PtEntry, PtField, PtTable, TableRef, WalkStep } from '../sim/views/page-tables-types';

export type { Finding, TraceEvent, BlockMeta, Fault, IommuStats, TlbEntry, WalkCacheEntry };
export type { DeviceTree, CheckedTlbEntry, CheckedWalkCacheEntry, TraceWindow };
export type { DomainInfo, IovaMap, IovaRun, IovaWalk, PageOwnerInfo, PtEntry, PtField, PtTable, TableRef, WalkStep };

/** Which table of a domain to read, and whether invalid descriptors are listed too. */
export interface PageTableQuery {
  /** A table the walker reaches (a PtEntry's next); the domain's root when absent. */
  table?: TableRef;
  /** List invalid descriptors as well (default: valid ones only). */
  all?: boolean;
}

export interface ConfigError {
  /** File the error is in. */
  file: string;
  /** JSON path of the bad field, e.g. "/iommus/0/reg/0/base". */
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export type LoadConfigResult =
  | { ok: true; name: string; file: string }
  | { ok: false; errors: ConfigError[] };

export interface BlockInfo {
  /** Block name (IOMMU name, or IOMMU name + '.' + window for multi-window IOMMUs). */
  name: string;
  kind: 'iommu' | 'device' | 'power';
  /** Hardware model, e.g. 'sun50i-h6'. */
  model: string;
  base: number;
  size: number;
  powered: boolean;
}

export interface RegisterValue {
  name: string;
  offset: number;
  /** null: not read, because reading has a side effect. */
  value: number | null;
}

/** One IOMMU as the TLB view shows it: caches checked against the tables in memory, and counters. */
export interface IommuInspection {
  name: string;
  model: string;
  powered: boolean;
  /** Simulated time of the snapshot, in cycles (the x of a stats sample). */
  now: number;
  stats: IommuStats;
  tlb: CheckedTlbEntry[];
  walkCache: CheckedWalkCacheEntry[];
  /** The C driver's source file when the config names one for this IOMMU ("driver"). */
  driverSource?: string;
}

export interface ScriptError {
  message: string;
  file: string;
  line?: number;
  column?: number;
  stack?: string;
}

export interface TestResult {
  name: string;
  /** Names of enclosing describe blocks and the test, joined by ' > '. */
  fullName: string;
  status: 'passed' | 'failed';
  durationMs: number;
  error?: ScriptError;
  /** Findings raised during the test that it did not take. */
  findings: Finding[];
}

/**
 * When the kernel layer boots: 'lazy' at the first use of `kernel`, 'eager' before the script
 * runs, 'none' never (a script that uses `kernel` gets an error saying so).
 */
export type KernelMode = 'none' | 'lazy' | 'eager';
export const KERNEL_MODES: readonly KernelMode[] = ['none', 'lazy', 'eager'];

export interface ScriptRunRequest {
  source: string;
  fileName: string;
  seed?: number;
  /** Per-test timeout (default 10 s). */
  timeoutMs?: number;
  /** Workers per exploration unless its spec says (default: one per core once an exploration runs long). */
  exploreWorkers?: number;
  /** Explore only shard index (0-based) of count of every exploration; the result carries the shard's reports. */
  shard?: { index: number; count: number };
  /** Answer the explore calls with these (merged shard) results instead of exploring. */
  exploreAnswers?: { call: ExploreCall; result: ExploreResult }[];
  /** When the kernel layer boots (default: the config's, else 'lazy': at the first use of `kernel`). */
  kernel?: KernelMode;
}

export interface ScriptRunResult {
  runId: number;
  /** Every test passed and the script loaded. */
  ok: boolean;
  tests: TestResult[];
  /** The script failed to compile or load, or was stopped. */
  error?: ScriptError;
  durationMs: number;
  /** With ScriptRunRequest.shard: the shard's report of each explore call, in call order. */
  shardCalls?: ShardCall[];
}

/** One explore call of a run: the test's index (-1 while the script loads) and the call's ordinal in it. */
export interface ExploreCall {
  test: number;
  ordinal: number;
}

/** The end of an exploration: its failing schedules, and what replays them (replayTo). */
export interface ExploreDone {
  call: ExploreCall;
  /** The test's full name ('' while the script loads). */
  testName: string;
  /** The run's seed: a replay must use it to reach the same state. */
  seed: number;
  schedules: { schedule: number[]; error?: string }[];
}

export type SessionEvent =
  | { type: 'output'; runId: number; stream: 'log' | 'error'; text: string }
  | { type: 'test'; runId: number; result: TestResult }
  | { type: 'run-end'; runId: number; result: ScriptRunResult }
  /**
   * An exploration's progress (runs done, estimated total, failing runs so far); the last one of an
   * exploration has done: true and its failing schedules, to print or paste into explore.replay,
   * and (explore) which call it was, to replay it in the console.
   */
  | { type: 'explore-progress'; runId: number; runs: number; estimated: number; failures: number; done: boolean; schedules?: { schedule: number[]; error?: string }[]; explore?: ExploreDone }
  | { type: 'config-loaded'; name: string; file: string }
  | { type: 'worker-restarted'; reason: string }
  | { type: 'state-changed' };

/**
 * Step `steps` of a step-by-step replay of an explorer failure: the script runs again (same source,
 * seed and config) up to the explore call, which replays the schedule and stops after that many
 * steps; the run ends there, and the views show the state after the step. Each step is a rerun:
 * the engine is deterministic, so this is what pausing at the step would show.
 */
export interface ReplayRequest {
  source: string;
  fileName: string;
  seed?: number;
  /** Per-test timeout (default 10 s). */
  timeoutMs?: number;
  call: ExploreCall;
  schedule: number[];
  /** Steps to run (more than the replay has: all of them, then the spec's check). */
  steps: number;
}

/** One step of a replay: which thread ran and what it touched. */
export interface ReplayStep {
  thread: number;
  kind: 'mem-read' | 'mem-write' | 'mmio-read' | 'mmio-write' | 'dma-beat' | 'yield';
  pa?: number;
  who?: string;
  /** A C driver's function and file:line at this step. */
  where?: string;
}

export type ReplayToResult =
  | {
      ok: true;
      /** Steps run: the state is the one after them. */
      stepIndex: number;
      total: number;
      /** The step just run (none at step 0). */
      step?: ReplayStep;
      /** Every step of the replay, run or not. */
      steps: ReplayStep[];
      /** Simulated time after the step, in cycles. */
      time: number;
      /** Why the whole replay fails (what the explorer reported the schedule for). */
      error?: string;
      /** Findings the steps run raised (also in findings() until the next run). */
      findings: Finding[];
    }
  /** The run never got to a replay: the script changed, the call is gone, the schedule does not fit. */
  | { ok: false; message: string };

/**
 * Open a moment of a run (time travel): the script runs again (same source, seed and config: the
 * engine is deterministic, so this is the run the user saw) and the SoC is kept as it was right
 * after its `event`-th trace event. Every view then shows that moment, until the next run.
 */
export interface MomentRequest {
  source: string;
  fileName: string;
  seed?: number;
  /** Per-test timeout (default 10 s). */
  timeoutMs?: number;
  /** Trace event sequence number (1 = the run's first event; TraceWindow.seq, Finding.replay.event). */
  event: number;
}

export type MomentResult =
  | {
      ok: true;
      /** The moment opened: the SoC is as it was right after this event. */
      event: number;
      /** Simulated time then, in cycles. */
      time: number;
      /** The event itself. */
      what?: TraceEvent;
      /** The script call in progress then ("file.ts:line:col"), when a script call was running. */
      site?: string;
      /** The test running then ('' while the script loads). */
      test: string;
      /** Whether this came from a checkpoint kept by an earlier open (no re-execution). */
      cached: boolean;
    }
  /** The run ended before that event (the script changed, or the event is past its end). */
  | { ok: false; message: string; events?: number };

export interface SessionApi {
  /** Names of the presets shipped in resources/socs (e.g. 'sun50i-h6'). */
  listPresets(): Promise<string[]>;
  loadPreset(name: string): Promise<LoadConfigResult>;
  /** Load a config from its text; file is the name used in error messages. */
  loadConfig(text: string, file: string): Promise<LoadConfigResult>;
  /** The loaded config's text, or null. */
  configText(): Promise<{ text: string; file: string } | null>;
  listBlocks(): Promise<BlockInfo[]>;
  describeBlock(block: string): Promise<BlockMeta>;
  /** Values of every register without read side effects. */
  readRegisters(block: string): Promise<RegisterValue[]>;
  /** A bus read of one register (performs its side effects). */
  readRegister(block: string, reg: string): Promise<number>;
  writeRegister(block: string, reg: string, value: number): Promise<void>;
  readMemory(pa: number, len: number, view: 'cpu' | 'ram'): Promise<Uint8Array>;
  runScript(req: ScriptRunRequest): Promise<ScriptRunResult>;
  /** Replay an explorer failure up to a step (see ReplayRequest); the SoC stays at that step. */
  replayTo(req: ReplayRequest): Promise<ReplayToResult>;
  /** Open a moment of a run (see MomentRequest); the SoC stays at that moment. */
  openMoment(req: MomentRequest): Promise<MomentResult>;
  /** Stop the running script (the worker is restarted if it does not stop at once). */
  stopScript(): Promise<void>;
  /** The script API as a .d.ts (Monaco completion, --emit-types). */
  scriptTypes(): Promise<string>;
  findings(): Promise<Finding[]>;
  tlb(iommu: string): Promise<TlbEntry[]>;
  walkCache(iommu: string): Promise<WalkCacheEntry[]>;
  traceEvents(): Promise<TraceEvent[]>;

  // ---- console views (read-only, no side effects on the simulation) ----
  /** The published SoC config JSON Schema (resources/schema/soc.schema.json), as text. */
  configSchema(): Promise<string>;
  /** Simulated time in cycles (0 when no config is loaded). */
  simTime(): Promise<number>;
  /** IOMMUs, masters and power domains with live power state. */
  deviceTree(): Promise<DeviceTree>;
  /** Addresses of the 4 KiB frames overlapping [pa, pa+len) that were ever written. */
  touchedFrames(pa: number, len: number): Promise<number[]>;
  /** Addresses of dirty (un-cleaned) CPU cache lines overlapping [pa, pa+len). */
  dirtyLines(pa: number, len: number): Promise<number[]>;
  /** TLB and walk cache of an IOMMU, each entry checked against the tables in memory (stale). */
  inspectIommu(iommu: string): Promise<IommuInspection>;
  /** Trace events overlapping [from, to] (cycles), evenly thinned to at most limit. */
  traceWindow(from: number, to: number, limit: number): Promise<TraceWindow>;
  /** The whole trace ring as Chrome/Perfetto trace-event JSON text. */
  perfettoTrace(): Promise<string>;
  /** Every IOMMU domain (freed ones included) with its devices and whether the hardware walks it now. */
  domains(): Promise<DomainInfo[]>;
  /** One table of a domain as the hardware walker reads it, each descriptor decoded. */
  pageTable(domain: number, query: PageTableQuery): Promise<PtTable>;
  /** The domain's mapped IOVA as runs (holes implied), read as the walker reads the tables. */
  iovaMap(domain: number): Promise<IovaMap>;
  /** The hardware walk of one IOVA, step by step, ending at the PA or the fault. */
  walkIova(domain: number, iova: number): Promise<IovaWalk>;
  /** Allocations of the kernel's page allocator overlapping [pa, pa+len), with their owners. */
  pageOwners(pa: number, len: number): Promise<PageOwnerInfo[]>;
}

export type SessionMethod = keyof SessionApi;

/**
 * The longest timeout a test or a run may set: an hour. Beyond, timers overflow (2^31 ms) or never
 * fire (Infinity), and the sandbox deadline and the host watchdog would both be off.
 */
export const MAX_TIMEOUT_MS = 3_600_000;

/** A timeout in milliseconds that the sandbox and the watchdog can keep: 1 ms to MAX_TIMEOUT_MS. */
export function validTimeout(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 1 && v <= MAX_TIMEOUT_MS;
}

/** Explore workers a request may ask for; the explorer bounds them by the cores it has. */
export const MAX_EXPLORE_WORKERS = 256;

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string' && v.length < 16 * 1024 * 1024;
const name: Check = (v) => typeof v === 'string' && v.length > 0 && v.length < 256;
const u32: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const addr: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 52;
const len: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1 << 20;
const view: Check = (v) => v === 'cpu' || v === 'ram';
/** A range length for frame and line queries: the whole of a 40-bit physical space at most. */
const span: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2 ** 40;
const time: Check = (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
const limit: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 100_000;
const domainId: Check = (v) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffffffff;
const tableRef: Check = (v) => {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return addr(r.pa) && addr(r.iova) && typeof r.level === 'number' && Number.isInteger(r.level) && r.level >= 0 && r.level <= 3;
};
const ptQuery: Check = (v) => {
  if (typeof v !== 'object' || v === null) return false;
  const q = v as Record<string, unknown>;
  return (q.table === undefined || tableRef(q.table)) && (q.all === undefined || typeof q.all === 'boolean');
};
const runReq: Check = (v) => {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    str(r.source) &&
    name(r.fileName) &&
    (r.seed === undefined || u32(r.seed)) &&
    (r.timeoutMs === undefined || validTimeout(r.timeoutMs)) &&
    (r.exploreWorkers === undefined || (typeof r.exploreWorkers === 'number' && Number.isInteger(r.exploreWorkers) && r.exploreWorkers >= 1 && r.exploreWorkers <= MAX_EXPLORE_WORKERS))
  );
};

/** Explorer schedules are short (one entry per decision), but a long random run may have many. */
const MAX_SCHEDULE = 1_000_000;
const replayReq: Check = (v) => {
  if (!runReq(v)) return false;
  const r = v as Record<string, unknown>;
  const call = (typeof r.call === 'object' && r.call !== null ? r.call : {}) as Record<string, unknown>;
  const index = (x: unknown, min: number): boolean => typeof x === 'number' && Number.isInteger(x) && x >= min && x <= 0xffffffff;
  return (
    index(call.test, -1) &&
    index(call.ordinal, 0) &&
    Array.isArray(r.schedule) &&
    r.schedule.length <= MAX_SCHEDULE &&
    r.schedule.every((t) => index(t, 0)) &&
    index(r.steps, 0)
  );
};

const momentReq: Check = (v) => {
  if (!runReq(v)) return false;
  const e = (v as Record<string, unknown>).event;
  return typeof e === 'number' && Number.isInteger(e) && e >= 1 && e <= Number.MAX_SAFE_INTEGER;
};

/** Argument shapes per method: what every transport checks before a call reaches the host. */
export const SESSION_METHODS: Record<SessionMethod, Check[]> = {
  listPresets: [],
  loadPreset: [name],
  loadConfig: [str, name],
  configText: [],
  listBlocks: [],
  describeBlock: [name],
  readRegisters: [name],
  readRegister: [name, name],
  writeRegister: [name, name, u32],
  readMemory: [addr, len, view],
  runScript: [runReq],
  replayTo: [replayReq],
  openMoment: [momentReq],
  stopScript: [],
  scriptTypes: [],
  findings: [],
  tlb: [name],
  walkCache: [name],
  traceEvents: [],
  configSchema: [],
  simTime: [],
  deviceTree: [],
  touchedFrames: [addr, span],
  dirtyLines: [addr, span],
  inspectIommu: [name],
  traceWindow: [time, time, limit],
  perfettoTrace: [],
  domains: [],
  pageTable: [domainId, ptQuery],
  iovaMap: [domainId],
  walkIova: [domainId, addr],
  pageOwners: [addr, span],
};

/** Validate an untrusted call; returns an error message or null. */
export function validateCall(method: unknown, args: unknown): string | null {
  if (typeof method !== 'string' || !Object.prototype.hasOwnProperty.call(SESSION_METHODS, method)) {
    return `unknown method ${JSON.stringify(method)}`;
  }
  const checks = SESSION_METHODS[method as SessionMethod];
  if (!Array.isArray(args) || args.length !== checks.length) return `${method}: expected ${checks.length} argument(s)`;
  for (let i = 0; i < checks.length; i++) if (!checks[i]!(args[i])) return `${method}: argument ${i + 1} is invalid`;
  return null;
}

/** JSON codec that carries Uint8Array (WebSocket transport). */
export function encodeJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof Uint8Array) return { $u8: bytesToBase64(x) };
    if (typeof x === 'bigint') return { $big: x.toString() };
    return x;
  });
}

export function decodeJson(s: string): unknown {
  // A reviver costs a call per value; large view payloads (trace windows) carry neither tag.
  if (!s.includes('"$u8"') && !s.includes('"$big"')) return JSON.parse(s);
  return JSON.parse(s, (_k, x: unknown) => {
    if (x && typeof x === 'object' && '$u8' in x && typeof (x as { $u8: unknown }).$u8 === 'string') return base64ToBytes((x as { $u8: string }).$u8);
    if (x && typeof x === 'object' && '$big' in x && typeof (x as { $big: unknown }).$big === 'string') return BigInt((x as { $big: string }).$big);
    return x;
  });
}

function bytesToBase64(b: Uint8Array): string {
  // apply() over 8 KiB slices: spreading a typed array into arguments is ~13x slower, and a 1 MiB
  // readMemory reply would hold the web server's event loop for half a second.
  let s = '';
  for (let i = 0; i < b.length; i += 0x2000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x2000) as unknown as number[]);
  return btoa(s);
}

function base64ToBytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The largest WebSocket message the web server accepts: a 16 MiB script or config plus its JSON
 * escaping, within reason. The client checks before it sends; the server closes a connection past it.
 */
export const MAX_MESSAGE_BYTES = 17 * 1024 * 1024;

/** Wire messages of the RPC transports. */
export type RpcRequest = { id: number; method: SessionMethod; args: unknown[] };
export type RpcResponse = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
export type RpcPush = { event: SessionEvent };
