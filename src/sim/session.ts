/**
 * The engine side of the session API: one loaded SoC, scripts run against it, and the views the
 * console reads. Transport-free: the sim worker exposes it, tests call it directly.
 */
import type { Finding } from './core/findings';
import { ConfigBuildError } from './config/build-error';
import { lineOfPointer } from './config/json-locate';
import { parseConfig } from './config/validate';
import type { SocConfig } from './config/types';
import { scriptApiDts } from './script/api-types';
import { runScript } from './script/run';
import { IOMMU_MODELS, Soc, type SocSnapshot } from './soc';
import { iommuDrivers } from './kernel/drivers';
import { kernelApi, type KernelDriver } from './kernel/kernel';
import { cIommuDriver } from './kernel/cdriver/driver';
import type { DriverBuilder } from './kernel/cdriver/build-api';
import { createSocBindings } from './soc-api';
import { checkedApi } from './api-args';
import { createExploreBinding, type ExploreBindingOptions } from './check/explore-binding';
import type { ReplayPrefixResult } from './check/explore';
import type { ExploreJob, ExplorePool, HelperChannel } from './check/explore-parallel';
import type { ShardCall } from './check/explore-shard';
import { deviceTree, type DeviceTree } from './views/device-tree';
import { dirtyLinesIn, touchedFramesIn } from './views/memory';
import { toPerfetto } from './views/perfetto';
import { domainIovaMap } from './views/iova-map';
import { domainPageTable, domainWalk, listDomains, pageOwnersIn } from './views/page-tables';
import { checkTlb, checkWalkCache } from './views/stale-tlb';
import { traceWindow, type TraceWindow } from './views/trace-window';
import type {
  BlockInfo,
  BlockMeta,
  DomainInfo,
  IommuInspection,
  IovaMap,
  IovaWalk,
  KernelMode,
  LoadConfigResult,
  MomentRequest,
  MomentResult,
  PageOwnerInfo,
  PageTableQuery,
  PtTable,
  RegisterValue,
  ReplayRequest,
  ReplayToResult,
  ScriptRunRequest,
  ScriptRunResult,
  SessionEvent,
  TlbEntry,
  TraceEvent,
  WalkCacheEntry,
} from '../shared/session-api';

export interface SessionOptions {
  /** Session events (script output, test results) for the host to forward. */
  emit(e: SessionEvent): void;
  /** Proof of life while a script runs, with how long the next step may take (the host's watchdog listens). */
  heartbeat(beat: Heartbeat): void;
  /** Helper workers for large explorations; none: every exploration runs in this worker. */
  explorePool?: ExplorePool;
  /** Builds the C drivers a config names ("driver" of an IOMMU); none: such configs are refused. */
  buildDriver?: DriverBuilder;
}

/** A config-relative path resolved against the config file's folder (absolute paths stay). */
function resolveFrom(configFile: string, p: string): string {
  if (p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p)) return p;
  const i = Math.max(configFile.lastIndexOf('/'), configFile.lastIndexOf('\\'));
  return i < 0 ? p : `${configFile.slice(0, i + 1)}${p}`;
}

/** A run's proof of life: how long its next step may take, and the test running now (none: between tests). */
export interface Heartbeat {
  runId: number;
  budgetMs: number;
  test?: string;
}

/**
 * A moment kept by an open: the SoC then, the findings archived by then, and what the result says.
 * Opening one again (stepping back and forth) restores it without re-executing the script.
 */
interface KeptMoment {
  snap: SocSnapshot;
  archived: Finding[];
  result: Extract<MomentResult, { ok: true }>;
}

/**
 * Which moments a run keeps. A moment is the SoC right after a trace event, or, when findings are
 * raised before the next event, as it was at the last of them: both ways of reaching a moment (a
 * run that keeps it, a re-execution to it) apply this one rule, so they agree.
 */
interface MomentHook {
  wants(event: number): boolean;
  /** what: the event; finding: a finding was raised since it (the moment moves to then). */
  keep(event: number, what: TraceEvent | undefined, soc: Soc, finding: boolean): void;
}

/**
 * Events kept on each side of an opened moment: stepping by event within them is a restore. Each
 * costs a copy of the RAM the run touched.
 */
const MOMENT_NEIGHBOURS = 8;
/**
 * Keyframes a run keeps as it goes (every `interval` events, the interval doubling to stay within
 * the count and the bytes), and the moment of every finding: those open without re-execution.
 */
const MAX_KEYFRAMES = 128;
const MAX_KEYFRAME_BYTES = 192 * 1024 * 1024;
const MAX_FINDING_MOMENTS = 64;

const DEFAULT_SEED = 1;
const DEFAULT_TIMEOUT_MS = 10_000;

export class Session {
  private loaded: { config: SocConfig; text: string; file: string } | null = null;
  private soc: Soc | null = null;
  /** Findings that tests left untaken, kept for the findings view after the run. */
  private archived: Finding[] = [];
  /** The script call in progress ("file.ts:line:col"), while a script runs. */
  private callSite: () => string | undefined = () => undefined;
  private testName = '';
  /** Moments kept by openMoment for the run they belong to (key: run + SoC they restore into). */
  private kept: { key: string; soc: Soc; moments: Map<number, KeptMoment>; ring: { events: TraceEvent[]; mark: number } } | null = null;

  /** The C drivers built for the config text they were built for. */
  private cdrivers: { text: string; file: string; drivers: KernelDriver[] } | null = null;

  constructor(private readonly opts: SessionOptions) {}

  /**
   * loadConfig, after building the C drivers the config names (cached by content hash, compiled
   * in a worker on a miss). Compile errors come back as config errors with file:line:column.
   */
  async loadConfigAsync(text: string, file: string): Promise<LoadConfigResult> {
    const r = parseConfig(text, file);
    if (!r.ok) return { ok: false, errors: r.errors };
    const drivers: KernelDriver[] = [];
    const errors: LoadConfigResult & { ok: false } = { ok: false, errors: [] };
    for (const [i, iommu] of r.config.iommus.entries()) {
      const spec = iommu.driver;
      if (!spec) continue;
      const path = `/iommus/${i}/driver`;
      if (!this.opts.buildDriver) {
        errors.errors.push({ file, path, message: 'C drivers cannot be built here (no compiler in this session)' });
        continue;
      }
      const source = resolveFrom(file, spec.source);
      const defines = spec.defines ?? {};
      const built = await this.opts.buildDriver({ source, defines, includes: (spec.includes ?? []).map((p) => resolveFrom(file, p)) });
      if (!built.ok) {
        for (const d of built.diagnostics) {
          errors.errors.push({ file: d.file, path, message: `${d.severity}: ${d.message}`, ...(d.line > 0 ? { line: d.line } : {}), ...(d.column > 0 ? { column: d.column } : {}) });
        }
        continue;
      }
      let module: WebAssembly.Module;
      try {
        module = new WebAssembly.Module(built.wasm);
        drivers.push(cIommuDriver(iommu, { module, source, defines }));
      } catch (e) {
        errors.errors.push({ file: source, path, message: (e as Error).message });
      }
    }
    if (errors.errors.length > 0) return errors;
    this.cdrivers = { text, file, drivers };
    return this.loadConfig(text, file);
  }

  /** A SoC of the loaded config with its drivers: the built-in ones and the config's C drivers. */
  private newSoc(config: SocConfig, seed: number, kernelMode: KernelMode = config.kernel ?? 'lazy'): Soc {
    const named = config.iommus.filter((i) => i.driver);
    if (named.length === 0) return new Soc(config, seed, IOMMU_MODELS, iommuDrivers(), kernelMode);
    const c = this.cdrivers;
    const have = c ? new Set(c.drivers.map((d) => d.instance)) : new Set<string | undefined>();
    const missing = named.filter((i) => !have.has(i.name));
    if (missing.length > 0) throw new Error(`${missing.map((i) => i.name).join(', ')}: the C driver is not built (load the config with loadConfigAsync)`);
    return new Soc(config, seed, IOMMU_MODELS, [...iommuDrivers(), ...c!.drivers], kernelMode);
  }

  loadConfig(text: string, file: string): LoadConfigResult {
    const r = parseConfig(text, file);
    if (!r.ok) return { ok: false, errors: r.errors };
    if (this.cdrivers && (this.cdrivers.text !== text || this.cdrivers.file !== file)) this.cdrivers = null;
    try {
      this.soc = this.newSoc(r.config, r.config.seed ?? DEFAULT_SEED);
    } catch (err) {
      const path = err instanceof ConfigBuildError ? err.path : '';
      return { ok: false, errors: [{ file, path, message: `cannot build the SoC: ${(err as Error).message}`, line: lineOfPointer(text, path) }] };
    }
    this.loaded = { config: r.config, text, file };
    this.archived = [];
    return { ok: true, name: r.config.name, file };
  }

  configText(): { text: string; file: string } | null {
    return this.loaded ? { text: this.loaded.text, file: this.loaded.file } : null;
  }

  private requireSoc(): Soc {
    if (!this.soc) throw new Error('no SoC config is loaded');
    return this.soc;
  }

  listBlocks(): BlockInfo[] {
    return this.requireSoc().blocks();
  }

  describeBlock(block: string): BlockMeta {
    return this.requireSoc().registerFile(block).decl.meta;
  }

  readRegisters(block: string): RegisterValue[] {
    const soc = this.requireSoc();
    const regs = soc.registerFile(block);
    const powered = soc.blocks().find((b) => b.name === block)?.powered ?? true;
    // Registers with read side effects are never read implicitly; nor is an unpowered block.
    return regs.decl.meta.registers.map((r) => ({
      name: r.name,
      offset: r.offset,
      value: r.readSideEffect || !powered ? null : regs.read(r.offset),
    }));
  }

  readRegister(block: string, reg: string): number {
    return this.requireSoc().readReg(block, reg);
  }

  writeRegister(block: string, reg: string, value: number): void {
    this.requireSoc().writeReg(block, reg, value);
  }

  readMemory(pa: number, len: number, view: 'cpu' | 'ram'): Uint8Array {
    const soc = this.requireSoc();
    // peek, not read: a CPU read would fill cache lines, and looking must not change the simulation.
    return view === 'cpu' ? soc.bus.cache.peek(pa, len) : soc.bus.ram.read(pa, len);
  }

  scriptTypes(): string {
    const soc = this.soc;
    const blocks = soc ? soc.blockTypes() : [];
    return scriptApiDts(blocks);
  }

  findings(): Finding[] {
    return [...this.archived, ...(this.soc?.findings.list() ?? [])];
  }

  tlb(iommu: string): TlbEntry[] {
    return this.requireSoc().iommu(iommu).tlb();
  }

  walkCache(iommu: string): WalkCacheEntry[] {
    return this.requireSoc().iommu(iommu).walkCache();
  }

  traceEvents(): TraceEvent[] {
    return this.soc?.trace.events() ?? [];
  }

  simTime(): number {
    return this.soc?.clock.now() ?? 0;
  }

  deviceTree(): DeviceTree {
    return deviceTree(this.requireSoc());
  }

  touchedFrames(pa: number, len: number): number[] {
    return touchedFramesIn(this.requireSoc().ram, pa, len);
  }

  dirtyLines(pa: number, len: number): number[] {
    return dirtyLinesIn(this.requireSoc().cache, pa, len);
  }

  inspectIommu(iommu: string): IommuInspection {
    const soc = this.requireSoc();
    const model = soc.iommu(iommu);
    const driverSource = this.cdrivers?.drivers.find((d) => d.instance === iommu)?.source;
    return {
      ...(driverSource !== undefined ? { driverSource } : {}),
      name: iommu,
      model: model.model,
      powered: model.isPowered(),
      now: soc.clock.now(),
      stats: model.stats(),
      tlb: checkTlb(soc, iommu),
      walkCache: checkWalkCache(soc, iommu),
    };
  }

  traceWindow(from: number, to: number, limit: number): TraceWindow {
    const trace = this.soc?.trace;
    if (!trace) return traceWindow([], from, to, limit);
    const all = trace.events();
    return traceWindow(all, from, to, limit, trace.mark() - all.length + 1);
  }

  perfettoTrace(): string {
    const soc = this.requireSoc();
    return JSON.stringify(toPerfetto(soc.trace.events(), { socName: soc.config.name }));
  }

  domains(): DomainInfo[] {
    return this.soc ? listDomains(this.soc) : [];
  }

  pageTable(domain: number, query: PageTableQuery): PtTable {
    return domainPageTable(this.requireSoc(), domain, query);
  }

  iovaMap(domain: number): IovaMap {
    return domainIovaMap(this.requireSoc(), domain);
  }

  walkIova(domain: number, iova: number): IovaWalk {
    return domainWalk(this.requireSoc(), domain, iova);
  }

  pageOwners(pa: number, len: number): PageOwnerInfo[] {
    // The kernel is not booted just to look: before it is, no page has an owner.
    const pages = this.soc?.bootedKernel?.pages;
    return pages ? pageOwnersIn(pages, pa, len) : [];
  }

  /**
   * Run a script against a fresh SoC built from the loaded config and the seed, so the same config,
   * script and seed give the same trace. The SoC stays afterwards for the views to inspect.
   */
  runScript(req: ScriptRunRequest, runId: number): Promise<ScriptRunResult> {
    return this.execute(req, runId, null);
  }

  /**
   * In a helper worker: run the job's script up to its explore call, and there explore the pieces
   * the caller sends until this worker is terminated. Resolves only if the script never gets there.
   */
  async serveExplore(job: ExploreJob, channel: HelperChannel): Promise<string> {
    const loaded = await this.loadConfigAsync(job.config.text, job.config.file);
    if (!loaded.ok) return `the helper cannot load the config: ${loaded.errors[0]?.message ?? ''}`;
    const req: ScriptRunRequest = { source: job.source, fileName: job.fileName, seed: job.seed, timeoutMs: job.timeoutMs, ...(job.kernel ? { kernel: job.kernel } : {}) };
    const r = await this.execute(req, 0, { serve: { call: job.call, earlier: job.earlier, channel } });
    const why = r.error?.message ?? r.tests.find((t) => t.error)?.error?.message;
    return `the script ended before explore call ${job.call.ordinal} of test ${job.call.test}${why ? `: ${why}` : ''}`;
  }

  /**
   * Step-by-step replay of an explorer failure (ReplayRequest): run the script again up to the
   * explore call, replay the schedule there up to the step, and stop the run, so the SoC stays in
   * the state after the step for the views. Quiet: the run is a means, not a run the user started.
   */
  async replayTo(req: ReplayRequest): Promise<ReplayToResult> {
    let outcome: ReplayPrefixResult | { problem: string } | undefined;
    const stop = new AbortController();
    const replayAt: NonNullable<ExploreBindingOptions['replayAt']> = {
      call: req.call,
      schedule: req.schedule,
      steps: req.steps,
      done: (r) => {
        outcome = r;
        stop.abort();
      },
    };
    const run = await this.execute(req, 0, { replayAt, signal: stop.signal });
    if (!outcome) {
      const why = run.error?.message ?? run.tests.find((t) => t.error)?.error?.message;
      return { ok: false, message: `the script ended before explore call ${req.call.ordinal} of test ${req.call.test}${why ? `: ${why}` : ''}` };
    }
    if ('problem' in outcome) return { ok: false, message: outcome.problem };
    // The step's findings are the SoC's now: the findings view follows the replay too.
    this.archived.push(...outcome.findings);
    const step = outcome.steps[outcome.ran - 1];
    return {
      ok: true,
      stepIndex: outcome.ran,
      total: outcome.steps.length,
      ...(step ? { step } : {}),
      steps: outcome.steps,
      time: this.simTime(),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      findings: outcome.findings,
    };
  }

  /**
   * Time travel (MomentRequest): run the script again, deterministically, and keep the SoC as it was
   * right after the asked event, and around it (MOMENT_NEIGHBOURS each side), so that stepping by
   * event nearby is a restore rather than another run. Quiet, like replayTo.
   */
  async openMoment(req: MomentRequest): Promise<MomentResult> {
    if (!this.loaded) return { ok: false, message: 'no SoC config is loaded' };
    const seed = req.seed ?? this.loaded.config.seed ?? DEFAULT_SEED;
    const key = JSON.stringify([this.loaded.file, this.loaded.text.length, seed, req.fileName, req.source]);
    const kept = this.kept?.key === key ? this.kept.moments.get(req.event) : undefined;
    if (kept && this.soc && this.kept) {
      // A snapshot holds only the trace's mark: the ring of the furthest run is put back first.
      // A snapshot with a kernel needs one booted to restore into.
      if (kept.snap.kernel) void this.soc.kernel;
      this.soc.trace.reload(this.kept.ring.events, this.kept.ring.mark);
      this.soc.restore(kept.snap);
      this.archived = kept.archived.slice();
      return { ...kept.result, cached: true };
    }
    const moments = new Map<number, KeptMoment>();
    const stop = new AbortController();
    const from = Math.max(1, req.event - MOMENT_NEIGHBOURS);
    const to = req.event + MOMENT_NEIGHBOURS;
    const hook: MomentHook = {
      // to + 1 only to stop there.
      wants: (event) => event >= from && event <= to + 1,
      keep: (event, what, soc) => {
        moments.set(event, this.moment(event, what, soc));
        // Past the last event kept: the run stops at the next one (findings of `to` are kept first).
        if (event > to) stop.abort();
      },
    };
    const run = await this.execute(req, 0, { moment: hook, signal: stop.signal });
    moments.delete(to + 1);
    const soc = this.soc;
    const at = moments.get(req.event);
    if (!at || !soc) {
      const why = run.error?.message ?? run.tests.find((t) => t.error)?.error?.message;
      const events = soc?.trace.mark() ?? 0;
      return { ok: false, events, message: `the run has ${events} event(s), so event ${req.event} never happens${why ? ` (${why})` : ''}` };
    }
    // The run's own keyframes stay usable (they restore into this SoC as well); the ring is the
    // longer of the two runs' (the same events, deterministically).
    const earlier = this.kept?.key === key ? this.kept : null;
    const all = new Map([...(earlier?.moments ?? []), ...moments]);
    const ring = earlier && earlier.ring.mark >= soc.trace.mark() ? earlier.ring : { events: soc.trace.events(), mark: soc.trace.mark() };
    this.kept = { key, soc, moments: all, ring };
    soc.restore(at.snap);
    this.archived = at.archived.slice();
    return at.result;
  }

  /** The SoC now, as a kept moment of `event`. */
  private moment(event: number, what: TraceEvent | undefined, soc: Soc): KeptMoment {
    const site = this.callSite();
    const result: KeptMoment['result'] = { ok: true, event, time: soc.clock.now(), test: this.testName, cached: false, ...(what ? { what } : {}), ...(site ? { site } : {}) };
    return { snap: soc.snapshot(), archived: this.archived.slice(), result };
  }

  /**
   * A user's run keeps keyframes as it goes and the moment of each finding (MAX_* bound them), so
   * opening those is a restore. Returns the hook and what it kept.
   */
  private recorder(): { hook: MomentHook; moments: Map<number, KeptMoment> } {
    const moments = new Map<number, KeptMoment>();
    /** Finding moments and the events just after them (stepping on from a finding is a restore). */
    const findingMoments = new Set<number>();
    /** Findings whose moments are kept: a run raising thousands keeps only its first ones. */
    let findingsKept = 0;
    let interval = 64;
    let bytes = 0;
    const size = (m: KeptMoment): number => m.snap.ram.frames.size * 4096;
    const hook: MomentHook = {
      wants: (event) => event % interval === 0 || findingMoments.has(event),
      keep: (event, what, soc, isFinding) => {
        // Inside a C driver call (a WARN_ON, an MMIO event) nothing can be copied: opening that moment re-executes.
        if (!soc.snapshotReady()) return;
        let counted = false;
        if (isFinding && findingsKept >= MAX_FINDING_MOMENTS) {
          // Over the cap, a finding's moment re-executes; a keyframe or neighbour it lands on moves to it.
          if (!moments.has(event)) return;
        } else if (isFinding) {
          findingsKept++;
          counted = true;
        }
        const m = this.moment(event, what, soc);
        const old = moments.get(event);
        if (old) bytes -= size(old);
        moments.set(event, m);
        bytes += size(m);
        if (counted) {
          for (let i = 0; i <= MOMENT_NEIGHBOURS; i++) findingMoments.add(event + i);
        }
        // Over budget: keep every other keyframe (finding moments stay).
        while (moments.size > MAX_KEYFRAMES + findingMoments.size || bytes > MAX_KEYFRAME_BYTES) {
          interval *= 2;
          for (const [e, k] of moments) {
            if (e % interval === 0 || findingMoments.has(e)) continue;
            moments.delete(e);
            bytes -= size(k);
          }
          if (interval > 2 ** 40) break;
        }
      },
    };
    return { hook, moments };
  }

  /**
   * Run a script on a fresh SoC. special: serve an explore call (a helper worker), or replay one
   * (replayTo: events are not emitted, and the signal ends the run at the replayed step).
   */
  private async execute(
    req: ScriptRunRequest,
    runId: number,
    special:
      | { serve: NonNullable<ExploreBindingOptions['serve']> }
      | { replayAt: NonNullable<ExploreBindingOptions['replayAt']>; signal: AbortSignal }
      | { moment: MomentHook; signal: AbortSignal }
      | null,
  ): Promise<ScriptRunResult> {
    const started = Date.now();
    const quiet = special !== null && ('replayAt' in special || 'moment' in special);
    const emit = quiet ? () => undefined : (e: SessionEvent) => this.opts.emit(e);
    const fail = (message: string): ScriptRunResult => {
      const result: ScriptRunResult = { runId, ok: false, tests: [], error: { message, file: req.fileName }, durationMs: Date.now() - started };
      emit({ type: 'run-end', runId, result });
      return result;
    };
    if (!this.loaded) return fail('no SoC config is loaded');
    const loaded = this.loaded;
    const seed = req.seed ?? loaded.config.seed ?? DEFAULT_SEED;
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const soc = this.newSoc(this.loaded.config, seed, req.kernel ?? loaded.config.kernel ?? 'lazy');
    this.soc = soc;
    if (soc.kernelMode === 'eager') void soc.kernel;
    this.callSite = () => undefined;
    this.testName = '';
    // Moments: a re-execution keeps the asked ones, a user's run its keyframes and findings.
    const recorded = special === null ? this.recorder() : null;
    const hook = special && 'moment' in special ? special.moment : recorded?.hook;
    if (hook) {
      let last: TraceEvent | undefined;
      // Not inside an exploration: its runs are rewound, their events and findings are not the run's.
      soc.trace.subscribe((e) => {
        last = e;
        const n = soc.trace.mark();
        if (!soc.hasExecutor() && hook.wants(n)) hook.keep(n, e, soc, false);
      });
      soc.findings.onReport = (f) => {
        const n = f.replay?.event ?? soc.trace.mark();
        if (!soc.hasExecutor() && (recorded || hook.wants(n))) hook.keep(n, last, soc, true);
      };
    }
    let testAbort: AbortController | undefined;
    let testIndex = -1;
    let testName = '';
    let testTimeoutMs = timeoutMs;
    this.archived = [];
    const pool = this.opts.explorePool;
    const shardCalls: ShardCall[] = [];
    const sharding: Pick<ExploreBindingOptions, 'shard' | 'answers'> = req.shard
      ? { shard: { spec: req.shard, report: (c) => shardCalls.push(c) } }
      : req.exploreAnswers
        ? { answers: req.exploreAnswers }
        : {};
    const parallel: ExploreBindingOptions['parallel'] = pool && {
      pool,
      ...(req.exploreWorkers !== undefined ? { workers: req.exploreWorkers } : {}),
      job: (call, earlier) => ({ config: { text: loaded.text, file: loaded.file }, source: req.source, fileName: req.fileName, seed, timeoutMs, ...(req.kernel ? { kernel: req.kernel } : {}), call, earlier }),
    };
    const out = await runScript({
      source: req.source,
      fileName: req.fileName,
      timeoutMs,
      mayYield: () => !soc.hasExecutor(),
      onCallSite: (site) => {
        this.callSite = site;
        soc.setCallSite(site);
      },
      bindings: {
        soc: checkedApi('soc', createSocBindings(soc)),
        // Booted at its first use, so a script that only touches `soc` sees every block at reset.
        kernel: checkedApi(
          'kernel',
          kernelApi(
            () => soc.kernel,
            () => void soc.kernel,
          ),
        ),
        explore: createExploreBinding(soc, {
          onProgress: (p) => {
            this.opts.heartbeat({ runId, budgetMs: testTimeoutMs, test: testName });
            emit({ type: 'explore-progress', runId, ...p, done: false });
          },
          onResult: (r, call) => {
            const schedules = r.failures.map((f) => (f.error === undefined ? { schedule: f.schedule } : { schedule: f.schedule, error: f.error }));
            const explore = { call, testName, seed, schedules };
            emit({ type: 'explore-progress', runId, runs: r.runs, estimated: r.runs, failures: r.failures.length, done: true, schedules, explore });
          },
          // A test's explorations end with it (its timeout, or the run being stopped).
          signal: () => testAbort?.signal,
          testIndex: () => testIndex,
          ...(special && 'serve' in special
            ? { serve: special.serve }
            : { ...(parallel ? { parallel } : {}), ...(special && 'replayAt' in special ? { replayAt: special.replayAt } : {}), ...sharding }),
        }),
      },
      ...(special && 'signal' in special ? { signal: special.signal } : {}),
      onOutput: (stream, text) => emit({ type: 'output', runId, stream, text }),
      onTest: (result) => {
        this.opts.heartbeat({ runId, budgetMs: timeoutMs });
        emit({ type: 'test', runId, result });
      },
      hooks: {
        beforeTest: (t) => {
          testIndex++;
          testName = t.fullName;
          testTimeoutMs = t.timeoutMs;
          this.testName = t.fullName;
          testAbort = new AbortController();
          this.opts.heartbeat({ runId, budgetMs: t.timeoutMs, test: t.fullName });
          this.archived.push(...soc.findings.take());
        },
        afterTest: () => {
          testAbort?.abort();
          const left = soc.findings.take();
          this.archived.push(...left);
          return left;
        },
      },
    });
    if (recorded) {
      const key = JSON.stringify([loaded.file, loaded.text.length, seed, req.fileName, req.source]);
      this.kept = { key, soc, moments: recorded.moments, ring: { events: soc.trace.events(), mark: soc.trace.mark() } };
    }
    const result: ScriptRunResult = { runId, ...out, durationMs: Date.now() - started, ...(req.shard ? { shardCalls } : {}) };
    emit({ type: 'run-end', runId, result });
    return result;
  }
}

