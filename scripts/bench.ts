/**
 * Engine benchmarks (`npm run bench`, `--json` for one JSON object per line). Each figure is the
 * median of several runs. Targets: >= 20M TLB-hit translations/s, >= 5M walks/s, a 64 MiB DMA copy
 * through 4 KiB mappings at >= 40% of a same-run Buffer.copy, 4 GiB RAM with 64 MiB touched < 100 MB;
 * io-pgtable v7s and LPAE 4 KiB map+unmap >= 1M ops/s each, 1 MiB / 2 MiB blocks >= 2M ops/s.
 *
 * Each group runs in a fresh child process (`--group NAME` runs one here), as benchmark harnesses
 * fork: a group's figures then do not depend on which groups ran before it. In one process the
 * earlier groups' type feedback and heap cost the io-pgtable figures about 15% and the DMA copy
 * ratio 2 to 4 points.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { SparseRam } from '../src/sim/mem/ram';
import { H6Driver, h6Soc, IOMMU } from '../src/sim/hw/h6-test-kit';
import { makeRig, RAM_BASE } from '../src/sim/kernel/testing/fake-iommu';
import { presetSoc } from '../src/sim/kernel/testing/presets';
import { benchIoPgtable } from '../src/sim/kernel/io-pgtable-bench';
import { benchIommuDrivers } from '../src/sim/kernel/drivers/iommu-driver-bench';
import { ensureBuilt } from './node-build.mjs';
import { EXAMPLES, exampleSource, HELD_SOC, heldRaceSource, p2WorkersSource, runExploreScript, runWithWorkers, type ExploreRun } from './bench-explore';
import { CDriverBuilder } from '../src/main/host/cdriver-build';
import { resourcesDir } from '../src/main/host/resources';
import { parseConfig } from '../src/sim/config/validate';
import { IOMMU_MODELS, Soc } from '../src/sim/soc';
import { iommuDrivers } from '../src/sim/kernel/drivers';
import { cIommuDriver } from '../src/sim/kernel/cdriver/driver';
import { explore, replay } from '../src/sim/check/explore';
import { socExploreTarget } from '../src/sim/check/explore-binding';

interface Result {
  name: string;
  ops: number;
  seconds: number;
  rate: number;
  unit: string;
  baseline?: number;
  ratio?: number;
}

const json = process.argv.includes('--json');
const groupArg = process.argv.indexOf('--group');
const group = groupArg >= 0 ? process.argv[groupArg + 1] : undefined;
// A full GC before and after a heap measurement, without asking for node flags.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const RUNS = 5;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1 << 20;

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

function report(r: Result): void {
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  const extra = r.ratio !== undefined ? `  (baseline ${fmt(r.baseline!)} ${r.unit}, ratio ${(r.ratio * 100).toFixed(1)}%)` : '';
  console.log(`${r.name.padEnd(44)} ${fmt(r.rate).padStart(10)} ${r.unit}${extra}`);
}

const fmt = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(2));

/** An enabled H6 with `pages` 4 KiB pages mapped at iova, prefetch off so every miss is one walk. */
function mappedSoc(iova: number, pa: number, pages: number, beatBytes = 64) {
  const soc = h6Soc((c) => c.devices.forEach((d) => (d.beatBytes = beatBytes)));
  const drv = new H6Driver(soc);
  for (let i = 0; i < pages; i++) drv.map(iova + i * 4096, pa + i * 4096);
  drv.enable();
  drv.set('TLB_PREFETCH', 0);
  return { soc, drv, iommu: soc.iommu(IOMMU), port: soc.device('de').port };
}

function tlbHits(): Result {
  const { iommu, port } = mappedSoc(0x1000_0000, 0x4800_0000, 8);
  for (let i = 0; i < 8; i++) iommu.translate(port, 0x1000_0000 + i * 4096, 'read');
  const n = 20_000_000;
  let sink = 0;
  const secs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    secs.push(
      timed(() => {
        for (let i = 0; i < n; i++) {
          const t = iommu.translate(port, 0x1000_0000 + ((i & 7) << 12) + (i & 0xff0), 'read');
          if (t.ok) sink += t.pa & 1;
        }
      }),
    );
  }
  if (iommu.stats().misses !== 8 || sink < 0) throw new Error('TLB-hit bench missed the TLB');
  const s = median(secs);
  return { name: 'tlb-hit-translations', ops: n, seconds: s, rate: n / s, unit: 'translations/s' };
}

function walks(): Result {
  const pages = 16384;
  const { iommu, port } = mappedSoc(0x1000_0000, 0x4800_0000, pages);
  const passes = 20;
  const secs: number[] = [];
  let n = 0;
  for (let r = 0; r < RUNS; r++) {
    const before = iommu.stats().walks;
    secs.push(
      timed(() => {
        for (let p = 0; p < passes; p++) for (let i = 0; i < pages; i++) iommu.translate(port, 0x1000_0000 + i * 4096, 'read');
      }),
    );
    // Every page misses both TLBs (far more pages than entries): each translation is one walk.
    n = iommu.stats().walks - before;
    if (n !== pages * passes) throw new Error(`walk bench: ${n} walks for ${pages * passes} translations`);
  }
  const s = median(secs);
  return { name: 'page-walks', ops: n, seconds: s, rate: n / s, unit: 'walks/s' };
}

function dmaCopy(): Result {
  const bytes = 64 * MiB;
  const pages = bytes / 4096;
  const SRC = 0x1000_0000;
  const DST = 0x2000_0000;
  const { soc, drv } = mappedSoc(SRC, 0x4800_0000, pages, 4096);
  for (let i = 0; i < pages; i++) drv.map(DST + i * 4096, 0x5000_0000 + i * 4096);
  const fill = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) fill[i] = i >>> 12;
  soc.ram.writeFrom(0x4800_0000, fill);
  soc.ram.writeFrom(0x5000_0000, new Uint8Array(bytes));
  const de = soc.device('de');
  const src = Buffer.from(fill.buffer);
  const dst = Buffer.alloc(bytes);
  const dmaSecs: number[] = [];
  const copySecs: number[] = [];
  // Steady state: two untimed rounds let the JIT settle first.
  for (let r = -2; r < RUNS; r++) {
    const c = timed(() => src.copy(dst));
    const d = timed(() => {
      if (!de.copy(SRC, DST, bytes).ok) throw new Error('DMA copy faulted');
    });
    if (r < 0) continue;
    copySecs.push(c);
    dmaSecs.push(d);
  }
  if (soc.ram.read8(0x5000_0000 + 4096 * 77) !== 77) throw new Error('DMA copy produced wrong data');
  const s = median(dmaSecs);
  const baseline = bytes / median(copySecs);
  const rate = bytes / s;
  return { name: 'dma-copy-64MiB-4K-pages', ops: bytes, seconds: s, rate, unit: 'bytes/s', baseline, ratio: rate / baseline };
}

function touchedRam(fill: number): SparseRam {
  const ram = new SparseRam(0, 2 ** 32);
  const chunk = new Uint8Array(MiB).fill(fill);
  for (let i = 0; i < 64; i++) ram.writeFrom(i * 64 * MiB, chunk);
  return ram;
}

function ramHeap(): Result {
  const costs: number[] = [];
  const secs: number[] = [];
  // The only reference to each run's RAM, dropped before the next baseline is taken.
  let held: SparseRam | null = null;
  gc();
  // One baseline for all runs: V8 frees dropped ArrayBuffers lazily, so a later baseline could still
  // hold the previous run's frames. This over-counts, never under-counts.
  const before = process.memoryUsage();
  for (let r = 0; r < RUNS; r++) {
    held = null;
    gc();
    const t0 = performance.now();
    held = touchedRam(r + 1);
    secs.push((performance.now() - t0) / 1000);
    gc();
    const after = process.memoryUsage();
    if (held.touchedFrames() !== 64 * 256) throw new Error('RAM bench touched the wrong frames');
    costs.push(after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers));
  }
  const mb = median(costs) / 1e6;
  return { name: 'ram-4GiB-64MiB-touched', ops: 64 * MiB, seconds: median(secs), rate: mb, unit: 'MB heap' };
}


// ---- kernel layer (targets: >= 1M map+unmap pairs/s, >= 500k DMA map+unmap single pairs/s) ----

/**
 * Median rate of n awaited iterations of body (one map + one unmap), after one untimed warm-up
 * round: as pairs/s, and as ops/s counting the map and the unmap as one op each.
 */
async function kernelRate(name: string, n: number, body: () => Promise<void>): Promise<Result[]> {
  const secs: number[] = [];
  for (let r = -1; r < RUNS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await body();
    if (r >= 0) secs.push((performance.now() - t0) / 1000);
  }
  const s = median(secs);
  return [
    { name, ops: n, seconds: s, rate: n / s, unit: 'pairs/s' },
    { name: `${name}-ops`, ops: 2 * n, seconds: s, rate: (2 * n) / s, unit: OPS },
  ];
}

const OPS = 'ops/s (op = one map or one unmap)';

/** map + unmap of one 4 KiB page through the script-api kernel object: IOMMU core, gather, a minimal driver. */
async function kernelMapUnmap(): Promise<Result[]> {
  const k = makeRig().kernel.api;
  const d = await k.domainAlloc('iommu0');
  return kernelRate('kernel-map-unmap-4K', 200_000, async () => {
    await k.map(d, 0x200000, RAM_BASE, 0x1000, 3);
    await k.unmap(d, 0x200000, 0x1000);
  });
}

/** The same through the sun50i-iommu driver on the H6 model: table walks, zap_range and flush MMIO. */
async function h6MapUnmap(): Promise<Result[]> {
  const k = presetSoc('sun50i-h6').kernel.api;
  const d = await k.domainAlloc('iommu0');
  await k.attachDevice(d, 've');
  const pa = await k.allocPages(1);
  return kernelRate('kernel-map-unmap-4K-sun50i', 20_000, async () => {
    await k.map(d, 0x200000, pa, 0x1000, 3);
    await k.unmap(d, 0x200000, 0x1000);
  });
}

/** dma_map_single + dma_unmap_single of 4 KiB: cache maintenance, IOVA allocator, map, P5 ledger, unmap. */
async function dmaMapUnmap(): Promise<Result[]> {
  const k = makeRig().kernel.api;
  return kernelRate('dma-map-unmap-single-4K', 100_000, async () => {
    const iova = await k.dma.mapSingle('vpu', RAM_BASE + 0x40, 0x1000, 'to-device');
    await k.dma.unmapSingle('vpu', iova, 0x1000, 'to-device');
  });
}

async function kernel(): Promise<void> {
  for (const bench of [kernelMapUnmap, h6MapUnmap, dmaMapUnmap]) for (const r of await bench()) report(r);
}

// ---- io-pgtable formats and IOMMU drivers (rates over process CPU time, steadier on a loaded box) ----

/** Median over runs of each named case of a bench that returns one result per case. */
function medianCases(prefix: string, runs: number, bench: () => { name: string; ops: number; cpuSeconds: number }[]): Result[] {
  const all = Array.from({ length: runs }, bench);
  return all[0]!.map((c, i) => {
    const s = median(all.map((r) => r[i]!.cpuSeconds));
    return { name: `${prefix}-${c.name.replace(/[ +_]+/g, '-')}`, ops: c.ops, seconds: s, rate: c.ops / s, unit: OPS };
  });
}

async function ioPgtable(): Promise<void> {
  for (const r of medianCases('io-pgtable', RUNS, () => benchIoPgtable(100_000))) report(r);
}

async function drivers(): Promise<void> {
  for (const r of medianCases('driver', 3, () => benchIommuDrivers(20_000))) report(r);
}

// ---- CLI cold start: the built CLI running a one-test script, beside `node -e 0` ----

/** Wall seconds and peak RSS (MB, worker threads included) of one process, read by a preload at exit. */
function processCost(args: string[]): { wall: number; rssMb: number } {
  const rssFile = join(tmpdir(), `soc-console-bench-rss-${process.pid}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(ROOT, 'scripts', 'bench-rss.mjs')).href, ...args], {
    cwd: ROOT,
    env: { ...process.env, SOC_CONSOLE_BENCH_RSS: rssFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`bench: ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.toString()}`);
  const rssMb = Number(readFileSync(rssFile, 'utf8')) / 1024;
  rmSync(rssFile, { force: true });
  return { wall, rssMb };
}

async function cli(): Promise<void> {
  await ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'soc-console-bench-'));
  const script = join(dir, 'trivial.ts');
  writeFileSync(script, "import { test, expect } from 'soc-console';\ntest('trivial', () => expect(1).toBe(1));\n");
  const cliArgs = [join(ROOT, 'scripts', 'run-node.mjs'), 'bringup', '--soc', join(ROOT, 'resources', 'socs', 'sun50i-h6.soc.json'), script];
  const base: { wall: number; rssMb: number }[] = [];
  const run: { wall: number; rssMb: number }[] = [];
  processCost(cliArgs);
  for (let i = 0; i < RUNS; i++) {
    base.push(processCost(['-e', '0']));
    run.push(processCost(cliArgs));
  }
  rmSync(dir, { recursive: true, force: true });
  const wall = median(run.map((x) => x.wall));
  const baseWall = median(base.map((x) => x.wall));
  const rss = median(run.map((x) => x.rssMb));
  const baseRss = median(base.map((x) => x.rssMb));
  report({ name: 'cli-cold-start-wall (trivial script)', ops: 1, seconds: wall, rate: wall, unit: 's', baseline: baseWall, ratio: wall / baseWall });
  report({ name: 'cli-cold-start-peak-rss', ops: 1, seconds: wall, rate: rss, unit: 'MB', baseline: baseRss, ratio: rss / baseRss });
}

// ---- explorer (rates over process CPU time; targets: >= 3,000 schedules/s for P1/P2, 64 MiB held within 1.5x) ----

/** The run with the median schedules/s of n. */
async function medianRun(n: number, f: () => Promise<ExploreRun>): Promise<ExploreRun> {
  const all: ExploreRun[] = [];
  for (let i = 0; i < n; i++) all.push(await f());
  return all.sort((a, b) => a.runs / a.seconds - b.runs / b.seconds)[Math.floor(n / 2)]!;
}

async function exploreExamples(): Promise<void> {
  for (const ex of EXAMPLES) {
    // The explore call 11 times: the first warms up, the other ten are timed.
    const source = exampleSource(ex.file, 11);
    const r = await medianRun(RUNS, () => runExploreScript(ex.soc, source, ex.test));
    report({ name: `explore-${ex.name}`, ops: r.runs, seconds: r.seconds, rate: r.runs / r.seconds, unit: 'schedules/s' });
    report({ name: `explore-${ex.name}-steps`, ops: r.steps, seconds: r.seconds, rate: r.steps / r.seconds, unit: 'steps/s' });
  }
}

async function exploreHeld(): Promise<void> {
  const run = (mib: number): Promise<ExploreRun> => runExploreScript(HELD_SOC, heldRaceSource(mib), 'race');
  await run(0);
  const empty = await medianRun(RUNS, () => run(0));
  const held = await medianRun(RUNS, () => run(64));
  const base = empty.runs / empty.seconds;
  const rate = held.runs / held.seconds;
  report({ name: 'explore-lpae-race-empty', ops: empty.runs, seconds: empty.seconds, rate: base, unit: 'schedules/s' });
  report({ name: 'explore-lpae-race-64MiB-held', ops: held.runs, seconds: held.seconds, rate, unit: 'schedules/s', baseline: base, ratio: rate / base });
}

/**
 * 1 vs 2 workers on explorations of a few seconds, exhaustive and random: the wall-clock speed-up
 * (the helper's start, a fresh session replaying the script up to the call, included), and CPU time
 * per schedule, which shows the cost of sharing work when other load makes the wall clock noisy.
 */
async function exploreWorkers(): Promise<void> {
  for (const [name, options] of [
    ['exhaustive', "mode: 'exhaustive', preemptionBound: 6"],
    ['random', "mode: 'random', runs: 6000, seed: 3"],
  ] as const) {
    const one = await runWithWorkers(p2WorkersSource(options, 1));
    const two = await runWithWorkers(p2WorkersSource(options, 2));
    if (one.result !== two.result) throw new Error(`bench: ${name}: 1 and 2 workers gave different results`);
    const runs = (JSON.parse(one.result) as { runs: number }).runs;
    report({ name: `explore-workers-${name}-1`, ops: runs, seconds: one.wall, rate: runs / one.wall, unit: 'schedules/s (wall)' });
    report({ name: `explore-workers-${name}-2`, ops: runs, seconds: two.wall, rate: runs / two.wall, unit: 'schedules/s (wall)', baseline: runs / one.wall, ratio: one.wall / two.wall });
    report({ name: `explore-workers-${name}-cpu-per-schedule-2`, ops: runs, seconds: two.cpu, rate: (two.cpu / runs) * 1e6, unit: 'CPU µs/schedule', baseline: (one.cpu / runs) * 1e6, ratio: two.cpu / one.cpu });
  }
}

// ---- C drivers: our sun50i-iommu.c compiled to wasm beside the TypeScript driver ----

/** Cold compile (empty cache folder) and warm (the same folder again), then the H6 with the C driver. */
async function cdriver(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'soc-console-bench-'));
  const source = join(resourcesDir(), 'drivers', 'sun50i-iommu.c');
  try {
    const builder = new CDriverBuilder({ cacheDir: dir });
    let wasm: Uint8Array | null = null;
    for (const phase of ['cold', 'warm']) {
      const t0 = performance.now();
      const b = await builder.build({ source, defines: {}, includes: [] });
      const secs = (performance.now() - t0) / 1000;
      if (!b.ok) throw new Error(`bench: compile failed: ${b.diagnostics.map((d) => d.message).join('; ')}`);
      wasm = b.wasm;
      report({ name: `cdriver-compile-${phase}`, ops: 1, seconds: secs, rate: secs, unit: 's (wall, compile + instrument)' });
    }
    const text = readFileSync(join(resourcesDir(), 'socs', 'sun50i-h6.soc.json'), 'utf8');
    const parsed = parseConfig(text, 'sun50i-h6.soc.json');
    if (!parsed.ok) throw new Error('bench: preset does not parse');
    const module = new WebAssembly.Module(wasm!);
    const cSoc = (): Soc => new Soc(parsed.config, 1, IOMMU_MODELS, [...iommuDrivers(), cIommuDriver(parsed.config.iommus[0]!, { module, source, defines: {} })]);
    const pairs = async (soc: Soc, name: string): Promise<Result[]> => {
      const k = soc.kernel.api;
      const d = await k.domainAlloc('iommu0');
      await k.attachDevice(d, 've');
      const pa = await k.allocPages(1);
      return kernelRate(name, 20_000, async () => {
        await k.map(d, 0x200000, pa, 0x1000, 3);
        await k.unmap(d, 0x200000, 0x1000);
      });
    };
    const ts = await pairs(presetSoc('sun50i-h6'), 'cdriver-baseline-ts-sun50i');
    const c = await pairs(cSoc(), 'cdriver-map-unmap-4K-sun50i');
    for (const r of ts) report(r);
    c.forEach((r, i) => report({ ...r, baseline: ts[i]!.rate, ratio: r.rate / ts[i]!.rate }));
    // Explorer: two maps racing in one fresh MiB (DTE cmpxchg, zap MMIO, the lock) on the C driver.
    const soc = cSoc();
    const k = soc.kernel.api;
    const d = await k.domainAlloc('iommu0');
    await k.attachDevice(d, 've');
    const pa = await k.allocPages(2);
    const spec = {
      threads: [async () => void (await k.map(d, 0x2000_0000, pa, 0x1000, 3)), async () => void (await k.map(d, 0x2000_1000, pa + 0x1000, 0x1000, 3))],
      check: async () => undefined,
    };
    const target = socExploreTarget(soc);
    const steps = (await replay(target, [], spec)).steps.length;
    const runs = 300;
    const t0 = performance.now();
    const r = await explore(target, { ...spec, mode: 'random', runs, seed: 1 });
    const secs = (performance.now() - t0) / 1000;
    report({ name: 'cdriver-explore-sun50i-map-race', ops: r.runs * steps, seconds: secs, rate: (r.runs * steps) / secs, unit: `steps/s (${r.runs} runs x ~${steps} steps)` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const GROUPS: Record<string, () => Promise<void>> = {
  ram: async () => report(ramHeap()),
  'tlb-hit': async () => report(tlbHits()),
  walks: async () => report(walks()),
  'dma-copy': async () => report(dmaCopy()),
  kernel,
  'io-pgtable': ioPgtable,
  drivers,
  cli,
  explore: exploreExamples,
  'explore-held': exploreHeld,
  'explore-workers': exploreWorkers,
  cdriver,
};

if (group !== undefined) {
  const run = GROUPS[group];
  if (!run) throw new Error(`bench: no group ${group} (groups: ${Object.keys(GROUPS).join(', ')})`);
  await run();
} else {
  for (const name of Object.keys(GROUPS)) {
    // The same node flags (tsx's loader) and output mode; results stream through as they come.
    const args = [...process.execArgv, fileURLToPath(import.meta.url), '--group', name, ...(json ? ['--json'] : [])];
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`bench: group ${name} failed (exit ${r.status ?? r.signal})`);
  }
}
