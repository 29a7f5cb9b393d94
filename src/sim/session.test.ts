import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../shared/session-api';
import { Session } from './session';

function session(): { s: Session; events: SessionEvent[] } {
  const events: SessionEvent[] = [];
  const s = new Session({ emit: (e) => events.push(e), heartbeat: () => undefined });
  const file = 'resources/socs/sun50i-h6.soc.json';
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
});
