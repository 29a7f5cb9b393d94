/**
 * Headless CLI: run driver test scripts against a SoC config and report (script-api.md "CLI").
 *
 *   npm run bringup -- --soc <config.soc.json> [--seed N] [--reporter tap|junit|pretty]
 *                      [--out FILE] [--emit-types FILE] [--timeout MS] [--explore-workers N]
 *                      script.ts [more.ts ...]
 *   npm run bringup -- import-dt board.dtb [--report FILE] > board.soc.json   (see import-dt.ts)
 *
 * Exit 0: every test passed. 1: a test failed or a script was stopped. 2: bad input (option,
 * missing file, invalid config, script syntax), with a message naming the file and line or field.
 * Scripts run through the session host, in the sim worker under its watchdog.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { KERNEL_MODES, type KernelMode, type LoadConfigResult, type ScriptError, type ScriptRunRequest, type ScriptRunResult, type SessionEvent } from '../../shared/session-api';
import { REPORTERS, report, type FileRun, type ReporterName } from '../../sim/script/reporters';
import { defaultShardFile, mergeShards, parseShard, shardReport } from './shard';

/** What the CLI needs of the session host. */
export interface CliSession {
  loadConfig(text: string, file: string): Promise<LoadConfigResult>;
  /** A script's syntax error, or null: the same check a run starts with. */
  checkScript(source: string, fileName: string): Promise<ScriptError | null>;
  runScript(req: ScriptRunRequest): Promise<ScriptRunResult>;
  scriptTypes(): Promise<string>;
  onEvent(listener: (e: SessionEvent) => void): () => void;
  dispose(): Promise<void>;
}

export interface CliDeps {
  createSession(): Promise<CliSession>;
  readFile(path: string): Promise<string>;
  writeFile(path: string, text: string): Promise<void>;
  /** Whether a folder exists (outputs are checked before anything runs). */
  isDirectory(path: string): Promise<boolean>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Absolute path of a CLI path argument (--driver files). */
  resolvePath?(path: string): string;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

const USAGE = `usage: npm run bringup -- --soc <config.soc.json> [--seed N] [--reporter tap|junit|pretty]
                          [--out FILE] [--emit-types FILE] [--timeout MS] [--explore-workers N]
                          [--kernel none|lazy|eager] [--driver IOMMU=FILE.c ...] script.ts [more.ts ...]
  --kernel: when the kernel layer boots: lazy (default) at the first use of \`kernel\`, eager before
            the script, none never (a register-only run)
  --driver IOMMU=FILE.c: run your C driver for that IOMMU (the config's "driver" source, replaced)
  --explore-workers N: workers per exploration unless its spec says (default: one per core once an
                       exploration runs for a second); the results are the same whatever N
  --shard K/N:         explore only shard K (0-based) of N of every exploration and write a shard
                       report (JSON) to --out (default shard-K-of-N.json); then
       npm run bringup -- merge [--reporter R] [--out FILE] shard-*.json
                       merges all N into the unsharded run's report and exit code
       npm run bringup -- import-dt <board.dtb | board.dts> [--report FILE] > board.soc.json`;

interface Options {
  soc: string;
  seed?: number;
  reporter: ReporterName;
  out?: string;
  emitTypes?: string;
  timeoutMs?: number;
  exploreWorkers?: number;
  shard?: { index: number; count: number };
  kernel?: KernelMode;
  /** --driver iommu=file.c, in order. */
  drivers: { iommu: string; source: string }[];
  scripts: string[];
}

class BadInput extends Error {}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        soc: { type: 'string' },
        seed: { type: 'string' },
        reporter: { type: 'string' },
        out: { type: 'string' },
        'emit-types': { type: 'string' },
        timeout: { type: 'string' },
        'explore-workers': { type: 'string' },
        shard: { type: 'string' },
        kernel: { type: 'string' },
        driver: { type: 'string', multiple: true },
      },
    });
  } catch (e) {
    throw new BadInput(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values;
  const int = (name: string, text: string | undefined, min: number, max: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) throw new BadInput(`--${name} must be an integer from ${min} to ${max}, got '${text}'`);
    return n;
  };
  if (!v.soc) throw new BadInput('--soc <config.soc.json> is required');
  const reporter = v.reporter ?? 'pretty';
  if (!(REPORTERS as readonly string[]).includes(reporter)) throw new BadInput(`--reporter must be one of ${REPORTERS.join(', ')}, got '${reporter}'`);
  if (v.kernel !== undefined && !(KERNEL_MODES as readonly string[]).includes(v.kernel)) throw new BadInput(`--kernel must be one of ${KERNEL_MODES.join(', ')}, got '${v.kernel}'`);
  if (parsed.positionals.length === 0 && !v['emit-types']) throw new BadInput('no script given');
  return {
    soc: v.soc,
    seed: int('seed', v.seed, 0, 0xffffffff),
    reporter: reporter as ReporterName,
    out: v.out,
    emitTypes: v['emit-types'],
    timeoutMs: int('timeout', v.timeout, 1, 3_600_000),
    exploreWorkers: int('explore-workers', v['explore-workers'], 1, 256),
    ...(v.shard !== undefined ? { shard: shardOption(v.shard) } : {}),
    ...(v.kernel !== undefined ? { kernel: v.kernel as KernelMode } : {}),
    drivers: (v.driver ?? []).map((d) => {
      const m = /^([^=]+)=(.+)$/.exec(d);
      if (!m) throw new BadInput(`--driver must be IOMMU=FILE.c, got '${d}'`);
      return { iommu: m[1]!, source: m[2]! };
    }),
    scripts: parsed.positionals,
  };
}

function shardOption(text: string): { index: number; count: number } {
  try {
    return parseShard(text);
  } catch (e) {
    throw new BadInput(e instanceof Error ? e.message : String(e));
  }
}

async function readInput(deps: CliDeps, path: string, what: string): Promise<string> {
  try {
    return await deps.readFile(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new BadInput(`${path}: cannot read the ${what}${code === 'ENOENT' ? ': no such file' : `: ${e instanceof Error ? e.message : String(e)}`}`);
  }
}

/**
 * The config text with --driver overrides: each names an IOMMU of the config and a C file (made
 * absolute, so it does not depend on where the config is). Unknown IOMMUs and bad JSON are bad input.
 */
function withDrivers(text: string, file: string, drivers: Options['drivers'], resolvePath: (p: string) => string): string {
  if (drivers.length === 0) return text;
  let cfg: { iommus?: { name?: string; driver?: Record<string, unknown> }[] };
  try {
    cfg = JSON.parse(text) as typeof cfg;
  } catch (e) {
    throw new BadInput(`${file}: not JSON: ${(e as Error).message}`);
  }
  for (const d of drivers) {
    const i = cfg.iommus?.find((x) => x.name === d.iommu);
    if (!i) throw new BadInput(`--driver ${d.iommu}=${d.source}: ${file} has no IOMMU named '${d.iommu}' (have: ${(cfg.iommus ?? []).map((x) => x.name).join(', ')})`);
    i.driver = { ...(i.driver ?? {}), source: resolvePath(d.source) };
  }
  return JSON.stringify(cfg, null, 2);
}

/** Run the CLI; resolves with the exit code. */
export async function bringup(argv: string[], deps: CliDeps): Promise<number> {
  if (argv[0] === 'merge') {
    return mergeShards(argv.slice(1), deps, { ok: EXIT_OK, failed: EXIT_FAILED, badInput: EXIT_BAD_INPUT }, (session, s, req) => runOne(session, deps, s, req));
  }
  let opts: Options;
  const scripts: { file: string; source: string }[] = [];
  let configText: string;
  try {
    opts = parseOptions(argv);
    for (const [flag, file] of [['--out', opts.out], ['--emit-types', opts.emitTypes]] as const) {
      if (file !== undefined && !(await deps.isDirectory(dirname(file)))) throw new BadInput(`${flag} ${file}: the folder ${dirname(file)} does not exist`);
    }
    configText = withDrivers(await readInput(deps, opts.soc, 'SoC config'), opts.soc, opts.drivers, deps.resolvePath ?? ((p) => p));
    for (const file of opts.scripts) scripts.push({ file, source: await readInput(deps, file, 'script') });
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    deps.stderr(`bringup: ${e.message}\n${USAGE}\n`);
    return EXIT_BAD_INPUT;
  }

  const session = await deps.createSession();
  try {
    // Syntax is checked before anything runs, so a typo is bad input (exit 2), not a failure. The
    // worker checks it: it loads the TypeScript transpiler anyway, and this process then need not.
    for (const s of scripts) {
      const err = await session.checkScript(s.source, s.file);
      if (err) {
        deps.stderr(`bringup: ${err.file}:${err.line ?? 1}:${err.column ?? 1}: syntax error: ${err.message}\n${USAGE}\n`);
        return EXIT_BAD_INPUT;
      }
    }
    const loaded = await session.loadConfig(configText, opts.soc);
    if (!loaded.ok) {
      for (const err of loaded.errors) deps.stderr(`${err.file}${err.line !== undefined ? `:${err.line}` : ''}${err.column !== undefined ? `:${err.column}` : ''}: ${err.path || '(root)'}: ${err.message}\n`);
      return EXIT_BAD_INPUT;
    }
    if (opts.emitTypes) await deps.writeFile(opts.emitTypes, await session.scriptTypes());

    const runs: FileRun[] = [];
    for (const s of scripts) runs.push({ file: s.file, result: await runOne(session, deps, s, opts) });
    if (opts.shard) {
      // A shard's own test verdicts mean nothing (its explorations saw a part): the merge reports.
      const text = shardReport({ shard: opts.shard, config: { file: opts.soc, text: configText }, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) }, runs.map((r, i) => ({ ...scripts[i]!, result: r.result })));
      await deps.writeFile(opts.out ?? defaultShardFile(opts.shard), text);
      return runs.every((r) => r.result.error === undefined) ? EXIT_OK : EXIT_FAILED;
    }
    if (runs.length > 0) {
      const text = report(opts.reporter, runs);
      if (opts.out) await deps.writeFile(opts.out, text);
      else deps.stdout(text);
    }
    return runs.every((r) => r.result.ok) ? EXIT_OK : EXIT_FAILED;
  } finally {
    await session.dispose();
  }
}

/**
 * Run one script; its console output streams to stderr so stdout carries only the report. Runs
 * are sequential and this CLI is the host's only client, so all output meanwhile is this run's.
 */
async function runOne(session: CliSession, deps: CliDeps, s: { file: string; source: string }, opts: Pick<ScriptRunRequest, 'seed' | 'timeoutMs' | 'exploreWorkers' | 'shard' | 'exploreAnswers' | 'kernel'>): Promise<ScriptRunResult> {
  const off = session.onEvent((e) => {
    if (e.type === 'output') deps.stderr(`[${s.file}] ${e.text}\n`);
    if (e.type === 'explore-progress' && e.done && e.schedules && e.schedules.length > 0) deps.stderr(exploreReport(s.file, e.runs, e.schedules));
  });
  try {
    const req: ScriptRunRequest = { source: s.source, fileName: s.file };
    if (opts.seed !== undefined) req.seed = opts.seed;
    if (opts.timeoutMs !== undefined) req.timeoutMs = opts.timeoutMs;
    if (opts.exploreWorkers !== undefined) req.exploreWorkers = opts.exploreWorkers;
    if (opts.shard) req.shard = opts.shard;
    if (opts.exploreAnswers) req.exploreAnswers = opts.exploreAnswers;
    if (opts.kernel !== undefined) req.kernel = opts.kernel;
    return await session.runScript(req);
  } finally {
    off();
  }
}

/** Failing schedules of an exploration, each as a line to paste back into explore.replay. */
export function exploreReport(file: string, runs: number, schedules: { schedule: number[]; error?: string }[]): string {
  const n = schedules.length;
  const lines = [`[${file}] explore: ${n} failing schedule${n > 1 ? 's' : ''} in ${runs} run${runs > 1 ? 's' : ''}`];
  for (const f of schedules) {
    const list = `[${f.schedule.join(',')}]`;
    lines.push(`  schedule: ${list}${f.error ? `  ${f.error.split('\n')[0]}` : ''}`, `    replay: explore.replay(${list}, spec)`);
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  if (process.argv[2] === 'import-dt') {
    const { importDtMain } = await import('./import-dt');
    process.exit(await importDtMain(process.argv.slice(3)));
  }
  const { SessionHost } = await import('../host/host');
  const code = await bringup(process.argv.slice(2), {
    createSession: () => SessionHost.create(),
    readFile: (p) => readFile(p, 'utf8'),
    resolvePath: (p) => resolve(p),
    writeFile: (p, text) => writeFile(p, text, 'utf8'),
    isDirectory: (p) => stat(p).then((st) => st.isDirectory(), () => false),
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  });
  process.exit(code);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`bringup: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(EXIT_FAILED);
  });
}
