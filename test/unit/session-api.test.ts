import { describe, expect, it } from 'vitest';
import { decodeJson, encodeJson, SESSION_METHODS, validateCall } from '../../src/shared/session-api';

describe('session API call validation (IPC and WebSocket)', () => {
  it('accepts well-formed calls', () => {
    expect(validateCall('listBlocks', [])).toBeNull();
    expect(validateCall('writeRegister', ['iommu0', 'TTB', 0x40000000])).toBeNull();
    expect(validateCall('runScript', [{ source: 'test("a", () => {})', fileName: 'a.ts', seed: 3 }])).toBeNull();
  });

  it('rejects unknown methods, including prototype names', () => {
    expect(validateCall('constructor', [])).toMatch(/unknown method/);
    expect(validateCall('__proto__', [])).toMatch(/unknown method/);
    expect(validateCall(42, [])).toMatch(/unknown method/);
  });

  it('rejects wrong arity and wrong argument types', () => {
    expect(validateCall('readRegister', ['iommu0'])).toMatch(/expected 2/);
    expect(validateCall('writeRegister', ['iommu0', 'TTB', -1])).toMatch(/argument 3/);
    expect(validateCall('writeRegister', ['iommu0', 'TTB', 2 ** 32])).toMatch(/argument 3/);
    expect(validateCall('readMemory', [0, 1 << 21, 'cpu'])).toMatch(/argument 2/);
    expect(validateCall('readMemory', [0, 16, 'gpu'])).toMatch(/argument 3/);
    expect(validateCall('runScript', [{ source: 1, fileName: 'a.ts' }])).toMatch(/argument 1/);
    expect(validateCall('runScript', [{ source: '', fileName: 'a.ts', timeoutMs: -5 }])).toMatch(/argument 1/);
    expect(validateCall('listBlocks', 'nope')).toMatch(/expected 0/);
  });

  it('refuses explore worker counts and timeouts that are not numbers in range', () => {
    const req = { source: 'test("a", () => {})', fileName: 'a.ts' };
    expect(validateCall('runScript', [{ ...req, exploreWorkers: 2 }])).toBeNull();
    for (const exploreWorkers of [1e9, 'lots', -5, 0, 1.5, NaN]) expect(validateCall('runScript', [{ ...req, exploreWorkers }])).toMatch(/argument 1/);
    expect(validateCall('runScript', [{ ...req, timeoutMs: 3_600_000 }])).toBeNull();
    for (const timeoutMs of [Infinity, 2 ** 31, NaN, -1, 0, '100']) expect(validateCall('runScript', [{ ...req, timeoutMs }])).toMatch(/argument 1/);
    expect(validateCall('replayTo', [{ ...req, timeoutMs: Infinity, call: { test: 0, ordinal: 0 }, schedule: [], steps: 0 }])).toMatch(/argument 1/);
  });

  it('validates replayTo requests', () => {
    const req = { source: 'test("a", () => {})', fileName: 'a.ts', seed: 1, call: { test: 0, ordinal: 0 }, schedule: [0, 1, 1], steps: 3 };
    expect(validateCall('replayTo', [req])).toBeNull();
    expect(validateCall('replayTo', [{ ...req, call: { test: -1, ordinal: 2 } }])).toBeNull();
    expect(validateCall('replayTo', [{ ...req, call: { test: -2, ordinal: 0 } }])).toMatch(/argument 1/);
    expect(validateCall('replayTo', [{ ...req, call: null }])).toMatch(/argument 1/);
    expect(validateCall('replayTo', [{ ...req, schedule: [0, -1] }])).toMatch(/argument 1/);
    expect(validateCall('replayTo', [{ ...req, schedule: '0,1' }])).toMatch(/argument 1/);
    expect(validateCall('replayTo', [{ ...req, steps: 1.5 }])).toMatch(/argument 1/);
    expect(validateCall('replayTo', [{ ...req, source: 3 }])).toMatch(/argument 1/);
  });

  it('validates the console view methods', () => {
    expect(validateCall('touchedFrames', [0, 2 ** 32])).toBeNull();
    expect(validateCall('touchedFrames', [0, 2 ** 41])).toMatch(/argument 2/);
    expect(validateCall('dirtyLines', [-1, 64])).toMatch(/argument 1/);
    expect(validateCall('inspectIommu', ['iommu0'])).toBeNull();
    expect(validateCall('inspectIommu', [''])).toMatch(/argument 1/);
    expect(validateCall('traceWindow', [0, 1e9, 20_000])).toBeNull();
    expect(validateCall('traceWindow', [0, Infinity, 10])).toMatch(/argument 2/);
    expect(validateCall('traceWindow', [0, 10, 0])).toMatch(/argument 3/);
    expect(validateCall('traceWindow', [0, 10, 1.5])).toMatch(/argument 3/);
    expect(validateCall('perfettoTrace', [])).toBeNull();
    expect(validateCall('configSchema', [1])).toMatch(/expected 0/);
  });

  it('every method has a validator', () => {
    expect(Object.keys(SESSION_METHODS).length).toBeGreaterThan(10);
  });

  it('round-trips bytes and bigints through the JSON codec', () => {
    const v = { a: new Uint8Array([0, 1, 255]), b: 1n << 40n, c: [1, 'x'] };
    expect(decodeJson(encodeJson(v))).toEqual(v);
  });
});
