/**
 * Runs one driver test script: transpile, load it in a fresh sandbox, then run its tests one by
 * one in declaration order, each under its timeout, failing tests that throw or leave error-level
 * findings untaken (script-api.md). Independent of the SoC: everything it touches comes in as
 * bindings and hooks.
 */
import type { Finding } from '../core/findings';
import { MAX_TIMEOUT_MS, validTimeout, type ScriptError, type ScriptRunResult, type TestResult } from '../../shared/session-api';
import type { ErrorInfo } from './marshal';
import { Sandbox, type TestInfo } from './sandbox';
import type { SourceMap } from './source-map';
import { locateError, userSite } from './stack';
import { transpileScript, type LoopSites } from './transpile';

export const DEFAULT_TEST_TIMEOUT_MS = 10_000;
export const DEFAULT_MEMORY_LIMIT_BYTES = 256 * 1024 * 1024;
/**
 * QuickJS's own stack limit. Its frames also use the host thread's native stack (WebAssembly runs
 * on it), so the limit must trip well before Node's ~1 MB native stack does.
 */
export const DEFAULT_MAX_STACK_BYTES = 256 * 1024;

/** Names the harness defines; bindings may not take them. */
const HARNESS_GLOBALS = ['test', 'describe', 'expect', 'console'];

export interface TestHooks {
  /** A test is about to run (seed: its own, when it gives one). */
  beforeTest(test: { name: string; fullName: string; seed?: number; timeoutMs: number }): void;
  /** The test ended: the findings raised during it that it did not take. */
  afterTest(): Finding[];
}

export interface RunScriptOptions {
  source: string;
  /** Name used in stacks and error locations, e.g. 'tests/h6-map.ts'. */
  fileName: string;
  /** Globals for the script (soc, kernel, explore, ...): trees of plain data and host functions. */
  bindings: Record<string, unknown>;
  /** Per-test timeout, also the limit for loading the script (default 10 s). */
  timeoutMs?: number;
  memoryLimitBytes?: number;
  maxStackBytes?: number;
  onOutput?(stream: 'log' | 'error', text: string): void;
  onTest?(result: TestResult): void;
  hooks?: TestHooks;
  /** Stops the run before its next test (and ends a test waiting on a promise). */
  signal?: AbortSignal;
  /** See SandboxOptions.mayYield. */
  mayYield?(): boolean;
  /**
   * Receives a provider of the script line of the host call in progress ("file.ts:line:col"), so
   * findings raised during a call can name the line that made it.
   */
  onCallSite?(provider: () => string | undefined): void;
}

export type RunScriptResult = Omit<ScriptRunResult, 'runId'>;

type Outcome =
  | { kind: 'done'; error: ErrorInfo | null }
  /** Interrupted while running synchronously past the deadline; error: where, when known. */
  | { kind: 'loop'; error: ErrorInfo | null }
  | { kind: 'timeout' }
  | { kind: 'aborted' };

export async function runScript(opts: RunScriptOptions): Promise<RunScriptResult> {
  const t0 = performance.now();
  const elapsed = (): number => performance.now() - t0;
  const { fileName } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TEST_TIMEOUT_MS;
  if (!validTimeout(timeoutMs)) throw new RangeError(`runScript: timeoutMs must be from 1 to ${MAX_TIMEOUT_MS} ms, got ${timeoutMs}`);
  const taken = Object.keys(opts.bindings).filter((k) => HARNESS_GLOBALS.includes(k));
  if (taken.length > 0) throw new Error(`runScript: bindings may not define ${taken.join(', ')}`);

  const tr = transpileScript(opts.source, fileName);
  if (!tr.ok) return { ok: false, tests: [], error: tr.error, durationMs: elapsed() };

  const sb = await Sandbox.create({
    memoryLimitBytes: opts.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT_BYTES,
    maxStackBytes: opts.maxStackBytes ?? DEFAULT_MAX_STACK_BYTES,
    onOutput: (stream, text) => opts.onOutput?.(stream, text),
    mayYield: opts.mayYield,
  });
  opts.onCallSite?.(() => {
    const stack = sb.currentStack();
    return stack === undefined ? undefined : userSite(stack, fileName, tr.map);
  });
  try {
    for (const [name, value] of Object.entries(opts.bindings)) sb.defineGlobal(name, value);

    const load = await guarded(sb, timeoutMs, opts.signal, () => sb.evalModule(tr.js, fileName));
    const loadError = outcomeError(load, 'loading the script', timeoutMs, fileName, tr, '');
    if (loadError) return { ok: false, tests: [], error: loadError, durationMs: elapsed() };

    const tests: TestResult[] = [];
    const count = sb.testCount();
    for (let i = 0; i < count; i++) {
      if (opts.signal?.aborted) return { ok: false, tests, error: stopped(fileName), durationMs: elapsed() };
      const info = sb.testInfo(i);
      const result = await runOne(sb, i, info, opts, timeoutMs, tr);
      tests.push(result);
      opts.onTest?.(result);
      if (opts.signal?.aborted) return { ok: false, tests, error: stopped(fileName), durationMs: elapsed() };
    }
    return { ok: tests.every((t) => t.status === 'passed'), tests, durationMs: elapsed() };
  } finally {
    if (!sb.dispose()) opts.onOutput?.('error', 'internal: the sandbox leaked memory on teardown; the QuickJS module will be reloaded');
  }
}

async function runOne(sb: Sandbox, i: number, info: TestInfo, opts: RunScriptOptions, defaultTimeout: number, tr: Script): Promise<TestResult> {
  // The harness checked the test's own timeout; checked again here, where a script cannot reach.
  const timeoutMs = validTimeout(info.timeoutMs) ? info.timeoutMs : defaultTimeout;
  opts.hooks?.beforeTest({ name: info.name, fullName: info.fullName, timeoutMs, ...(info.seed !== undefined ? { seed: info.seed } : {}) });
  const start = performance.now();
  const outcome = await guarded(sb, timeoutMs, opts.signal, () => sb.runTest(i));
  const durationMs = performance.now() - start;
  const findings = opts.hooks?.afterTest() ?? [];
  let error = outcomeError(outcome, `test "${info.fullName}"`, timeoutMs, opts.fileName, tr, info.site);
  const untaken = findings.filter((f) => f.severity === 'error');
  if (!error && untaken.length > 0) {
    const list = untaken.map((f) => `  ${f.kind}: ${f.message}`).join('\n');
    const message = `${untaken.length} error-level finding${untaken.length > 1 ? 's' : ''} raised during the test ${untaken.length > 1 ? 'were' : 'was'} not taken:\n${list}`;
    error = { ...locateError({ message, stack: '' }, opts.fileName, tr.map, info.site), ...raisedAt(untaken[0]!, opts.fileName) };
  }
  return { name: info.name, fullName: info.fullName, status: error ? 'failed' : 'passed', durationMs, ...(error ? { error } : {}), findings };
}

/** What a run needs of its transpiled script to locate errors. */
interface Script {
  map: SourceMap;
  loops: LoopSites;
}

/** The script line of the call that raised a finding (its where.line "file.ts:line:col"), if in this file. */
function raisedAt(f: Finding, fileName: string): { line: number; column: number } | Record<string, never> {
  const m = typeof f.where?.line === 'string' ? /^(.*):(\d+):(\d+)$/.exec(f.where.line) : null;
  return m && m[1] === fileName ? { line: Number(m[2]), column: Number(m[3]) } : {};
}

function outcomeError(o: Outcome, what: string, timeoutMs: number, fileName: string, tr: Script, site: string): ScriptError | undefined {
  switch (o.kind) {
    case 'done':
      return o.error ? locateError(o.error, fileName, tr.map, site) : undefined;
    case 'loop': {
      const message = `${what} was stopped at its ${timeoutMs} ms timeout while running without a pause (an endless loop?)`;
      const located = locateError({ message, stack: o.error?.stack ?? '' }, fileName, tr.map, site);
      // Only a stack of the loop's own frames says which function spins (not the fallback site).
      return o.error?.stack.includes(`(${fileName}:`) ? atLoop(located, tr.loops) : located;
    }
    case 'timeout':
      return locateError({ message: `${what} timed out after ${timeoutMs} ms: it was still waiting (a promise that never settles?)`, stack: '' }, fileName, tr.map, site);
    case 'aborted':
      return stopped(fileName);
  }
}

/**
 * An endless loop's error points at the start of the function it spins in (QuickJS's stack has
 * the frame's last call); move it to the loop, or name the loops when the function has several.
 */
function atLoop(e: ScriptError, loops: LoopSites): ScriptError {
  if (e.line === undefined || e.column === undefined) return e;
  const found = loops.within({ line: e.line, column: e.column });
  if (found.length === 0) return e;
  if (found.length > 1) return { ...e, message: `${e.message}; the function has loops at lines ${found.map((l) => l.line).join(', ')}` };
  const loop = found[0]!;
  const stack = e.stack?.replace(/^(\s*at .*?\().*?:\d+:\d+\)/, `$1${e.file}:${loop.line}:${loop.column})`);
  return { ...e, line: loop.line, column: loop.column, ...(stack !== undefined ? { stack } : {}) };
}

function stopped(fileName: string): ScriptError {
  return { message: 'the run was stopped', file: fileName };
}

/**
 * Run one sandbox phase under a timeout. Synchronous code is stopped by the sandbox's deadline;
 * a phase waiting on a promise that never settles is abandoned when the timer fires.
 */
function guarded(sb: Sandbox, timeoutMs: number, signal: AbortSignal | undefined, phase: () => Promise<ErrorInfo | null>): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    let finished = false;
    let interrupted = false;
    const finish = (o: Outcome): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sb.setDeadline(Infinity);
      resolve(o);
    };
    const onAbort = (): void => finish({ kind: 'aborted' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted) return finish({ kind: 'aborted' });
    sb.setDeadline(Date.now() + timeoutMs, () => {
      interrupted = true;
      // The interrupted phase usually reports back within a few microtasks, with the stack of the
      // loop; if the loop ran in some other job, report without a location.
      setTimeout(() => finish({ kind: 'loop', error: null }), 0);
    });
    phase().then(
      (error) => finish(interrupted ? { kind: 'loop', error } : { kind: 'done', error }),
      (e: unknown) => finish({ kind: 'done', error: { message: e instanceof Error ? e.message : String(e), stack: '' } }),
    );
  });
}
