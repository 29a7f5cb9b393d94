/**
 * The session host: owns the sim worker, restarts it when it dies or hangs, and offers the typed
 * session API to the three transports (Electron IPC, WebSocket, CLI). No Electron imports here.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type {
  LoadConfigResult,
  MomentRequest,
  MomentResult,
  PageTableQuery,
  ReplayRequest,
  ReplayToResult,
  ScriptError,
  ScriptRunRequest,
  ScriptRunResult,
  SessionApi,
  SessionEvent,
  TestResult,
} from '../../shared/session-api';
import { MAX_TIMEOUT_MS, validTimeout } from '../../shared/session-api';
import { resourcesDir } from './resources';
import { isWorkerPush, type WorkerApi } from './worker-api';

/** A worker script: built JavaScript, or TypeScript source loaded through tsx. */
export type WorkerEntry = { js: URL } | { ts: URL };

export interface HostOptions {
  /** Worker script; by default the TypeScript source under tsx, or the built sim-worker.js. */
  worker?: WorkerEntry;
  /** Folder with presets (*.soc.json); default resources/socs. */
  presetsDir?: string;
  /** Extra time past a test's timeout before the watchdog kills a silent worker. */
  watchdogGraceMs?: number;
  /** Per-test timeout used when a request gives none. */
  defaultTimeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The worker entry next to this module: .ts under tsx (dev, tests, CLI), .js when bundled. */
export function defaultWorkerEntry(): WorkerEntry {
  const self = new URL(import.meta.url);
  return self.pathname.endsWith('.ts') ? { ts: new URL('./sim-worker.ts', self) } : { js: new URL('./sim-worker.js', self) };
}

/** A worker that has not started (loaded the engine) after this long is killed as hung. */
const START_LIMIT_MS = 120_000;
/** A worker that dies this many times in a row before it started is not started again. */
const MAX_START_FAILURES = 4;
/** The first restart after a failed start waits this long; each further one twice as long. */
const START_BACKOFF_MS = 200;

class WorkerGone extends Error {
  constructor(
    readonly reason: string,
    /** The watchdog killed it: a watched call then names its own timeout and test. */
    readonly hung = false,
  ) {
    super(reason);
  }
}

interface Live {
  worker: Worker;
  api: Comlink.Remote<WorkerApi>;
  /** Rejects when this worker generation ends. */
  gone: Promise<never>;
  /** Set once the worker said it started (engine loaded); until then its silence is its start-up. */
  ready: boolean;
  spawnedAt: number;
  kill(reason: string, hung?: boolean): void;
}

/** One call the watchdog guards: a script run (or replay) or a config load. */
interface Watch {
  /** How long the current step may stay silent: the running test's timeout, else the run's. */
  budgetMs: number;
  /** The test running now, when known. */
  test?: string;
  /** Tests that finished, kept if the worker dies before the run ends. */
  tests: TestResult[];
}

export class SessionHost implements SessionApi {
  private live!: Live;
  private listeners = new Set<(e: SessionEvent) => void>();
  private lastConfig: { text: string; file: string } | null = null;
  /** When the worker last gave a sign of life while something was watched. */
  private lastHeartbeat = 0;
  /** Watched calls by run id (config loads use ids below zero); each keeps its own budget. */
  private readonly watches = new Map<number, Watch>();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private nextRunId = 1;
  private nextLoadId = -1;
  private disposed = false;
  private restarts = 0;
  /** Worker generations in a row that died before answering anything. */
  private startFailures = 0;
  /** Set when the worker could not be started: why, for every call from then on. */
  private broken: string | undefined;

  private constructor(
    private readonly entry: WorkerEntry,
    private readonly presetsDir: string,
    private readonly schemaDir: string,
    private readonly graceMs: number,
    private readonly defaultTimeoutMs: number,
  ) {}

  static async create(opts: HostOptions = {}): Promise<SessionHost> {
    const host = new SessionHost(
      opts.worker ?? defaultWorkerEntry(),
      opts.presetsDir ?? join(resourcesDir(), 'socs'),
      join(resourcesDir(), 'schema'),
      opts.watchdogGraceMs ?? 3000,
      opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    );
    host.spawn();
    return host;
  }

  /** How many times the worker was restarted (crash, hang, stop). */
  get restartCount(): number {
    return this.restarts;
  }

  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: SessionEvent): void {
    for (const l of this.listeners) l(e);
  }

  private spawn(): void {
    if (this.disposed) return;
    const worker =
      'js' in this.entry
        ? new Worker(this.entry.js)
        : new Worker(new URL('./tsx-bootstrap.mjs', import.meta.url), { workerData: { tsEntry: this.entry.ts.href } });
    let rejectGone!: (e: Error) => void;
    const gone = new Promise<never>((_, rej) => (rejectGone = rej));
    gone.catch(() => undefined);
    let ended = false;
    let killed = false;
    const end = (reason: string, hung = false): void => {
      if (ended) return;
      ended = true;
      rejectGone(new WorkerGone(reason, hung));
      if (this.disposed) return;
      // A worker that died by itself before it started will likely do it again: back off, then give up.
      this.startFailures = live.ready || killed ? 0 : this.startFailures + 1;
      if (this.startFailures >= MAX_START_FAILURES) {
        this.broken = `the sim worker failed to start ${this.startFailures} times in a row (last: ${reason}); it is not restarted again`;
        this.emit({ type: 'worker-restarted', reason: this.broken });
        return;
      }
      this.restarts++;
      const restart = (): void => {
        this.spawn();
        this.emit({ type: 'worker-restarted', reason });
        void this.reloadConfig();
      };
      if (this.startFailures === 0) restart();
      else setTimeout(restart, START_BACKOFF_MS * 2 ** (this.startFailures - 1)).unref();
    };
    worker.on('message', (m: unknown) => {
      if (!isWorkerPush(m)) return;
      if ('ready' in m) {
        live.ready = true;
        this.lastHeartbeat = Math.max(this.lastHeartbeat, Date.now());
      } else if ('heartbeat' in m) this.beat(m.heartbeat);
      else {
        const e = m.socEvent;
        if (e.type === 'test') this.watches.get(e.runId)?.tests.push(e.result);
        this.emit(e);
      }
    });
    worker.on('error', (err) => end(`the sim worker crashed: ${err.message}`));
    worker.on('exit', (code) => end(`the sim worker exited (code ${code})`));
    const api = Comlink.wrap<WorkerApi>(nodeEndpoint(worker));
    const live: Live = {
      worker,
      api,
      gone,
      ready: false,
      spawnedAt: Date.now(),
      kill: (reason, hung) => {
        killed = true;
        end(reason, hung);
        void worker.terminate();
      },
    };
    this.live = live;
  }

  /** A heartbeat: proof of life, and the budget of the run's next step. */
  private beat(b: { runId: number; budgetMs: number; test?: string }): void {
    this.lastHeartbeat = Date.now();
    const w = this.watches.get(b.runId);
    if (!w) return;
    // An out-of-range budget never switches the watchdog off: the run's own timeout stands.
    if (validTimeout(b.budgetMs)) w.budgetMs = b.budgetMs;
    if (b.test) w.test = b.test;
    else delete w.test;
  }

  /** After a restart the new worker gets the last good config back, so the session goes on. */
  private async reloadConfig(): Promise<void> {
    if (!this.lastConfig) return;
    const { text, file } = this.lastConfig;
    await this.call((api) => api.loadConfig(text, file) as Promise<LoadConfigResult>).catch(() => undefined);
  }

  /** Run fn against the current worker; fails cleanly if that worker dies meanwhile. */
  private async call<T>(fn: (api: Comlink.Remote<WorkerApi>) => Promise<T>): Promise<T> {
    if (this.broken) throw new Error(this.broken);
    const live = this.live;
    return Promise.race([fn(live.api), live.gone]);
  }

  async listPresets(): Promise<string[]> {
    const files = await readdir(this.presetsDir);
    return files.filter((f) => f.endsWith('.soc.json')).map((f) => f.slice(0, -'.soc.json'.length)).sort();
  }

  async loadPreset(name: string): Promise<LoadConfigResult> {
    const presets = await this.listPresets();
    if (!presets.includes(name)) {
      return { ok: false, errors: [{ file: name, path: '', message: `no preset named "${name}" (have: ${presets.join(', ')})` }] };
    }
    const text = await readFile(join(this.presetsDir, `${name}.soc.json`), 'utf8');
    return this.loadConfig(text, `resources/socs/${name}.soc.json`);
  }

  /**
   * Load a config in the worker, under the watchdog: a load that never ends (a config the engine
   * chokes on) restarts the worker and is reported against the file.
   */
  async loadConfig(text: string, file: string): Promise<LoadConfigResult> {
    let r: LoadConfigResult;
    try {
      // Comlink's Remote<> flattens the union; the worker returns the declared type.
      r = await this.watched(this.nextLoadId--, this.defaultTimeoutMs, (api) => api.loadConfig(text, file) as Promise<LoadConfigResult>);
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      const message = err.hung ? `loading the config did not finish within ${this.defaultTimeoutMs} ms; the sim worker was restarted` : `loading the config ended the sim worker: ${err.reason}`;
      return { ok: false, errors: [{ file, path: '', message }] };
    }
    if (r.ok) {
      this.lastConfig = { text, file };
      this.emit({ type: 'config-loaded', name: r.name, file });
    }
    return r;
  }

  configText(): Promise<{ text: string; file: string } | null> {
    return this.call((api) => api.configText());
  }

  listBlocks(): ReturnType<SessionApi['listBlocks']> {
    return this.call((api) => api.listBlocks());
  }

  describeBlock(block: string): ReturnType<SessionApi['describeBlock']> {
    return this.call((api) => api.describeBlock(block));
  }

  readRegisters(block: string): ReturnType<SessionApi['readRegisters']> {
    return this.call((api) => api.readRegisters(block));
  }

  readRegister(block: string, reg: string): Promise<number> {
    return this.call((api) => api.readRegister(block, reg));
  }

  writeRegister(block: string, reg: string, value: number): Promise<void> {
    return this.call((api) => api.writeRegister(block, reg, value));
  }

  readMemory(pa: number, len: number, view: 'cpu' | 'ram'): Promise<Uint8Array> {
    return this.call((api) => api.readMemory(pa, len, view));
  }

  scriptTypes(): Promise<string> {
    return this.call((api) => api.scriptTypes());
  }

  /** A script's syntax error, or null; host-local (the CLI's), not part of the session API. */
  checkScript(source: string, fileName: string): Promise<ScriptError | null> {
    return this.call((api) => api.checkScript(source, fileName));
  }

  findings(): ReturnType<SessionApi['findings']> {
    return this.call((api) => api.findings());
  }

  tlb(iommu: string): ReturnType<SessionApi['tlb']> {
    return this.call((api) => api.tlb(iommu));
  }

  walkCache(iommu: string): ReturnType<SessionApi['walkCache']> {
    return this.call((api) => api.walkCache(iommu));
  }

  traceEvents(): ReturnType<SessionApi['traceEvents']> {
    return this.call((api) => api.traceEvents());
  }

  async configSchema(): Promise<string> {
    return readFile(join(this.schemaDir, 'soc.schema.json'), 'utf8');
  }

  simTime(): Promise<number> {
    return this.call((api) => api.simTime());
  }

  deviceTree(): ReturnType<SessionApi['deviceTree']> {
    return this.call((api) => api.deviceTree());
  }

  touchedFrames(pa: number, len: number): Promise<number[]> {
    return this.call((api) => api.touchedFrames(pa, len));
  }

  dirtyLines(pa: number, len: number): Promise<number[]> {
    return this.call((api) => api.dirtyLines(pa, len));
  }

  inspectIommu(iommu: string): ReturnType<SessionApi['inspectIommu']> {
    return this.call((api) => api.inspectIommu(iommu));
  }

  traceWindow(from: number, to: number, limit: number): ReturnType<SessionApi['traceWindow']> {
    return this.call((api) => api.traceWindow(from, to, limit));
  }

  perfettoTrace(): Promise<string> {
    return this.call((api) => api.perfettoTrace());
  }

  domains(): ReturnType<SessionApi['domains']> {
    return this.call((api) => api.domains());
  }

  pageTable(domain: number, query: PageTableQuery): ReturnType<SessionApi['pageTable']> {
    return this.call((api) => api.pageTable(domain, query));
  }

  iovaMap(domain: number): ReturnType<SessionApi['iovaMap']> {
    return this.call((api) => api.iovaMap(domain));
  }

  walkIova(domain: number, iova: number): ReturnType<SessionApi['walkIova']> {
    return this.call((api) => api.walkIova(domain, iova));
  }

  pageOwners(pa: number, len: number): ReturnType<SessionApi['pageOwners']> {
    return this.call((api) => api.pageOwners(pa, len));
  }

  /**
   * Run a script in the worker. Tests are stopped at their timeout inside the sandbox; if the
   * worker itself stops answering (heartbeats cease for longer than a test may take), the
   * watchdog kills it, a fresh worker takes over with the same config, and the run fails clearly,
   * keeping the tests that finished and naming the one that was running.
   */
  async runScript(req: ScriptRunRequest): Promise<ScriptRunResult> {
    const runId = this.nextRunId++;
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    const started = Date.now();
    const watch = this.newWatch(timeoutMs);
    try {
      return await this.watched(runId, timeoutMs, (api) => api.runScript({ ...req, timeoutMs }, runId), watch);
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      const result: ScriptRunResult = {
        runId,
        ok: false,
        tests: watch.tests,
        error: { message: goneMessage(err, watch), file: req.fileName },
        durationMs: Date.now() - started,
      };
      this.emit({ type: 'run-end', runId, result });
      return result;
    }
  }

  /** A replay runs the script again, so the same watchdog guards it. */
  async replayTo(req: ReplayRequest): Promise<ReplayToResult> {
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    const watch = this.newWatch(timeoutMs);
    try {
      // A replay runs as run 0 in the worker, so its heartbeats are run 0's.
      const id = this.watches.has(0) ? this.nextLoadId-- : 0;
      return await this.watched(id, timeoutMs, (api) => api.replayTo({ ...req, timeoutMs }) as Promise<ReplayToResult>, watch);
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      return { ok: false, message: goneMessage(err, watch) };
    }
  }

  /** A moment is opened by running the script again, so the same watchdog guards it. */
  async openMoment(req: MomentRequest): Promise<MomentResult> {
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    const watch = this.newWatch(timeoutMs);
    try {
      // Like a replay, an open runs the script as run 0 in the worker.
      const id = this.watches.has(0) ? this.nextLoadId-- : 0;
      return await this.watched(id, timeoutMs, (api) => api.openMoment({ ...req, timeoutMs }) as Promise<MomentResult>, watch);
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      return { ok: false, message: goneMessage(err, watch) };
    }
  }

  private newWatch(timeoutMs: number): Watch {
    return { budgetMs: Math.min(timeoutMs, MAX_TIMEOUT_MS), tests: [] };
  }

  /**
   * Run a call under the watchdog; rejects with WorkerGone if the worker had to go. Every watched
   * call keeps its own budget: the worker is killed only once it was silent for longer than the
   * most any of them may take, so one run's short timeout never kills another's long test.
   */
  private async watched<T>(id: number, timeoutMs: number, fn: (api: Comlink.Remote<WorkerApi>) => Promise<T>, watch = this.newWatch(timeoutMs)): Promise<T> {
    // Silence is measured from the first watched call on: a call that joins a hung worker does not revive it.
    if (this.watches.size === 0) this.lastHeartbeat = Date.now();
    this.watches.set(id, watch);
    this.watchdog ??= setInterval(() => this.checkSilence(), 100);
    try {
      return await this.call(fn);
    } finally {
      this.watches.delete(id);
      if (this.watches.size === 0) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      }
    }
  }

  private checkSilence(): void {
    let longest: Watch | undefined;
    for (const w of this.watches.values()) if (!longest || w.budgetMs > longest.budgetMs) longest = w;
    if (!longest) return;
    const live = this.live;
    // Loading the engine is no step of the call: it is timed on its own, against a generous limit.
    if (!live.ready) {
      if (Date.now() - live.spawnedAt > START_LIMIT_MS) live.kill(`the sim worker did not start within ${START_LIMIT_MS / 1000} s`);
      return;
    }
    const silent = Date.now() - this.lastHeartbeat;
    if (silent > longest.budgetMs + this.graceMs) this.live.kill('the sim worker stopped answering', true);
  }

  /** Stop whatever runs: the worker is replaced (state comes back from the last config). */
  async stopScript(): Promise<void> {
    if (this.broken) return;
    this.live.kill('stopped by the user; the sim worker was restarted');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    clearInterval(this.watchdog);
    this.listeners.clear();
    await this.live.worker.terminate();
  }
}

/** Why a watched call ended with its worker: its own timeout and test for a hang, else the worker's end. */
function goneMessage(err: WorkerGone, w: Watch): string {
  const during = w.test ? ` while test "${w.test}" was running` : '';
  if (!err.hung) return `${err.reason}${during}`;
  const whose = w.test ? `the timeout of test "${w.test}"` : 'its timeout';
  return `the script stopped answering for more than ${w.budgetMs} ms (${whose}); the sim worker was restarted`;
}
