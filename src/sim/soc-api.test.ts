import { expect, test } from 'vitest';
import { createSocBindings } from './soc-api';
import { h6Soc } from './hw/h6-test-kit';

// Run the example driver script against the real bindings, with Vitest's test/expect as the globals.
const g = globalThis as Record<string, unknown>;
g.soc = createSocBindings(h6Soc());
g.test = test;
g.expect = expect;
// A computed path: the script is checked against the generated script-API types, not this project's.
const example = new URL('../../resources/examples/h6-registers.ts', import.meta.url).href;
await import(/* @vite-ignore */ example);

test('bindings return plain data and validate addresses', async () => {
  const soc = createSocBindings(h6Soc());
  expect(soc.iommus()).toEqual(['iommu0']);
  expect(soc.device('ve_r')).toMatchObject({ name: 've_r', iommu: 'iommu0' });
  expect(soc.iommu('iommu0')).toMatchObject({ name: 'iommu0', model: 'sun50i-h6' });
  expect(await soc.readl(0x030f0000n)).toBe(0x10);
  await soc.mem.write(0x4000_0000, [1, 2, 3]);
  expect(await soc.mem.read(0x4000_0000, 3)).toEqual(Uint8Array.of(1, 2, 3));
  await expect(soc.mem.read(0x1000, 4)).rejects.toThrow(/not RAM/);
  await expect(soc.readl(-4)).rejects.toThrow(/bad address/);
  await soc.run(10);
  expect(soc.now()).toBeGreaterThanOrEqual(10);
  await soc.setPower('pd_iommu', false);
  expect(soc.blocks().find((b) => b.name === 'iommu0')?.powered).toBe(false);
});
