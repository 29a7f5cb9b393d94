import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/validate';
import { Soc } from '../../soc';
import { VARIANT_CHOICES, variantProblem } from './variant';

const PRESETS = readdirSync('resources/socs').filter((f) => f.endsWith('.soc.json'));

describe('driver variants', () => {
  it.each(PRESETS)('%s: every string variant has its allowed values listed, its default among them', (file) => {
    const path = `resources/socs/${file}`;
    const r = parseConfig(readFileSync(path, 'utf8'), path);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const soc = new Soc(r.config, 1);
    for (const iommu of soc.iommus()) {
      const v = soc.kernel.api.driver(iommu).variant;
      for (const [k, x] of Object.entries(v)) if (typeof x === 'string') expect(VARIANT_CHOICES[k], `${iommu}.${k}`).toContain(x);
    }
  });

  it('names the key and the allowed keys or values', () => {
    const cur = { zapOrder: 'after-update', splitLock: true };
    expect(variantProblem('mmu', cur, 'nope', 1)).toBe("mmu: the driver has no variant 'nope' (its variants: zapOrder, splitLock)");
    expect(variantProblem('mmu', cur, 'zapOrder', 'befor-update')).toBe("mmu: variant zapOrder must be one of 'after-update', 'before-update', got \"befor-update\"");
    expect(variantProblem('mmu', cur, 'splitLock', 'yes')).toBe('mmu: variant splitLock must be true or false, got "yes"');
    expect(variantProblem('mmu', cur, 'zapOrder', 'before-update')).toBeNull();
    expect(variantProblem('mmu', cur, 'toString', true)).toMatch(/no variant 'toString'/);
  });

  it('a live variant assignment takes effect on the driver; a bad one changes nothing', () => {
    const path = 'resources/socs/sun50i-h6.soc.json';
    const r = parseConfig(readFileSync(path, 'utf8'), path);
    if (!r.ok) throw new Error('config');
    const k = new Soc(r.config, 1).kernel.api;
    const v = k.driver('iommu0').variant;
    v.flushTables = false;
    expect(k.driver('iommu0').variant.flushTables).toBe(false);
    expect(() => k.driver('iommu0').setVariant({ detachBeforeFree: true, flushTables: 'x' })).toThrow(TypeError);
    expect(k.driver('iommu0').variant).toEqual({
      flushTables: false,
      detachBeforeFree: false,
      programInResumeOnly: false,
      invalidateOnSwitch: true,
      leaveDomain: 'refcount',
      mapBeforeAttach: 'oops',
    });
  });
});
