/**
 * Headless CLI: run driver test scripts against a SoC config and report (script-api.md "CLI").
 *
 *   npm run bringup -- --soc <config.soc.json> [--seed N] [--reporter tap|junit|pretty]
 *                      [--out FILE] [--emit-types FILE] [--timeout MS] [--explore-workers N]
 *                      script.ts [more.ts ...]
 *
 * Exit 0: every test passed. 1: a test failed or a script was stopped. 2: bad input (option,
 * missing file, invalid config, script syntax), with a message naming the file and line or field.
 * Scripts run through the session host, in the sim worker under its watchdog.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { LoadConfigResult, ScriptRunRequest, ScriptRunResult, SessionEvent } from '../../shared/session-api';
import { REPORTERS, report, type FileRun, type ReporterName } from '../../sim/script/reporters';
import { transpileScript } from '../../sim/script/transpile';

/** What the CLI needs of the session host. */
export interface CliSession {
  loadConfig(text: string, file: string): Promise<LoadConfigResult>;
  runScript(req: ScriptRunRequest): Promise<ScriptRunResult>;
  scriptTypes(): Promise<string>;
  onEvent(listener: (e: SessionEvent) => void): () => void;
  dispose(): Promise<void>;
}

export interface CliDeps {
  createSession(): Promise<CliSession>;
  readFile(path: string): Promise<string>;
  writeFile(path: string, text: string): Promise<void>;
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
                          [--driver IOMMU=FILE.c ...] script.ts [more.ts ...]
  --driver IOMMU=FILE.c: run your C driver for that IOMMU (the config's "driver" source, replaced)
  --explore-workers N: workers per exploration unless its spec says (default: one per core once an
                       exploration runs for a second); the results are the same whatever N`;

interface Options {
  soc: string;
  seed?: number;
  reporter: ReporterName;
  out?: string;
  emitTypes?: string;
  timeoutMs?: number;
  exploreWorkers?: number;
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
  if (parsed.positionals.length === 0 && !v['emit-types']) throw new BadInput('no script given');
  return {
    soc: v.soc,
    seed: int('seed', v.seed, 0, 0xffffffff),
    reporter: reporter as ReporterName,
    out: v.out,
    emitTypes: v['emit-types'],
    timeoutMs: int('timeout', v.timeout, 1, 3_600_000),
    exploreWorkers: int('explore-workers', v['explore-workers'], 1, 256),
    drivers: (v.driver ?? []).map((d) => {
      const m = /^([^=]+)=(.+)$/.exec(d);
      if (!m) throw new BadInput(`--driver must be IOMMU=FILE.c, got '${d}'`);
      return { iommu: m[1]!, source: m[2]! };
    }),
    scripts: parsed.positionals,
  };
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
  let opts: Options;
  const scripts: { file: string; source: string }[] = [];
  let configText: string;
  try {
    opts = parseOptions(argv);
    configText = withDrivers(await readInput(deps, opts.soc, 'SoC config'), opts.soc, opts.drivers, deps.resolvePath ?? ((p) => p));
    for (const file of opts.scripts) scripts.push({ file, source: await readInput(deps, file, 'script') });
    // Syntax is checked here, before anything runs, so a typo is bad input (exit 2), not a failure.
    for (const s of scripts) {
      const tr = transpileScript(s.source, s.file);
      if (!tr.ok) throw new BadInput(`${tr.error.file}:${tr.error.line ?? 1}:${tr.error.column ?? 1}: syntax error: ${tr.error.message}`);
    }
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    deps.stderr(`bringup: ${e.message}\n${USAGE}\n`);
    return EXIT_BAD_INPUT;
  }

  const session = await deps.createSession();
  try {
    const loaded = await session.loadConfig(configText, opts.soc);
    if (!loaded.ok) {
      for (const err of loaded.errors) deps.stderr(`${err.file}${err.line !== undefined ? `:${err.line}` : ''}${err.column !== undefined ? `:${err.column}` : ''}: ${err.path || '(root)'}: ${err.message}\n`);
      return EXIT_BAD_INPUT;
    }
    if (opts.emitTypes) await deps.writeFile(opts.emitTypes, await session.scriptTypes());

    const runs: FileRun[] = [];
    for (const s of scripts) runs.push({ file: s.file, result: await runOne(session, deps, s, opts) });
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
async function runOne(session: CliSession, deps: CliDeps, s: { file: string; source: string }, opts: Options): Promise<ScriptRunResult> {
  const off = session.onEvent((e) => {
    if (e.type === 'output') deps.stderr(`[${s.file}] ${e.text}\n`);
    if (e.type === 'explore-progress' && e.done && e.schedules && e.schedules.length > 0) deps.stderr(exploreReport(s.file, e.runs, e.schedules));
  });
  try {
    const req: ScriptRunRequest = { source: s.source, fileName: s.file };
    if (opts.seed !== undefined) req.seed = opts.seed;
    if (opts.timeoutMs !== undefined) req.timeoutMs = opts.timeoutMs;
    if (opts.exploreWorkers !== undefined) req.exploreWorkers = opts.exploreWorkers;
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
  const { SessionHost } = await import('../host/host');
  const code = await bringup(process.argv.slice(2), {
    createSession: () => SessionHost.create(),
    readFile: (p) => readFile(p, 'utf8'),
    resolvePath: (p) => resolve(p),
    writeFile: (p, text) => writeFile(p, text, 'utf8'),
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
