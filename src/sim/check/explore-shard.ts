/**
 * Sharding one exploration across processes or machines (`bringup --shard K/N`, then `bringup merge`).
 *
 * The schedule space is cut into pieces (explore-parallel.ts) by a split every shard makes the same
 * way, since the engine is deterministic: exhaustive mode runs the first run of a piece and gives
 * away every open alternative on its path as a new piece, breadth first, until there are
 * SPLIT_FACTOR pieces per shard (or nothing left to split); random mode cuts the run indices into
 * equal ranges. Shard K explores the pieces whose number is K modulo N, each the way a helper worker
 * does, and reports their results. The merge walks all pieces from the root with mergePieces, which
 * puts every run back where the sequential search has it, so the merged result is the unsharded
 * one: the same runs, failures, schedules and pruned count.
 *
 * A shard explores each explore call of the script; what it hands back to the script is only its
 * own part, so the script's own verdicts in a shard mean nothing: the merge reruns the script with
 * every explore call answered by its merged result, and that run is the report.
 */
import { DfsPolicy } from './explore-dfs';
import { mergePieces, PieceExplorer, type ExploreSettings, type PieceResult, type Region } from './explore-parallel';
import type { ExploreResult, RunOnce } from './explore';
import type { ExploreCallId } from './explore-parallel';

/** Pieces per shard the exhaustive split aims for: smaller pieces even out shards of uneven subtrees. */
const SPLIT_FACTOR = 8;

export interface ShardSpec {
  index: number;
  count: number;
}

/** One piece of the split: where it is, which pieces its gifts became, and (in its shard) its result. */
export interface ShardPiece {
  id: number;
  region: Region;
  /** Gifts given away right after the piece's first run (the split), as [gift number, piece]. */
  gifts: [number, number][];
  result?: PieceResult;
}

/** What one shard reports for one explore call. */
export interface ShardCall {
  call: ExploreCallId;
  /** The state and settings at the call: every shard must have reached the same. */
  fingerprint: string;
  settings: { mode: ExploreSettings['mode']; bound: string; maxFailures: number; runs: string; seed: number };
  pieces: ShardPiece[];
}

/** The deterministic split: every shard computes the same pieces. */
async function split(runOnce: RunOnce, s: ExploreSettings, shards: number): Promise<ShardPiece[]> {
  if (s.mode === 'random') {
    const n = Math.max(1, Math.min(shards, s.runs));
    return Array.from({ length: n }, (_, i) => ({ id: i, region: { from: Math.floor((s.runs * i) / n), to: Math.floor((s.runs * (i + 1)) / n) }, gifts: [] }));
  }
  const target = shards * SPLIT_FACTOR;
  const pieces: ShardPiece[] = [{ id: 0, region: { prefix: [] }, gifts: [] }];
  for (let next = 0; next < pieces.length && pieces.length < target && shards > 1; next++) {
    const p = pieces[next]!;
    const prefix = (p.region as { prefix: number[] }).prefix;
    const dfs = new DfsPolicy(s.bound, true, prefix);
    await runOnce(dfs);
    for (;;) {
      if (pieces.length >= target) break;
      const g = dfs.donate();
      if (!g) break;
      const id = pieces.length;
      pieces.push({ id, region: { prefix: g.prefix }, gifts: [] });
      p.gifts.push([g.gift, id]);
    }
  }
  return pieces;
}

/**
 * Explore this shard's pieces of one call. Returns the shard's report of the call, and the part of
 * the result it found (for the script in the shard, whose verdicts the merge replaces).
 */
export async function exploreShard(runOnce: RunOnce, s: ExploreSettings, fingerprint: string, call: ExploreCallId, shard: ShardSpec, pause: () => Promise<void>): Promise<{ report: ShardCall; partial: ExploreResult }> {
  const pieces = await split(runOnce, s, shard.count);
  const explorer = new PieceExplorer(runOnce, s, pause);
  const partial: ExploreResult = { runs: 0, failures: [], complete: false, pruned: 0 };
  for (const p of pieces) {
    if (p.id % shard.count !== shard.index) continue;
    p.result = await explorer.explore(p.region, p.gifts.length);
    for (const item of p.result.items) {
      if (!('seg' in item)) continue;
      partial.runs += item.seg.runs;
      partial.pruned += item.seg.pruned.reduce((n, [, k]) => n + k, 0);
      partial.failures.push(...item.seg.failures.map((f) => f.failure));
    }
  }
  const settings = { mode: s.mode, bound: String(s.bound), maxFailures: s.maxFailures, runs: String(s.runs), seed: s.seed };
  return { report: { call, fingerprint, settings, pieces }, partial };
}

/** Merge the shards' reports of one call into the unsharded result. */
export function mergeShardCall(reports: readonly ShardCall[]): ExploreResult {
  const first = reports[0];
  if (!first) throw new Error('merge: no shard reports');
  const name = `explore call ${first.call.ordinal} of ${first.call.test < 0 ? 'the script load' : `test ${first.call.test}`}`;
  const pieces = new Map<number, { region: Region; result?: PieceResult; gifts: Map<number, number> }>();
  for (const r of reports) {
    if (r.fingerprint !== first.fingerprint) throw new Error(`merge: the shards reached ${name} in different states (${r.fingerprint} vs ${first.fingerprint}): the script is not deterministic, or its control flow depends on explore results`);
    for (const p of r.pieces) {
      let m = pieces.get(p.id);
      if (!m) pieces.set(p.id, (m = { region: p.region, gifts: new Map(p.gifts) }));
      if (p.result) m.result = p.result;
    }
  }
  const missing = [...pieces.entries()].filter(([, p]) => !p.result).map(([id]) => id);
  const s = first.settings;
  const settings: ExploreSettings = { mode: s.mode, bound: Number(s.bound), maxFailures: s.maxFailures, runs: Number(s.runs), seed: s.seed };
  const m = mergePieces(pieces, settings);
  if (!m.final) throw new Error(`merge: ${name}: no shard report has piece${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (a shard is missing)`);
  return m.result;
}
