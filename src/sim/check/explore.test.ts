import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Op, PreemptPoint } from '../core/coop';
import type { Finding } from '../core/findings';
import { Scheduler, SchedulePolicyReplay, type Executor } from '../core/scheduler';
import { SpinLock } from '../kernel/spinlock';
import { DfsPolicy, explore, independent, replay, replayPrefix, type ExploreTarget } from './explore';

/** A toy engine: word memory, ops that yield before each access, threads as host async functions. */
class Toy implements ExploreTarget {
  mem = new Map<number, number>();
  exec: Executor | null = null;
  log: Finding[] = [];
  readonly seed = 7;

  checkpoint(): { restore(): void } {
    const saved = new Map(this.mem);
    const log = this.log.slice();
    return {
      restore: () => {
        this.mem = new Map(saved);
        this.log = log.slice();
      },
    };
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
  run<T>(op: Op<T>): Promise<T> {
    if (!this.exec) throw new Error('no executor');
    return this.exec(op);
  }
  *read(pa: number): Op<number> {
    yield { kind: 'mem-read', pa };
    return this.mem.get(pa) ?? 0;
  }
  *write(pa: number, v: number): Op<void> {
    yield { kind: 'mem-write', pa };
    this.mem.set(pa, v);
  }
  /** Non-atomic increment: read, then write. */
  *inc(pa: number): Op<void> {
    const v = yield* this.read(pa);
    yield* this.write(pa, v + 1);
  }
  state(): string {
    return JSON.stringify([...this.mem].sort((a, b) => a[0] - b[0]));
  }
}

type Instr = { op: 'r' | 'w'; addr: number };

/** Threads from a program: each instruction one op (writes store the thread's id). */
function threadsOf(toy: Toy, prog: Instr[][], sink: number[][]): (() => Promise<void>)[] {
  return prog.map((instrs, t) => async () => {
    for (const i of instrs) {
      if (i.op === 'r') sink[t]!.push(await toy.run(toy.read(i.addr)));
      else await toy.run(toy.write(i.addr, t + 1));
    }
  });
}

/** Final states (memory and every value read) of every run of a DFS, and the run count. */
async function enumerate(prog: Instr[][], bound: number, sleepSets: boolean): Promise<{ states: Set<string>; runs: number; maxPreemptions: number }> {
  const toy = new Toy();
  const dfs = new DfsPolicy(bound, sleepSets);
  const states = new Set<string>();
  let runs = 0;
  let maxPreemptions = 0;
  for (;;) {
    toy.mem = new Map();
    const reads = prog.map(() => [] as number[]);
    const s = new Scheduler(dfs);
    toy.exec = s.submit;
    const out = await s.run(threadsOf(toy, prog, reads));
    expect(out.error).toBeUndefined();
    if (!dfs.redundant) {
      runs++;
      states.add(toy.state() + JSON.stringify(reads));
      maxPreemptions = Math.max(maxPreemptions, out.preemptions);
    }
    if (!dfs.backtrack()) break;
  }
  return { states, runs, maxPreemptions };
}

const binom = (n: number, k: number): number => (k === 0 ? 1 : (binom(n - 1, k - 1) * n) / k);

describe('scheduler', () => {
  it('runs threads to completion and attributes each call to its thread', async () => {
    const toy = new Toy();
    const s = new Scheduler(new SchedulePolicyReplay([]), { recordSteps: true });
    toy.exec = s.submit;
    const out = await s.run([
      async () => {
        await toy.run(toy.write(0, 1));
        await toy.run(toy.write(8, 1));
      },
      async () => {
        await Promise.resolve();
        await toy.run(toy.write(16, 2));
      },
    ]);
    expect(out.error).toBeUndefined();
    expect(out.steps.map((st) => [st.thread, st.pa])).toEqual([
      [0, 0],
      [0, 8],
      [1, 16],
    ]);
    expect(toy.state()).toBe('[[0,1],[8,1],[16,2]]');
  });

  it('a given schedule is followed, and the same schedule gives the same run', async () => {
    const run = async (): Promise<{ state: string; steps: string }> => {
      const toy = new Toy();
      const s = new Scheduler(new SchedulePolicyReplay([1, 0, 1]), { recordSteps: true });
      toy.exec = s.submit;
      const out = await s.run([0, 1].map((t) => async () => toy.run(toy.inc(0)).then(() => toy.run(toy.write(8 + 8 * t, 1)))));
      return { state: toy.state(), steps: JSON.stringify(out.steps) };
    };
    const a = await run();
    expect(await run()).toEqual(a);
    expect(JSON.parse(a.steps)[0].thread).toBe(1);
  });

  it('a thread at a held spinlock does not run; the holder does', async () => {
    const toy = new Toy();
    const lock = new SpinLock('l');
    const s = new Scheduler(new SchedulePolicyReplay([0, 1, 1, 1]), { recordSteps: true });
    toy.exec = s.submit;
    function* crit(): Op<void> {
      yield* lock.lock();
      yield* toy.inc(0);
      lock.unlock();
    }
    const out = await s.run([0, 1].map(() => async () => toy.run(crit())));
    expect(out.error).toBeUndefined();
    expect(toy.mem.get(0)).toBe(2);
  });

  it('reports a thread that waits on something else', async () => {
    const toy = new Toy();
    const s = new Scheduler(new SchedulePolicyReplay([]));
    toy.exec = s.submit;
    const out = await s.run([async () => new Promise(() => {})]);
    expect(out.error).toMatch(/thread 0 is waiting on something/);
  });

  it('a thread error is the thread\'s, the others run on', async () => {
    const toy = new Toy();
    const s = new Scheduler(new SchedulePolicyReplay([]));
    toy.exec = s.submit;
    const out = await s.run([
      async () => {
        await toy.run(toy.write(0, 1));
        throw new Error('boom');
      },
      async () => toy.run(toy.write(8, 1)),
    ]);
    expect(out.errors).toEqual(['boom', undefined]);
    expect(toy.mem.get(8)).toBe(1);
  });
});

describe('exhaustive search', () => {
  it('enumerates all C(2n, n) interleavings of dependent steps without a bound', async () => {
    const prog: Instr[][] = [0, 1].map(() => [0, 1, 2].map(() => ({ op: 'w' as const, addr: 0 })));
    const r = await enumerate(prog, Infinity, true);
    expect(r.runs).toBe(binom(6, 3));
  });

  it('independent steps (different words) are run in one order only', async () => {
    const prog: Instr[][] = [0, 1].map((t) => [0, 1, 2].map((i) => ({ op: 'w' as const, addr: 64 * t + 8 * i })));
    expect((await enumerate(prog, Infinity, false)).runs).toBe(binom(6, 3));
    expect((await enumerate(prog, Infinity, true)).runs).toBe(1);
  });

  it('respects the preemption bound', async () => {
    const prog: Instr[][] = [0, 1, 2].map(() => [0, 1, 2].map(() => ({ op: 'w' as const, addr: 0 })));
    for (const bound of [0, 1, 2]) {
      const r = await enumerate(prog, bound, true);
      expect(r.maxPreemptions).toBeLessThanOrEqual(bound);
    }
    // Bound 0: thread 0 runs to its end, then either of the others may go first.
    expect((await enumerate(prog, 0, true)).runs).toBe(2);
  });

  it('sleep sets lose no final state (random small programs; with a bound they are off)', async () => {
    const instr = fc.record({ op: fc.constantFrom<'r' | 'w'>('r', 'w'), addr: fc.constantFrom(0, 8, 16) });
    const prog = fc.array(fc.array(instr, { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(prog, fc.constantFrom(1, 2, Infinity), async (p, bound) => {
        const full = await enumerate(p, bound, false);
        const pruned = await enumerate(p, bound, true);
        expect([...pruned.states].sort()).toEqual([...full.states].sort());
        expect(pruned.runs).toBeLessThanOrEqual(full.runs);
      }),
      { numRuns: 60 },
    );
  });

  it('independence: reads commute, writes to one word do not, DMA beats commute only with yields', () => {
    const r = (pa: number): PreemptPoint => ({ kind: 'mem-read', pa });
    const w = (pa: number): PreemptPoint => ({ kind: 'mem-write', pa });
    const beat: PreemptPoint = { kind: 'dma-beat', pa: 0, access: 'read' };
    expect(independent(r(0), r(0))).toBe(true);
    expect(independent(w(0), r(4))).toBe(false);
    expect(independent(w(0), w(8))).toBe(true);
    expect(independent(beat, r(0x1000))).toBe(false);
    expect(independent(beat, { kind: 'yield', who: 'lock' })).toBe(true);
    expect(independent({ kind: 'yield', who: 'l' }, { kind: 'yield', who: 'l' })).toBe(false);
    expect(independent({ kind: 'mmio-write', pa: 0x100 }, w(0))).toBe(false);
    expect(independent({ kind: 'mmio-read', pa: 0x100 }, w(0))).toBe(true);
  });
});

describe('explore', () => {
  /** The lost-update race: two non-atomic increments; check wants 2. */
  const lostUpdate = (toy: Toy) => ({
    threads: [0, 1].map(() => async () => toy.run(toy.inc(0))),
    check: () => {
      if (toy.mem.get(0) !== 2) throw new Error(`counter is ${toy.mem.get(0)}`);
    },
  });

  it('exhaustive finds the lost update with a replayable schedule and restores the state after', async () => {
    const toy = new Toy();
    toy.mem.set(0, 0);
    const r = await explore(toy, { ...lostUpdate(toy), mode: 'exhaustive', preemptionBound: 2 });
    expect(r.complete).toBe(true);
    expect(r.failures.length).toBeGreaterThan(0);
    expect(r.failures[0]!.error).toBe('check: counter is 1');
    expect(toy.state()).toBe('[[0,0]]');
    const rep = await replay(toy, r.failures[0]!.schedule, lostUpdate(toy));
    expect(rep.error).toBe('check: counter is 1');
    expect(rep.steps.length).toBe(4);
    // A replay keeps the run's final state.
    expect(toy.mem.get(0)).toBe(1);
  });

  it('replayPrefix stops after n steps in the state a pause there would show, and is replay past the end', async () => {
    const toy = new Toy();
    toy.mem.set(0, 0);
    const { schedule } = (await explore(toy, { ...lostUpdate(toy), maxFailures: 1 })).failures[0]!;
    const whole = await replay(toy, schedule, lostUpdate(toy));
    for (let n = 0; n <= whole.steps.length; n++) {
      toy.mem.set(0, 0);
      const r = await replayPrefix(toy, schedule, lostUpdate(toy), n);
      expect(r.ran).toBe(n);
      expect(r.steps).toEqual(whole.steps);
      expect(r.error).toBe('check: counter is 1');
      // Both reads come before both writes in the lost update: the counter is 1 once a write ran.
      const wrote = whole.steps.slice(0, n).some((s) => s.kind === 'mem-write');
      expect(toy.mem.get(0)).toBe(wrote ? 1 : 0);
    }
    toy.mem.set(0, 0);
    const past = await replayPrefix(toy, schedule, lostUpdate(toy), 99);
    expect(past.ran).toBe(whole.steps.length);
    expect(toy.mem.get(0)).toBe(1);
    await expect(replayPrefix(toy, schedule, lostUpdate(toy), -1)).rejects.toThrow(/non-negative/);
  });

  it('replayPrefix: findings of the steps run go to the result, not the log', async () => {
    const toy = new Toy();
    const spec = {
      threads: [0, 1].map((t) => async () => {
        await toy.run(toy.inc(0));
        toy.log.push({ kind: 'driver-warn', severity: 'warning', message: `thread ${t} done`, time: 0 });
      }),
    };
    const r = await replayPrefix(toy, [0, 1], spec, 2);
    expect(r.ran).toBe(2);
    expect(r.findings).toEqual([]);
    const all = await replayPrefix(toy, [0, 1], spec, 4);
    expect(all.findings.map((f) => f.message).sort()).toEqual(['thread 0 done', 'thread 1 done']);
    expect(toy.log).toEqual([]);
  });

  it('random mode: the same seed gives the same schedules', async () => {
    const go = async (seed: number): Promise<string> => {
      const toy = new Toy();
      const r = await explore(toy, { ...lostUpdate(toy), mode: 'random', runs: 30, seed, maxFailures: 100 });
      return JSON.stringify(r);
    };
    expect(await go(3)).toBe(await go(3));
    expect(JSON.parse(await go(3)).runs).toBe(30);
  });

  it('stops at maxFailures and on abort', async () => {
    const toy = new Toy();
    const r = await explore(toy, { ...lostUpdate(toy), maxFailures: 1 });
    expect(r.failures).toHaveLength(1);
    expect(r.complete).toBe(false);
    const ac = new AbortController();
    ac.abort();
    await expect(explore(toy, { ...lostUpdate(toy), mode: 'random', runs: 1000 }, { signal: ac.signal })).rejects.toThrow(/stopped/);
  });

  it('error-level findings fail a run and carry its schedule', async () => {
    const toy = new Toy();
    const spec = {
      threads: [0, 1].map(() => async () => toy.run(toy.inc(0))),
      check: () => {
        if (toy.mem.get(0) !== 2) toy.log.push({ kind: 'lost-mapping', severity: 'error', message: 'lost', time: 0 });
      },
    };
    const r = await explore(toy, spec);
    expect(r.failures[0]!.error).toBe('1 error-level finding: lost-mapping');
    expect(r.failures.length).toBeGreaterThan(0);
    expect(r.failures[0]!.findings[0]!.replay?.schedule).toEqual(r.failures[0]!.schedule);
    expect(toy.log).toEqual([]);
  });
});
