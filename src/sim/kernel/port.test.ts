import { describe, expect, it } from 'vitest';
import { runOp } from '../core/coop';
import { targetPort, type PortTarget } from './port';

/** A target over a Map of 32-bit words that records every call. */
function fakeTarget(): PortTarget & { words: Map<number, number>; log: string[]; cycles: number } {
  const words = new Map<number, number>();
  const log: string[] = [];
  const t = {
    words,
    log,
    cycles: 0,
    read32: (pa: number) => {
      log.push(`r ${pa.toString(16)}`);
      return words.get(pa) ?? 0;
    },
    write32: (pa: number, v: number) => {
      log.push(`w ${pa.toString(16)}=${v.toString(16)}`);
      words.set(pa, v);
    },
    clean: (pa: number, len: number) => log.push(`clean ${pa.toString(16)}+${len}`),
    invalidate: (pa: number, len: number) => log.push(`inv ${pa.toString(16)}+${len}`),
    tick: (c: number) => {
      t.cycles += c;
    },
  };
  return t;
}

describe('targetPort accesses', () => {
  it('stop at one preemption point naming the access, and touch memory only after it', () => {
    const t = fakeTarget();
    const op = targetPort(t, 'cpu1').write32(0x1000, 0xdead);
    const first = op.next();
    expect(first).toEqual({ value: { kind: 'mem-write', pa: 0x1000, who: 'cpu1' }, done: false });
    expect(t.log).toEqual([]);
    expect(op.next()).toEqual({ value: undefined, done: true });
    expect(t.log).toEqual(['w 1000=dead']);
    // Finished for good, as a generator would be.
    expect(op.next()).toEqual({ value: undefined, done: true });
    expect(t.log).toHaveLength(1);
  });

  it('compose with yield* like generators', () => {
    const port = targetPort(fakeTarget());
    function* body() {
      yield* port.write32(0x10, 5);
      return (yield* port.read32(0x10)) + 1;
    }
    const points: string[] = [];
    const op = body();
    let r = op.next();
    while (!r.done) {
      points.push(r.value.kind);
      r = op.next();
    }
    expect(points).toEqual(['mem-write', 'mem-read']);
    expect(r.value).toBe(6);
  });

  it('return() abandons an access before it lands', () => {
    const t = fakeTarget();
    const op = targetPort(t).write32(0x20, 1);
    op.next();
    expect(op.return(undefined)).toEqual({ value: undefined, done: true });
    expect(op.next().done).toBe(true);
    expect(t.words.size).toBe(0);
  });

  it('64-bit values split little-endian, high bits and zero included', () => {
    const t = fakeTarget();
    const port = targetPort(t);
    for (const v of [0n, 0x1234n, 0x001f_ffff_ffff_f000n, 0x8060_0000_4000_0f43n, 0xffff_ffff_ffff_ffffn]) {
      runOp(port.write64(0x100, v));
      expect([t.words.get(0x100), t.words.get(0x104)]).toEqual([Number(v & 0xffffffffn), Number(v >> 32n)]);
      expect(runOp(port.read64(0x100))).toBe(v);
    }
  });

  it('cmpxchg stores only over the expected value and returns what it found', () => {
    const t = fakeTarget();
    const port = targetPort(t);
    runOp(port.write64(0x200, 7n));
    expect(runOp(port.cmpxchg64(0x200, 6n, 9n))).toBe(7n);
    expect(runOp(port.read64(0x200))).toBe(7n);
    expect(runOp(port.cmpxchg64(0x200, 7n, 1n << 63n))).toBe(7n);
    expect(runOp(port.read64(0x200))).toBe(1n << 63n);
    runOp(port.write32(0x300, 0xffffffff));
    expect(runOp(port.cmpxchg32(0x300, -1, 3))).toBe(0xffffffff);
    expect(t.words.get(0x300)).toBe(3);
    expect(runOp(port.cmpxchg32(0x300, 4, 5))).toBe(3);
    expect(t.words.get(0x300)).toBe(3);
  });

  it('MMIO accesses and delays cost simulated time; cache maintenance goes straight through', () => {
    const t = fakeTarget();
    const port = targetPort(t);
    runOp(port.writel(1, 0x9000));
    runOp(port.readl(0x9000));
    expect(t.cycles).toBe(40);
    const d = port.delay(100);
    expect(d.next().value).toEqual({ kind: 'yield', who: 'cpu0' });
    expect(t.cycles).toBe(40);
    d.next();
    expect(t.cycles).toBe(140);
    port.cleanDcache(0x100, 64);
    port.invalidateDcache(0x200, 32);
    expect(t.log.slice(-2)).toEqual(['clean 100+64', 'inv 200+32']);
  });
});
