import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Op } from '../core/coop';
import type { Finding } from '../core/findings';
import type { Executor } from '../core/scheduler';
import { explore, serveExplore, type ExploreSpec, type ExploreTarget } from './explore';
import type { ExploreHelpers, FromHelper, HelperChannel, ToHelper } from './explore-parallel';

/** A word memory whose accesses are preemption points; threads are host async functions. */
class Toy implements ExploreTarget {
  mem = new Map<number, number>();
  exec: Executor | null = null;
  log: Finding[] = [];
  readonly seed = 7;
  checkpoint(): { restore(): void } {
    const saved = new Map(this.mem);
    const log = this.log.slice();
    return { restore: () => ((this.mem = new Map(saved)), (this.log = log.slice())) };
  }
  setExecutor(e: Executor | null): void {
    this.exec = e;
  }
  findings(): Finding[] {
    return this.log.slice();
  }
  truncateFindings(n: number): void {
    this.log.length = n;
  }
  fingerprint(): string {
    return JSON.stringify([...this.mem]);
  }
  run<T>(op: Op<T>): Promise<T> {
    return this.exec!(op);
  }
  *access(op: 'r' | 'w', pa: number, v: number): Op<void> {
    yield { kind: op === 'r' ? 'mem-read' : 'mem-write', pa };
    if (op === 'w') this.mem.set(pa, (this.mem.get(pa) ?? 0) * 3 + v);
    else this.mem.set(100 + v, (this.mem.get(100 + v) ?? 0) * 5 + (this.mem.get(pa) ?? 0));
  }
}

type Prog = { op: 'r' | 'w'; addr: number }[][];

/** The program's threads over a toy; a run fails when its final memory hashes to 0 mod 3. */
function specOf(toy: Toy, prog: Prog): ExploreSpec {
  return {
    threads: prog.map((instrs, t) => async () => {
      for (const i of instrs) await toy.run(toy.access(i.op, i.addr * 8, t + 1));
    }),
    check: () => {
      let h = 0;
      for (const [k, v] of [...toy.mem].sort((a, b) => a[0] - b[0])) h = (h * 31 + k * 7 + v) % 1_000_003;
      if (h % 3 === 0) throw new Error(`hash ${h}`);
    },
  };
}

/**
 * In-process helpers: each a toy of its own running the same program, messages delivered on later
 * macrotasks as between threads. Counts the pieces helpers get (work actually shared) and live helpers.
 */
function fakeHelpers(specFor: (toy: Toy) => ExploreSpec, count: number, opts: { fingerprint?: string } = {}) {
  const stats = { pieces: 0, live: 0, started: 0 };
  const helpers: ExploreHelpers = {
    count,
    afterMs: 0,
    start(onMessage, onExit) {
      const toy = new Toy();
      if (opts.fingerprint) toy.fingerprint = () => opts.fingerprint!;
      const ac = new AbortController();
      let alive = true;
      let listener: ((m: ToHelper) => void) | null = null;
      const channel: HelperChannel = {
        post: (m: FromHelper) => {
          setImmediate(() => alive && onMessage(m));
        },
        listen: (on) => (listener = on),
      };
      stats.live++;
      stats.started++;
      void serveExplore(toy, specFor(toy), channel, { signal: ac.signal, yieldMs: 0 });
      return {
        post: (m) => {
          if (m.type === 'explore') stats.pieces++;
          setImmediate(() => alive && listener?.(m));
        },
        terminate: () => {
          if (!alive) return;
          alive = false;
          stats.live--;
          ac.abort();
          void onExit;
        },
      };
    },
  };
  return { helpers, stats };
}

const progArb = fc.array(fc.array(fc.record({ op: fc.constantFrom<'r' | 'w'>('r', 'w'), addr: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 3 });
const optsArb = fc.record({
  mode: fc.constantFrom<'exhaustive' | 'random'>('exhaustive', 'random'),
  preemptionBound: fc.constantFrom(0, 1, 2, Infinity),
  maxFailures: fc.constantFrom(0, 1, 3, 1000),
  runs: fc.constantFrom(undefined, 1, 7, 40),
});

describe('explore over helpers', () => {
  it('gives the same result as exploring alone, whatever the helper count (random programs, all cuts)', async () => {
    let pieces = 0;
    await fc.assert(
      fc.asyncProperty(progArb, optsArb, fc.integer({ min: 1, max: 3 }), async (prog, o, helpers) => {
        const spec = (toy: Toy): ExploreSpec => ({ ...specOf(toy, prog), ...o, ...(o.runs === undefined ? {} : { runs: o.runs }) });
        const alone = new Toy();
        const expected = await explore(alone, spec(alone));
        const toy = new Toy();
        const fake = fakeHelpers(spec, helpers);
        const got = await explore(toy, spec(toy), { helpers: fake.helpers, yieldMs: 0 });
        expect(got).toEqual(expected);
        expect(fake.stats.live).toBe(0);
        pieces += fake.stats.pieces;
      }),
      { numRuns: 150 },
    );
    // The property says nothing if no work was ever shared.
    expect(pieces).toBeGreaterThan(50);
  });

  it('a schedule space big enough to share: same runs, failures and schedules with 1, 2 and 3 workers', async () => {
    const prog: Prog = [0, 1, 2].map((t) => [0, 1, 2, t].map((a, i) => ({ op: i % 2 ? 'r' : 'w', addr: a })));
    const results: string[] = [];
    for (const workers of [1, 2, 3]) {
      const spec = (toy: Toy): ExploreSpec => ({ ...specOf(toy, prog), preemptionBound: 2, maxFailures: 1000 });
      const toy = new Toy();
      const fake = fakeHelpers(spec, workers - 1);
      const r = await explore(toy, spec(toy), { helpers: fake.helpers, yieldMs: 0 });
      expect(r.complete).toBe(true);
      if (workers > 1) expect(fake.stats.pieces).toBeGreaterThan(0);
      results.push(JSON.stringify(r));
    }
    expect(JSON.parse(results[0]!).runs).toBeGreaterThan(100);
    expect(results[1]).toBe(results[0]);
    expect(results[2]).toBe(results[0]);
  });

  it('stopping the exploration terminates the helpers', async () => {
    // Writes to one word: 15! / 5!^3 schedules, none equivalent.
    const prog: Prog = [0, 1, 2].map(() => [0, 0, 0, 0, 0].map((a) => ({ op: 'w', addr: a })));
    const spec = (toy: Toy): ExploreSpec => ({ ...specOf(toy, prog), preemptionBound: Infinity, maxFailures: 1e9 });
    const toy = new Toy();
    const fake = fakeHelpers(spec, 2);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const p = explore(toy, spec(toy), { helpers: fake.helpers, signal: ac.signal });
    await expect(p).rejects.toThrow(/stopped/);
    expect(fake.stats.started).toBe(2);
    expect(fake.stats.live).toBe(0);
  });

  it('a helper that reaches the call in another state fails the exploration', async () => {
    const prog: Prog = [[{ op: 'w', addr: 0 }], [{ op: 'w', addr: 0 }]];
    const spec = (toy: Toy): ExploreSpec => ({ ...specOf(toy, prog), mode: 'random', runs: 100_000 });
    const toy = new Toy();
    const fake = fakeHelpers(spec, 1, { fingerprint: 'elsewhere' });
    await expect(explore(toy, spec(toy), { helpers: fake.helpers })).rejects.toThrow(/not deterministic/);
    expect(fake.stats.live).toBe(0);
  });
});
