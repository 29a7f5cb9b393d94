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
});
