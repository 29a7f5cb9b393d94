/**
 * Explorer benchmarks (bench.ts groups `explore` and `explore-held`): whole scripts through the
 * engine session, as `npm run bringup` runs them, without the worker and its transport.
 *
 * - P1 and P2: the examples' clean exhaustive explorations (bound 2), schedules/s and steps/s.
 * - explore-held: the LPAE race of a 2 MiB block map against a 4 KiB page map in the same region
 *   (exhaustive, bound 2), once with nothing else allocated and once with 64 MiB allocated and
 *   mapped before the call; the ratio shows whether restoring costs what a run changed or what exists.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/sim/config/validate';
import { createExploreBinding } from '../src/sim/check/explore-binding';
import type { ExploreSpec } from '../src/sim/check/explore';
import { runScript } from '../src/sim/script/run';
import { Soc } from '../src/sim/soc';
import { createSocBindings } from '../src/sim/soc-api';

/** This process's CPU time: steadier than the wall clock on a loaded machine (the exploration runs in this thread only). */
export const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const root = (p: string): string => fileURLToPath(new URL(`../${p}`, import.meta.url));

export interface ExploreRun {
  /** Schedules run by the timed explorations (all but the first of the test). */
  runs: number;
  /** Steps those runs took. */
  steps: number;
  /** CPU seconds. */
  seconds: number;
}

/**
 * Run a script on a fresh SoC, as the session does, in this worker only (no helper workers), and
 * time the explorations of the test named `test` after its first (which warms the JIT up), or the
 * first when there is only one.
 */
export async function runExploreScript(socFile: string, source: string, test: string): Promise<ExploreRun> {
  const parsed = parseConfig(readFileSync(root(socFile), 'utf8'), socFile);
  if (!parsed.ok) throw new Error(`bench: ${socFile}: ${JSON.stringify(parsed.errors)}`);
  const soc = new Soc(parsed.config);
  let current = '';
  let steps = 0;
  const timings: ExploreRun[] = [];
  const inner = createExploreBinding(soc, { onRun: (o) => (steps += o.stepCount) });
  const explore = Object.assign(
    async (spec: ExploreSpec) => {
      const steps0 = steps;
      const t0 = cpuSeconds();
      const r = await inner(spec);
      if (current === test) timings.push({ runs: r.runs, steps: steps - steps0, seconds: cpuSeconds() - t0 });
      return r;
    },
    { replay: inner.replay },
  );
  const out = await runScript({
    source,
    fileName: 'bench.ts',
    timeoutMs: 600_000,
    bindings: { soc: createSocBindings(soc), kernel: soc.kernel.api, explore },
    hooks: { beforeTest: (t) => void (current = t.fullName), afterTest: () => soc.findings.take() },
  });
  if (!out.ok) throw new Error(`bench: script failed: ${out.error?.message ?? out.tests.filter((t) => t.status !== 'passed').map((t) => `${t.fullName}: ${t.error?.message}`).join('; ')}`);
  if (timings.length === 0) throw new Error(`bench: no exploration in test ${test}`);
  const timed = timings.length > 1 ? timings.slice(1) : timings;
  return timed.reduce((a, t) => ({ runs: a.runs + t.runs, steps: a.steps + t.steps, seconds: a.seconds + t.seconds }));
}

export const EXAMPLES = [
  { name: 'p1-rockchip-zap-order', soc: 'resources/socs/rk3399.soc.json', file: 'resources/examples/problems/p1-rockchip-zap-order-explore.ts', test: 'upstream order explores clean (exhaustive, bound 2)' },
  { name: 'p2-v7s-table-install', soc: 'resources/socs/mt8183.soc.json', file: 'resources/examples/problems/p2-v7s-table-install-explore.ts', test: 'tableInstall cmpxchg: explores clean (exhaustive, bound 2)' },
] as const;

/** An example's source with the timed test's explore call made `times` times (a steady-state figure). */
export function exampleSource(file: string, times = 1): string {
  const src = readFileSync(root(file), 'utf8');
  const call = "const r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2 });";
  if (!src.includes(call)) throw new Error(`bench: ${file} has no clean exhaustive explore call`);
  return src.replace(call, `let r; for (let i = 0; i < ${times}; i++) r = await explore({ ...spec, mode: 'exhaustive', preemptionBound: 2 });`);
}

/** The LPAE block-vs-page race with `heldMiB` allocated (4 MiB at a time) and mapped before explore. */
export function heldRaceSource(heldMiB: number): string {
  return `
const SMMU = 'smmu0';
const SZ_2M = 0x20_0000;
const SZ_4M = 0x40_0000;
test('race', async () => {
  const d = await kernel.domainAlloc(SMMU);
  expect(await kernel.attachDevice(d, 'dma0')).toBe(0);
  for (let i = 0; i < ${heldMiB / 4}; i++) {
    const pa = await kernel.allocPages(1024);
    const aligned = pa + ((SZ_2M - (pa % SZ_2M)) % SZ_2M);
    expect(await kernel.map(d, 0x8000_0000 + i * SZ_4M, aligned, SZ_2M, 3)).toBe(0);
  }
  const block = 0x4000_0000;
  const page = await kernel.allocPages(1);
  const r = await explore({
    mode: 'exhaustive',
    preemptionBound: 2,
    threads: [
      async () => { await kernel.map(d, 0x4000_0000, block, SZ_2M, 3); },
      async () => { await kernel.map(d, 0x4000_1000, page, 0x1000, 3); },
    ],
  });
  expect(r.complete).toBe(true);
  soc.takeFindings();
});
`;
}

export const HELD_SOC = 'resources/socs/arm64-smmu.soc.json';


/**
 * P2's clean race explored at a bound (or randomly) long enough to be worth helpers, with `workers`
 * workers; the script prints the result so runs with different worker counts can be compared.
 */
export function p2WorkersSource(options: string, workers: number): string {
  return `
test('explore', async () => {
  kernel.driver('iommu0').setVariant({ tableInstall: 'cmpxchg' });
  const d = await kernel.domainAlloc('iommu0');
  const pages = await kernel.allocPages(2);
  const iovas = [0x1000_0000, 0x1000_8000];
  const r = await explore({
    threads: iovas.map((iova, i) => async () => expect(await kernel.map(d, iova, pages + i * 0x1000, 0x1000, 3)).toBe(0)),
    ${options},
    workers: ${workers},
  });
  console.log('RESULT ' + JSON.stringify(r));
});
`;
}

/** Run a script through a session with real helper workers; wall and process CPU seconds (helpers are threads of this process). */
export async function runWithWorkers(source: string): Promise<{ result: string; wall: number; cpu: number }> {
  const { WorkerExplorePool } = await import('../src/main/host/explore-pool');
  const { Session } = await import('../src/sim/session');
  let result = '';
  const session = new Session({
    emit: (e) => {
      if (e.type === 'output' && e.text.startsWith('RESULT ')) result = e.text.slice('RESULT '.length);
    },
    heartbeat: () => undefined,
    explorePool: new WorkerExplorePool(),
  });
  const soc = root('resources/socs/mt8183.soc.json');
  if (!session.loadConfig(readFileSync(soc, 'utf8'), soc).ok) throw new Error('bench: mt8183 config');
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const out = await session.runScript({ source, fileName: 'workers.ts', timeoutMs: 600_000 }, 1);
  if (!out.ok || !result) throw new Error(`bench: worker script failed: ${out.error?.message ?? out.tests.map((t) => t.error?.message).join('; ')}`);
  return { result, wall: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0 };
}
