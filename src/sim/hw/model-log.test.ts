import { describe, expect, it } from 'vitest';
import { Clock } from '../core/clock';
import { Trace } from '../core/trace';
import { ModelLog } from './model-log';
import type { Fault, HwContext } from './types';

function rig(): { log: ModelLog; clock: Clock; trace: Trace } {
  const clock = new Clock();
  const trace = new Trace();
  const ctx = { clock, trace } as unknown as HwContext;
  return { log: new ModelLog(ctx, 'iommu0'), clock, trace };
}

const fault = (iova: number, time = 0): Fault => ({ iova, master: 've', access: 'read', reason: 'pte-invalid', time, iommu: 'iommu0' });

describe('ModelLog', () => {
  it('traces a fault after the eviction batches that came before it', () => {
    const { log, clock, trace } = rig();
    const micro = log.evictions('micro0');
    micro.note(0x1000);
    micro.note(0x2000);
    clock.tick(10);
    log.fault(fault(0x3000, clock.now()), { iova: '0x3000' });
    expect(trace.events().map((e) => [e.cat, e.name, e.args])).toEqual([
      ['inval', 'evict', { level: 'micro0', count: 2, lastIova: 0x2000 }],
      ['fault', 'pte-invalid', { iova: '0x3000' }],
    ]);
  });

  it('keeps the latest 4096 faults, as copies, and restores them', () => {
    const { log } = rig();
    for (let i = 0; i < 4100; i++) log.fault(fault(i), {});
    const kept = log.faults();
    expect(kept).toHaveLength(4096);
    expect(kept[0]!.iova).toBe(4);
    kept[0]!.iova = -1;
    expect(log.faults()[0]!.iova).toBe(4);
    log.restoreFaults([fault(7)]);
    expect(log.faults().map((f) => f.iova)).toEqual([7]);
  });
});
