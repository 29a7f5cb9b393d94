import { afterEach, describe, expect, it } from 'vitest';
import { SessionHost } from '../../src/main/host/host';
import type { SessionEvent } from '../../src/shared/session-api';

const fakeWorker = { ts: new URL('../fixtures/fake-worker.ts', import.meta.url) };
let host: SessionHost | undefined;

afterEach(async () => {
  await host?.dispose();
  host = undefined;
});

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SessionHost', () => {
  it('forwards calls and streams worker events', async () => {
    host = await SessionHost.create({ worker: fakeWorker });
    const events: SessionEvent[] = [];
    host.onEvent((e) => events.push(e));
    expect((await host.readMemory(0, 4, 'ram')).length).toBe(4);
    const r = await host.runScript({ source: 'ok', fileName: 'a.ts' });
    expect(r.ok).toBe(true);
    await waitFor(() => events.some((e) => e.type === 'output'));
    expect(events.find((e) => e.type === 'output')).toMatchObject({ text: 'hello', runId: r.runId });
  });

  it('restarts a crashed worker, reports it, and reloads the last config', async () => {
    host = await SessionHost.create({ worker: fakeWorker });
    const events: SessionEvent[] = [];
    host.onEvent((e) => events.push(e));
    await host.loadConfig('{"name":"x"}', 'x.soc.json');
    const r = await host.runScript({ source: 'crash', fileName: 'crash.ts' });
    expect(r.ok).toBe(false);
    expect(r.error?.message).toMatch(/exited/);
    expect(events.some((e) => e.type === 'worker-restarted')).toBe(true);
    expect(host.restartCount).toBe(1);
    await waitFor(async () => (await host!.configText())?.file === 'x.soc.json');
  });

  it('kills a hung worker after the timeout and keeps serving', async () => {
    host = await SessionHost.create({ worker: fakeWorker, watchdogGraceMs: 200 });
    const t0 = Date.now();
    const r = await host.runScript({ source: 'hang', fileName: 'hang.ts', timeoutMs: 300 });
    expect(r.ok).toBe(false);
    expect(r.error?.message).toMatch(/stopped answering for more than 300 ms/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await host.listBlocks())[0]!.name).toBe('iommu0');
  });

  it('passes engine errors through without restarting', async () => {
    host = await SessionHost.create({ worker: fakeWorker });
    await expect(host.runScript({ source: 'throw', fileName: 't.ts' })).rejects.toThrow('engine bug');
    expect(host.restartCount).toBe(0);
  });

  it('stopScript replaces the worker', async () => {
    host = await SessionHost.create({ worker: fakeWorker });
    await host.stopScript();
    expect(host.restartCount).toBe(1);
    expect((await host.listBlocks()).length).toBe(1);
  });

  it('keeps the tests that finished when the worker dies, and names the one that was running', async () => {
    host = await SessionHost.create({ worker: fakeWorker });
    const r = await host.runScript({ source: 'passes-then-crash', fileName: 'three.ts' });
    expect(r.tests.map((t) => [t.name, t.status])).toEqual([
      ['a', 'passed'],
      ['b', 'passed'],
      ['c', 'passed'],
    ]);
    expect(r.error?.message).toMatch(/^the sim worker exited \(code 3\) while test "d" was running$/);
  });

  it('a hang names the timeout the test set, not the run default', async () => {
    host = await SessionHost.create({ worker: fakeWorker, watchdogGraceMs: 200 });
    const r = await host.runScript({ source: 'hang-in-test 400', fileName: 'hang.ts' });
    expect(r.error?.message).toBe('the script stopped answering for more than 400 ms (the timeout of test "slow"); the sim worker was restarted');
  });

  it('a budget that would switch the watchdog off (Infinity) leaves the run timeout in force', async () => {
    host = await SessionHost.create({ worker: fakeWorker, watchdogGraceMs: 200 });
    const t0 = Date.now();
    const r = await host.runScript({ source: 'hang-in-test Infinity', fileName: 'hang.ts', timeoutMs: 300 });
    expect(r.error?.message).toMatch(/stopped answering for more than 300 ms/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it("two runs at once: one run's short timeout does not kill the other", async () => {
    host = await SessionHost.create({ worker: fakeWorker, watchdogGraceMs: 200 });
    const [long, short] = await Promise.all([
      host.runScript({ source: 'sleep 1500', fileName: 'long.ts', timeoutMs: 5000 }),
      host.runScript({ source: 'sleep 1500', fileName: 'short.ts', timeoutMs: 200 }),
    ]);
    expect([long.ok, short.ok, host.restartCount]).toEqual([true, true, 0]);
  });

  it('a config load that hangs is killed and reported against the file', async () => {
    host = await SessionHost.create({ worker: fakeWorker, watchdogGraceMs: 200, defaultTimeoutMs: 300 });
    const r = await host.loadConfig('{"hang": true}', 'slow.soc.json');
    expect(r).toEqual({ ok: false, errors: [{ file: 'slow.soc.json', path: '', message: 'loading the config did not finish within 300 ms; the sim worker was restarted' }] });
    expect((await host.listBlocks())[0]!.name).toBe('iommu0');
  });

  it('a worker that dies as it starts is restarted with back-off, then given up with the reason', async () => {
    host = await SessionHost.create({ worker: { ts: new URL('../fixtures/dying-worker.ts', import.meta.url) } });
    const reasons: string[] = [];
    host.onEvent((e) => e.type === 'worker-restarted' && reasons.push(e.reason));
    await waitFor(() => reasons.some((r) => r.includes('not restarted again')), 30_000);
    expect(host.restartCount).toBe(3);
    await expect(host.listBlocks()).rejects.toThrow(/^the sim worker failed to start 4 times in a row \(last: the sim worker crashed: no engine here\); it is not restarted again$/);
    await new Promise((r) => setTimeout(r, 500));
    expect(host.restartCount).toBe(3);
  });
});
