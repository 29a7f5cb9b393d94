import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkArgs, checkedApi, signatureOf } from './api-args';
import { parseConfig } from './config/validate';
import { Soc } from './soc';
import { createSocBindings } from './soc-api';

function h6(): Soc {
  const file = 'resources/socs/sun50i-h6.soc.json';
  const r = parseConfig(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return new Soc(r.config, 1);
}

/** Every function path of an API tree, results of calls included (called with a real name). */
function paths(prefix: string, v: unknown, sample: Record<string, unknown[]>): string[] {
  if (typeof v === 'function') {
    const args = sample[prefix];
    if (!args) return [prefix];
    return [prefix, ...paths(`${prefix}()`, (v as (...a: unknown[]) => unknown)(...args), sample)];
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => paths(`${prefix}.${k}`, x, sample));
}

describe('script API argument checks', () => {
  it('every function of soc and kernel has a signature', () => {
    const soc = h6();
    const sample = { 'soc.iommu': ['iommu0'], 'soc.device': ['de'], 'kernel.driver': ['iommu0'] };
    const all = [...paths('soc', createSocBindings(soc), sample), ...paths('kernel', soc.kernel.api, sample)];
    expect(all.length).toBeGreaterThan(60);
    expect(all.filter((p) => !signatureOf(p))).toEqual([]);
  });

  it.each([
    ['kernel.allocPages', [-1], 'kernel.allocPages: argument 1 (count) must be a positive integer, got -1'],
    ['kernel.allocPages', [NaN], 'kernel.allocPages: argument 1 (count) must be a positive integer, got NaN'],
    ['kernel.allocPages', [1.5], 'kernel.allocPages: argument 1 (count) must be a positive integer, got 1.5'],
    ['soc.writel', [NaN, 0x1000], 'soc.writel: argument 1 (value) must be a 32-bit integer (-0x80000000 to 0xffffffff), got NaN'],
    ['soc.writel', ['1', 0x1000], 'soc.writel: argument 1 (value) must be a 32-bit integer (-0x80000000 to 0xffffffff), got "1"'],
    ['soc.setReg', ['iommu0', 'TTB', {}], 'soc.setReg: argument 3 (value) must be a 32-bit integer (-0x80000000 to 0xffffffff), got an object'],
    ['soc.readl', [-4], 'soc.readl: argument 1 (pa) must be a non-negative integer address (number or bigint), got -4'],
    ['kernel.map', [{ id: 1 }, 0, 0, 4096], 'kernel.map: argument 5 (prot) must be a non-negative integer, got undefined'],
    ['kernel.dma.mapSingle', ['de', 0, 4096, 'up'], "kernel.dma.mapSingle: argument 4 (dir) must be one of 'to-device', 'from-device', 'bidirectional', got \"up\""],
    ['soc.mem.write', [0, [1, 256]], 'soc.mem.write: argument 2 (bytes) must be a Uint8Array or an array of integers from 0 to 255, got an array of 2'],
    ['soc.now', [1], 'soc.now: takes 0 arguments, got 1'],
  ])('%s(%j) is refused', (path, args, message) => {
    expect(() => checkArgs(path, signatureOf(path)!, args)).toThrow(new TypeError(message));
  });

  it('accepts what the API documents: bigint addresses, negative int32 register values, optional arguments', () => {
    expect(() => checkArgs('soc.writel', signatureOf('soc.writel')!, [-1, 0x1_0000_0000n])).not.toThrow();
    expect(() => checkArgs('kernel.allocPages', signatureOf('kernel.allocPages')!, [])).not.toThrow();
    expect(() => checkArgs('kernel.domainAlloc', signatureOf('kernel.domainAlloc')!, ['iommu0'])).not.toThrow();
  });

  it('checks calls on the objects calls return; calls that return promises reject', async () => {
    const soc = h6();
    const kernel = checkedApi('kernel', soc.kernel.api);
    expect(() => kernel.driver('iommu0').setVariant(7 as never)).toThrow('kernel.driver().setVariant: argument 1 (changes) must be an object, got 7');
    const api = checkedApi('soc', createSocBindings(soc));
    await expect(api.device('de').dma.read(-1, 4)).rejects.toThrow('soc.device().dma.read: argument 1 (iova) must be');
  });

  it('allocPages of more than a MAX_ORDER block fails with ENOMEM instead of looping', async () => {
    const kernel = checkedApi('kernel', h6().kernel.api);
    await expect(kernel.allocPages(262145)).rejects.toThrow(/ENOMEM/);
    await expect(kernel.allocPages(2 ** 40)).rejects.toThrow(/ENOMEM/);
  });
});
