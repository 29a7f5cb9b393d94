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
  ScriptRunRequest,
  ScriptRunResult,
  SessionApi,
  SessionEvent,
} from '../../shared/session-api';
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

class WorkerGone extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

interface Live {
  worker: Worker;
  api: Comlink.Remote<WorkerApi>;
  /** Rejects when this worker generation ends. */
  gone: Promise<never>;
  kill(reason: string): void;
}

export class SessionHost implements SessionApi {
  private live!: Live;
  private listeners = new Set<(e: SessionEvent) => void>();
  private lastConfig: { text: string; file: string } | null = null;
  private lastHeartbeat = 0;
  /** How long the worker said its current step may take (a test's own timeout). */
  private budgetMs = 0;
  private nextRunId = 1;
  private disposed = false;
  private restarts = 0;

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
    const worker =
      'js' in this.entry
        ? new Worker(this.entry.js)
        : new Worker(new URL('./tsx-bootstrap.mjs', import.meta.url), { workerData: { tsEntry: this.entry.ts.href } });
    let rejectGone!: (e: Error) => void;
    const gone = new Promise<never>((_, rej) => (rejectGone = rej));
    gone.catch(() => undefined);
    let ended = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      rejectGone(new WorkerGone(reason));
      if (this.disposed) return;
      this.restarts++;
      this.spawn();
      this.emit({ type: 'worker-restarted', reason });
      void this.reloadConfig();
    };
    worker.on('message', (m: unknown) => {
      if (!isWorkerPush(m)) return;
      if ('heartbeat' in m) {
        this.lastHeartbeat = Date.now();
        this.budgetMs = m.budgetMs;
      }
      else this.emit(m.socEvent);
    });
    worker.on('error', (err) => end(`the sim worker crashed: ${err.message}`));
    worker.on('exit', (code) => end(`the sim worker exited (code ${code})`));
    const api = Comlink.wrap<WorkerApi>(nodeEndpoint(worker));
    this.live = {
      worker,
      api,
      gone,
      kill: (reason) => {
        end(reason);
        void worker.terminate();
      },
    };
  }

  /** After a restart the new worker gets the last good config back, so the session goes on. */
  private async reloadConfig(): Promise<void> {
    if (!this.lastConfig) return;
    const { text, file } = this.lastConfig;
    await this.call((api) => api.loadConfig(text, file) as Promise<LoadConfigResult>).catch(() => undefined);
  }

  /** Run fn against the current worker; fails cleanly if that worker dies meanwhile. */
  private async call<T>(fn: (api: Comlink.Remote<WorkerApi>) => Promise<T>): Promise<T> {
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

  async loadConfig(text: string, file: string): Promise<LoadConfigResult> {
    // Comlink's Remote<> flattens the union; the worker returns the declared type.
    const r = await this.call((api) => api.loadConfig(text, file) as Promise<LoadConfigResult>);
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
   * watchdog kills it, a fresh worker takes over with the same config, and the run fails clearly.
   */
  async runScript(req: ScriptRunRequest): Promise<ScriptRunResult> {
    const runId = this.nextRunId++;
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    const started = Date.now();
    try {
      return await this.watched(timeoutMs, (api) => api.runScript({ ...req, timeoutMs }, runId));
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      const result: ScriptRunResult = {
        runId,
        ok: false,
        tests: [],
        error: { message: err.reason, file: req.fileName },
        durationMs: Date.now() - started,
      };
      this.emit({ type: 'run-end', runId, result });
      return result;
    }
  }

  /** A replay runs the script again, so the same watchdog guards it. */
  async replayTo(req: ReplayRequest): Promise<ReplayToResult> {
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    try {
      // Comlink's Remote<> flattens the union; the worker returns the declared type.
      return await this.watched(timeoutMs, (api) => api.replayTo({ ...req, timeoutMs }) as Promise<ReplayToResult>);
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      return { ok: false, message: err.reason };
    }
  }

  /** A moment is opened by running the script again, so the same watchdog guards it. */
  async openMoment(req: MomentRequest): Promise<MomentResult> {
    const timeoutMs = req.timeoutMs ?? this.defaultTimeoutMs;
    try {
      return await this.watched(timeoutMs, (api) => api.openMoment({ ...req, timeoutMs }) as Promise<MomentResult>);
    } catch (err) {
      if (!(err instanceof WorkerGone)) throw err;
      return { ok: false, message: err.reason };
    }
  }

  /** Run a script-running call under the watchdog; rejects with WorkerGone if the worker had to go. */
  private async watched<T>(timeoutMs: number, fn: (api: Comlink.Remote<WorkerApi>) => Promise<T>): Promise<T> {
    this.lastHeartbeat = Date.now();
    this.budgetMs = timeoutMs;
    const live = this.live;
    const watchdog = setInterval(() => {
      const budget = Math.max(timeoutMs, this.budgetMs);
      if (Date.now() - this.lastHeartbeat > budget + this.graceMs) {
        live.kill(`the script stopped answering for more than ${budget} ms (its timeout); the sim worker was restarted`);
      }
    }, Math.min(250, timeoutMs));
    try {
      return await this.call(fn);
    } finally {
      clearInterval(watchdog);
    }
  }

  /** Stop whatever runs: the worker is replaced (state comes back from the last config). */
  async stopScript(): Promise<void> {
    this.live.kill('stopped by the user; the sim worker was restarted');
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.listeners.clear();
    await this.live.worker.terminate();
  }
}
