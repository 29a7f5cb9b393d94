/**
 * Explorations spread over real helper workers (worker_threads, through the Session and the pool
 * the sim worker uses): the same result as exploring alone, helpers gone once the exploration
 * ends or is stopped. With EXPLORE_BENCH=1, also the speed-up from 1 to 2 workers on a P2
 * exploration that takes seconds alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WorkerExplorePool } from '../../src/main/host/explore-pool';
import type { ScriptRunResult } from '../../src/shared/session-api';
import { Session } from '../../src/sim/session';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MT8183 = join(ROOT, 'resources', 'socs', 'mt8183.soc.json');

/**
 * P2's race. The first test explores and replays (the helper must rebuild the state a kept replay
 * leaves), the second explores with the given options and workers and prints its whole result.
 */
function p2Script(options: string, workers: number, timeoutMs = 600_000): string {
  return `
const MMU = 'iommu0';
async function race(tableInstall) {
  kernel.driver(MMU).setVariant({ tableInstall });
  const d = await kernel.domainAlloc(MMU);
  const pages = await kernel.allocPages(2);
  const iovas = [0x1000_0000, 0x1000_8000];
  return {
    threads: iovas.map((iova, i) => async () => expect(await kernel.map(d, iova, pages + i * 0x1000, 0x1000, 3)).toBe(0)),
    check: async () => {
      for (let i = 0; i < 2; i++) expect(await kernel.iovaToPhys(d, iovas[i])).toBe(pages + i * 0x1000);
    },
  };
}
test('store: found and replayed', async () => {
  const spec = await race('store');
  const r = await explore({ ...spec, maxFailures: 1 });
  await explore.replay(r.failures[0].schedule, spec);
  soc.takeFindings();
});
test('cmpxchg at a higher bound', async () => {
  const spec = await race('cmpxchg');
  const r = await explore({ ...spec, ${options}, maxFailures: 1e9, workers: ${workers} });
  console.log('RESULT ' + JSON.stringify(r));
}, { timeoutMs: ${timeoutMs} });
`;
}

async function run(pool: WorkerExplorePool, source: string): Promise<{ result: ScriptRunResult; explored: string; ms: number }> {
  let explored = '';
  const session = new Session({
    emit: (e) => {
      if (e.type === 'output' && e.text.startsWith('RESULT ')) explored = e.text.slice('RESULT '.length);
    },
    heartbeat: () => {},
    explorePool: pool,
  });
  expect(session.loadConfig(readFileSync(MT8183, 'utf8'), MT8183).ok).toBe(true);
  const t0 = performance.now();
  const result = await session.runScript({ source, fileName: 'p2-bound.ts' }, 1);
  return { result, explored, ms: performance.now() - t0 };
}

describe('explore over worker_threads helpers', () => {
  it('the same runs, failures and schedules with 1 and 2 workers', async () => {
    const pool = new WorkerExplorePool();
    const one = await run(pool, p2Script('preemptionBound: 4', 1));
    const two = await run(pool, p2Script('preemptionBound: 4', 2));
    expect(one.result.ok).toBe(true);
    expect(two.result.ok).toBe(true);
    const r = JSON.parse(one.explored) as { runs: number; complete: boolean };
    expect(r.runs).toBeGreaterThan(500);
    expect(r.complete).toBe(true);
    expect(two.explored).toBe(one.explored);
    expect(pool.live).toBe(0);
  });

  it('a test stopped at its timeout takes its helpers along', async () => {
    const pool = new WorkerExplorePool();
    let helpersWhileRunning = 0;
    const sample = setTimeout(() => (helpersWhileRunning = pool.live), 3000);
    const { result } = await run(pool, p2Script('mode: "random", runs: 1e7', 2, 4000));
    clearTimeout(sample);
    expect(result.tests[1]?.error?.message).toMatch(/timed out|stopped/);
    expect(helpersWhileRunning).toBe(1);
    expect(pool.live).toBe(0);
  });

  it.runIf(process.env.EXPLORE_BENCH)('speed-up from 1 to 2 workers (EXPLORE_BENCH=1)', async () => {
    const pool = new WorkerExplorePool();
    for (const options of ['preemptionBound: 8', 'mode: "random", runs: 8000']) {
      const one = await run(pool, p2Script(options, 1));
      const two = await run(pool, p2Script(options, 2));
      expect(two.explored).toBe(one.explored);
      const runs = (JSON.parse(one.explored) as { runs: number }).runs;
      console.log(`P2 cmpxchg {${options}}, ${runs} runs: 1 worker ${(one.ms / 1000).toFixed(2)} s, 2 workers ${(two.ms / 1000).toFixed(2)} s, speed-up ${(one.ms / two.ms).toFixed(2)}x`);
    }
  }, 600_000);
});
