/**
 * Sharded bring-up runs (README "Sharding explorations"): `bringup --shard K/N ...` explores shard K
 * (0-based) of every exploration and writes a shard report; `bringup merge shard-*.json` merges the N
 * reports and reruns the scripts with every explore call answered by its merged result, so the
 * report and exit code are the unsharded run's (see src/sim/check/explore-shard.ts).
 */
import { parseArgs } from 'node:util';
import type { ScriptRunResult } from '../../shared/session-api';
import { mergeShardCall, type ShardCall } from '../../sim/check/explore-shard';
import type { ExploreResult } from '../../sim/check/explore';
import { REPORTERS, report, type FileRun, type ReporterName } from '../../sim/script/reporters';
import type { CliDeps, CliSession } from './bringup';

export const SHARD_FORMAT = 'soc-console-shard/1';

export interface ShardReport {
  format: typeof SHARD_FORMAT;
  shard: { index: number; count: number };
  config: { file: string; text: string };
  seed?: number;
  timeoutMs?: number;
  scripts: { file: string; source: string; calls: ShardCall[] }[];
}

/** `K/N` with 0 <= K < N. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || count > 4096 || index >= count) throw new Error(`--shard must be K/N with 0 <= K < N <= 4096 (K is 0-based, as JOB_COMPLETION_INDEX), got '${text}'`);
  return { index, count };
}

export const defaultShardFile = (s: { index: number; count: number }): string => `shard-${s.index}-of-${s.count}.json`;

export function shardReport(opts: { shard: { index: number; count: number }; config: { file: string; text: string }; seed?: number; timeoutMs?: number }, runs: { file: string; source: string; result: Pick<ScriptRunResult, 'shardCalls'> }[]): string {
  const r: ShardReport = {
    format: SHARD_FORMAT,
    shard: opts.shard,
    config: opts.config,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    scripts: runs.map((x) => ({ file: x.file, source: x.source, calls: x.result.shardCalls ?? [] })),
  };
  return JSON.stringify(r);
}

class MergeInput extends Error {}

function readReport(file: string, text: string): ShardReport {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new MergeInput(`${file}: not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const o = r as Partial<ShardReport>;
  if (typeof o !== 'object' || o === null || o.format !== SHARD_FORMAT) throw new MergeInput(`${file}: not a shard report (format must be '${SHARD_FORMAT}')`);
  if (!o.shard || !Number.isInteger(o.shard.index) || !Number.isInteger(o.shard.count) || !o.config || !Array.isArray(o.scripts)) throw new MergeInput(`${file}: the shard report is missing shard, config or scripts`);
  return o as ShardReport;
}

/** The same run in every report: config, seed, timeout and scripts. */
function checkSameRun(reports: { file: string; r: ShardReport }[]): void {
  const [a, ...rest] = reports;
  const key = (r: ShardReport): string => JSON.stringify([r.config, r.seed ?? null, r.timeoutMs ?? null, r.scripts.map((s) => [s.file, s.source])]);
  for (const b of rest) if (key(b.r) !== key(a!.r)) throw new MergeInput(`${b.file}: not a shard of the same run as ${a!.file} (config, seed, timeout or scripts differ)`);
  const n = a!.r.shard.count;
  const seen = new Map<number, string>();
  for (const { file, r } of reports) {
    if (r.shard.count !== n) throw new MergeInput(`${file}: shard of ${r.shard.count}, ${a!.file} is a shard of ${n}`);
    const dup = seen.get(r.shard.index);
    if (dup) throw new MergeInput(`${file}: shard ${r.shard.index}/${n} again (also ${dup})`);
    seen.set(r.shard.index, file);
  }
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0) throw new MergeInput(`missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')}`);
}

/** Per script, the merged result of every explore call, in call order. */
export function mergeAnswers(reports: readonly ShardReport[], script: number): { call: ShardCall['call']; result: ExploreResult }[] {
  const byCall = new Map<string, ShardCall[]>();
  for (const r of reports) {
    for (const c of r.scripts[script]!.calls) {
      const k = `${c.call.test}:${c.call.ordinal}`;
      const list = byCall.get(k) ?? [];
      list.push(c);
      byCall.set(k, list);
    }
  }
  return [...byCall.values()].map((calls) => ({ call: calls[0]!.call, result: mergeShardCall(calls) }));
}

const MERGE_USAGE = `usage: npm run bringup -- merge [--reporter tap|junit|pretty] [--out FILE] shard-0-of-N.json ... (all N shard reports)`;

/**
 * `bringup merge`: read the reports, rerun each script once with its merged explore results, and
 * report as the unsharded run. Exit codes as bringup's.
 */
export async function mergeShards(argv: string[], deps: CliDeps, exits: { ok: number; failed: number; badInput: number }, onRun: (session: CliSession, s: { file: string; source: string }, req: { seed?: number; timeoutMs?: number; exploreAnswers: ReturnType<typeof mergeAnswers> }) => Promise<ScriptRunResult>): Promise<number> {
  let reports: { file: string; r: ShardReport }[];
  let reporter: ReporterName;
  let out: string | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { reporter: { type: 'string' }, out: { type: 'string' } } });
    } catch (e) {
      throw new MergeInput(e instanceof Error ? e.message : String(e));
    }
    reporter = (parsed.values.reporter ?? 'pretty') as ReporterName;
    if (!(REPORTERS as readonly string[]).includes(reporter)) throw new MergeInput(`--reporter must be one of ${REPORTERS.join(', ')}, got '${reporter}'`);
    out = parsed.values.out;
    if (parsed.positionals.length === 0) throw new MergeInput('no shard reports given');
    reports = [];
    for (const file of parsed.positionals) {
      let text: string;
      try {
        text = await deps.readFile(file);
      } catch (e) {
        throw new MergeInput(`${file}: cannot read the shard report: ${e instanceof Error ? e.message : String(e)}`);
      }
      reports.push({ file, r: readReport(file, text) });
    }
    checkSameRun(reports);
  } catch (e) {
    if (!(e instanceof MergeInput)) throw e;
    deps.stderr(`bringup merge: ${e.message}\n${MERGE_USAGE}\n`);
    return exits.badInput;
  }
  const first = reports[0]!.r;
  const session = await deps.createSession();
  try {
    const loaded = await session.loadConfig(first.config.text, first.config.file);
    if (!loaded.ok) {
      for (const err of loaded.errors) deps.stderr(`${err.file}${err.line !== undefined ? `:${err.line}` : ''}: ${err.path || '(root)'}: ${err.message}\n`);
      return exits.badInput;
    }
    const runs: FileRun[] = [];
    for (let i = 0; i < first.scripts.length; i++) {
      const s = first.scripts[i]!;
      let answers: ReturnType<typeof mergeAnswers>;
      try {
        answers = mergeAnswers(reports.map((x) => x.r), i);
      } catch (e) {
        deps.stderr(`bringup merge: ${s.file}: ${e instanceof Error ? e.message : String(e)}\n`);
        return exits.failed;
      }
      const req = { exploreAnswers: answers, ...(first.seed !== undefined ? { seed: first.seed } : {}), ...(first.timeoutMs !== undefined ? { timeoutMs: first.timeoutMs } : {}) };
      runs.push({ file: s.file, result: await onRun(session, s, req) });
    }
    const text = report(reporter, runs);
    if (out) await deps.writeFile(out, text);
    else deps.stdout(text);
    return runs.every((r) => r.result.ok) ? exits.ok : exits.failed;
  } finally {
    await session.dispose();
  }
}
