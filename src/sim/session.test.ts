import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../shared/session-api';
import { Session } from './session';

function session(soc = 'sun50i-h6'): { s: Session; events: SessionEvent[] } {
  const events: SessionEvent[] = [];
  const s = new Session({ emit: (e) => events.push(e), heartbeat: () => undefined });
  const file = `resources/socs/${soc}.soc.json`;
  const r = s.loadConfig(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return { s, events };
}

describe('Session', () => {
  it('names the script line of the call that raised a finding, for both calls that disagree', async () => {
    const { s } = session();
    const source = [
      "test('double unmap', async () => {",
      '  const pa = await kernel.allocPages(1);',
      "  const iova = await kernel.dma.mapSingle('ve', pa, 4096, 'to-device');",
      "  await kernel.dma.unmapSingle('ve', iova, 4096, 'to-device');",
      "  await kernel.dma.unmapSingle('ve', iova, 4096, 'to-device');",
      '});',
    ].join('\n');
    const r = await s.runScript({ source, fileName: 'unmap.ts' }, 1);
    expect(r.ok).toBe(false);
    const f = r.tests[0]!.findings.find((x) => x.kind === 'double-unmap')!;
    expect(f.where?.line).toMatch(/^unmap\.ts:5:\d+$/);
    expect(f.message).toMatch(/unmap\.ts:4:\d+/);
    // The test fails on the untaken finding, blaming the line that raised it, not test(.
    expect(r.tests[0]!.error?.line).toBe(5);
  });

  it('gives the same trace for the same config, script and seed', async () => {
    const source = "test('dma', async () => { await soc.device('de').dma.read(0x1000, 64); soc.takeFindings(); });";
    const a = session().s;
    await a.runScript({ source, fileName: 'a.ts', seed: 5 }, 1);
    const b = session().s;
    await b.runScript({ source, fileName: 'a.ts', seed: 5 }, 1);
    expect(a.traceEvents()).toEqual(b.traceEvents());
    expect(a.traceEvents().length).toBeGreaterThan(0);
  });

  it('replays an explorer failure to step n: the SoC stays after that step, each n the same as a pause there', async () => {
    const { s, events } = session('rk3399');
    const source = readFileSync('resources/examples/problems/p1-rockchip-zap-order-explore.ts', 'utf8');
    const run = await s.runScript({ source, fileName: 'p1.ts' }, 1);
    expect(run.ok).toBe(true);
    const done = events.flatMap((e) => (e.type === 'explore-progress' && e.explore ? [e.explore] : []));
    expect(done.map((d) => d.call)).toEqual([{ test: 0, ordinal: 0 }, { test: 1, ordinal: 0 }, { test: 2, ordinal: 0 }]);
    const failing = done[0]!;
    expect(failing.testName).toMatch(/before-update: the explorer finds/);
    const schedule = failing.schedules[0]!.schedule;
    const quiet = events.length;
    const at = (steps: number) => s.replayTo({ source, fileName: 'p1.ts', seed: failing.seed, call: failing.call, schedule, steps });

    const zero = await at(0);
    if (!zero.ok) throw new Error(zero.message);
    expect(zero.stepIndex).toBe(0);
    expect(zero.step).toBeUndefined();
    expect(zero.total).toBeGreaterThan(3);
    expect(zero.error).toMatch(/stale-translation|check/);
    const times = [zero.time];
    for (let n = 1; n <= 3; n++) {
      const r = await at(n);
      if (!r.ok) throw new Error(r.message);
      expect(r.stepIndex).toBe(n);
      expect(r.step).toEqual(zero.steps[n - 1]);
      expect(r.steps).toEqual(zero.steps);
      times.push(r.time);
    }
    // Steps take simulated time, and a rerun of the same prefix lands at the same moment.
    expect(times[3]!).toBeGreaterThan(times[0]!);
    const again = await at(3);
    expect(again.ok && again.time).toBe(times[3]);
    const end = await at(zero.total + 5);
    expect(end.ok && end.stepIndex).toBe(zero.total);
    // The replayed step's findings are the SoC's: the stale translation the explorer found.
    expect(s.findings().some((f) => f.kind === 'stale-translation')).toBe(true);
    // Replays are quiet: the console's run output and results are the user's run, not these.
    expect(events.length).toBe(quiet);

    const bad = await s.replayTo({ source, fileName: 'p1.ts', seed: failing.seed, call: { test: 7, ordinal: 0 }, schedule, steps: 1 });
    expect(bad).toMatchObject({ ok: false, message: expect.stringMatching(/ended before explore call 0 of test 7/) });
    const misfit = await s.replayTo({ source, fileName: 'p1.ts', seed: failing.seed, call: failing.call, schedule: [5], steps: 1 });
    expect(misfit).toMatchObject({ ok: false, message: expect.stringMatching(/schedule/) });
  });
});

describe('Session.openMoment (time travel)', () => {
  // Maps a page, DMAs through it, unmaps it twice (a finding), and DMAs again (a fault).
  const source = [
    "test('map, dma, double unmap, fault', async () => {",
    '  const pa = await kernel.allocPages(2);',
    "  const iova = await kernel.dma.mapSingle('ve', pa, 8192, 'bidirectional');",
    "  await soc.device('ve').dma.write(iova, new Uint8Array(256).fill(0xa5));",
    "  await kernel.dma.unmapSingle('ve', iova, 8192, 'bidirectional');",
    "  await kernel.dma.unmapSingle('ve', iova, 8192, 'bidirectional');",
    "  await soc.device('ve').dma.read(iova, 64);",
    '});',
  ].join('\n');
  const fileName = 'moment.ts';

  /** What every view reads, as one value: time, trace, findings, registers, memory and caches. */
  function views(s: Session): unknown {
    return {
      time: s.simTime(),
      trace: s.traceEvents(),
      findings: s.findings(),
      regs: s.readRegisters('iommu0'),
      iommu: s.inspectIommu('iommu0'),
      domains: s.domains(),
      ram: Array.from(s.readMemory(0x4000_0000, 0x1000, 'ram')),
    };
  }

  it('keeps the SoC as it was right after the asked event, the same as a fresh re-execution to it', async () => {
    const { s } = session();
    await s.runScript({ source, fileName }, 1);
    const full = s.traceEvents();
    // Odd: not one of the keyframes the run kept (every 64 events), so this open re-executes.
    const k = Math.floor(full.length / 2) | 1;
    expect(k).toBeGreaterThan(10);

    const m = await s.openMoment({ source, fileName, event: k });
    expect(m).toMatchObject({ ok: true, event: k, cached: false, time: full[k - 1]!.time, what: full[k - 1] });
    expect(s.traceEvents()).toEqual(full.slice(0, k));
    const at = views(s);

    // A neighbour was kept on the way: opening it restores, without another run.
    const next = await s.openMoment({ source, fileName, event: k + 1 });
    expect(next).toMatchObject({ ok: true, event: k + 1, cached: true });
    expect(s.traceEvents()).toEqual(full.slice(0, k + 1));
    const back = await s.openMoment({ source, fileName, event: k });
    expect(back).toMatchObject({ ok: true, cached: true });
    expect(views(s)).toEqual(at);

    // A fresh session, with nothing kept, re-executes to the same moment and sees the same SoC.
    const fresh = session().s;
    expect(await fresh.openMoment({ source, fileName, event: k })).toMatchObject({ ok: true, cached: false });
    expect(views(fresh)).toEqual(at);
  });

  it('opens a finding at its moment from what the run kept, the same SoC a fresh re-execution reaches', async () => {
    const { s } = session();
    const r = await s.runScript({ source, fileName }, 1);
    const f = r.tests[0]!.findings.find((x) => x.kind === 'double-unmap')!;
    expect(f.replay?.event).toBeGreaterThan(0);
    const m = await s.openMoment({ source, fileName, event: f.replay!.event! });
    if (!m.ok) throw new Error(m.message);
    // Kept by the run: the SoC as it was when the finding was raised, by the second unmap.
    expect(m.cached).toBe(true);
    expect(m.time).toBe(f.time);
    expect(m.test).toBe('map, dma, double unmap, fault');
    expect(m.site).toBe(f.where?.line);
    const at = views(s);
    // The events just after it were kept too: stepping on is a restore.
    expect(await s.openMoment({ source, fileName, event: f.replay!.event! + 1 })).toMatchObject({ ok: true, cached: true });
    const fresh = session().s;
    expect(await fresh.openMoment({ source, fileName, event: f.replay!.event! })).toMatchObject({ ok: true, cached: false, time: f.time, site: f.where?.line });
    expect(views(fresh)).toEqual(at);
  });

  it('keeps keyframes as the run goes: they open without re-execution, the same as a fresh one', async () => {
    const { s } = session();
    const source = [
      "test('many transfers', async () => {",
      '  const pa = await kernel.allocPages(1);',
      "  const iova = await kernel.dma.mapSingle('ve', pa, 4096, 'bidirectional');",
      "  for (let i = 0; i < 150; i++) await soc.device('ve').dma.write(iova + (i % 8) * 64, new Uint8Array(64).fill(i));",
      '});',
    ].join('\n');
    await s.runScript({ source, fileName }, 1);
    expect(s.traceEvents().length).toBeGreaterThan(64);
    expect(await s.openMoment({ source, fileName, event: 64 })).toMatchObject({ ok: true, cached: true, event: 64 });
    const at = views(s);
    const fresh = session().s;
    expect(await fresh.openMoment({ source, fileName, event: 64 })).toMatchObject({ ok: true, cached: false });
    expect(views(fresh)).toEqual(at);
    // After a re-execution elsewhere in the run, the run's keyframes still restore.
    const odd = (s.traceEvents().length - 3) | 1;
    expect(await s.openMoment({ source, fileName, event: odd })).toMatchObject({ ok: true, cached: false });
    expect(await s.openMoment({ source, fileName, event: 64 })).toMatchObject({ ok: true, cached: true });
    expect(views(s)).toEqual(at);
  });

  it('says so when the run never gets to the event', async () => {
    const { s } = session();
    await s.runScript({ source, fileName }, 1);
    const n = s.traceEvents().length;
    const m = await s.openMoment({ source, fileName, event: n + 1000 });
    expect(m).toMatchObject({ ok: false, events: n });
  });
});
