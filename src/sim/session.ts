/**
 * The engine side of the session API: one loaded SoC, scripts run against it, and the views the
 * console reads. Transport-free: the sim worker exposes it, tests call it directly.
 */
import type { Finding } from './core/findings';
import { parseConfig } from './config/validate';
import type { SocConfig } from './config/types';
import { scriptApiDts } from './script/api-types';
import { runScript } from './script/run';
import { IOMMU_MODELS, Soc } from './soc';
import { iommuDrivers } from './kernel/drivers';
import type { KernelDriver } from './kernel/kernel';
import { cIommuDriver } from './kernel/cdriver/driver';
import type { DriverBuilder } from './kernel/cdriver/build-api';
import { createSocBindings } from './soc-api';
import { createExploreBinding, type ExploreBindingOptions } from './check/explore-binding';
import type { ReplayPrefixResult } from './check/explore';
import type { ExploreJob, ExplorePool, HelperChannel } from './check/explore-parallel';
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
  LoadConfigResult,
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
  heartbeat(budgetMs: number): void;
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

const DEFAULT_SEED = 1;
const DEFAULT_TIMEOUT_MS = 10_000;

export class Session {
  private loaded: { config: SocConfig; text: string; file: string } | null = null;
  private soc: Soc | null = null;
  /** Findings that tests left untaken, kept for the findings view after the run. */
  private archived: Finding[] = [];

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
  private newSoc(config: SocConfig, seed: number): Soc {
    const named = config.iommus.filter((i) => i.driver);
    if (named.length === 0) return new Soc(config, seed);
    const c = this.cdrivers;
    const have = c ? new Set(c.drivers.map((d) => d.instance)) : new Set<string | undefined>();
    const missing = named.filter((i) => !have.has(i.name));
    if (missing.length > 0) throw new Error(`${missing.map((i) => i.name).join(', ')}: the C driver is not built (load the config with loadConfigAsync)`);
    return new Soc(config, seed, IOMMU_MODELS, [...iommuDrivers(), ...c!.drivers]);
  }

  loadConfig(text: string, file: string): LoadConfigResult {
    const r = parseConfig(text, file);
    if (!r.ok) return { ok: false, errors: r.errors };
    if (this.cdrivers && (this.cdrivers.text !== text || this.cdrivers.file !== file)) this.cdrivers = null;
    try {
      this.soc = this.newSoc(r.config, r.config.seed ?? DEFAULT_SEED);
    } catch (err) {
      return { ok: false, errors: [{ file, path: '', message: `cannot build the SoC: ${(err as Error).message}` }] };
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
    return traceWindow(this.soc?.trace.events() ?? [], from, to, limit);
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
    const req: ScriptRunRequest = { source: job.source, fileName: job.fileName, seed: job.seed, timeoutMs: job.timeoutMs };
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
   * Run a script on a fresh SoC. special: serve an explore call (a helper worker), or replay one
   * (replayTo: events are not emitted, and the signal ends the run at the replayed step).
   */
  private async execute(
    req: ScriptRunRequest,
    runId: number,
    special: { serve: NonNullable<ExploreBindingOptions['serve']> } | { replayAt: NonNullable<ExploreBindingOptions['replayAt']>; signal: AbortSignal } | null,
  ): Promise<ScriptRunResult> {
    const started = Date.now();
    const emit = special && 'replayAt' in special ? () => undefined : (e: SessionEvent) => this.opts.emit(e);
    const fail = (message: string): ScriptRunResult => {
      const result: ScriptRunResult = { runId, ok: false, tests: [], error: { message, file: req.fileName }, durationMs: Date.now() - started };
      emit({ type: 'run-end', runId, result });
      return result;
    };
    if (!this.loaded) return fail('no SoC config is loaded');
    const loaded = this.loaded;
    const seed = req.seed ?? loaded.config.seed ?? DEFAULT_SEED;
    const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const soc = this.newSoc(this.loaded.config, seed);
    this.soc = soc;
    let testAbort: AbortController | undefined;
    let testIndex = -1;
    let testName = '';
    this.archived = [];
    const pool = this.opts.explorePool;
    const parallel: ExploreBindingOptions['parallel'] = pool && {
      pool,
      ...(req.exploreWorkers !== undefined ? { workers: req.exploreWorkers } : {}),
      job: (call, earlier) => ({ config: { text: loaded.text, file: loaded.file }, source: req.source, fileName: req.fileName, seed, timeoutMs, call, earlier }),
    };
    const out = await runScript({
      source: req.source,
      fileName: req.fileName,
      timeoutMs,
      mayYield: () => !soc.hasExecutor(),
      onCallSite: (site) => soc.setCallSite(site),
      bindings: {
        soc: createSocBindings(soc),
        kernel: soc.kernel.api,
        explore: createExploreBinding(soc, {
          onProgress: (p) => {
            this.opts.heartbeat(timeoutMs);
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
          ...(special && 'serve' in special ? { serve: special.serve } : { ...(parallel ? { parallel } : {}), ...(special ? { replayAt: special.replayAt } : {}) }),
        }),
      },
      ...(special && 'signal' in special ? { signal: special.signal } : {}),
      onOutput: (stream, text) => emit({ type: 'output', runId, stream, text }),
      onTest: (result) => {
        this.opts.heartbeat(timeoutMs);
        emit({ type: 'test', runId, result });
      },
      hooks: {
        beforeTest: (t) => {
          testIndex++;
          testName = t.fullName;
          testAbort = new AbortController();
          this.opts.heartbeat(t.timeoutMs);
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
    const result: ScriptRunResult = { runId, ...out, durationMs: Date.now() - started };
    emit({ type: 'run-end', runId, result });
    return result;
  }
}

