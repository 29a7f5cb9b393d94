/**
 * The driving loop of the bit-exact descriptor property tests (io-pgtable-arm-*.descriptors.test.ts):
 * per configuration, fast-check runs of OPS_PER_RUN random operations, then a check that the whole
 * suite ran at least 10^5 operations and reached every named kind of outcome.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

export const OPS_PER_RUN = 400;

export function describeBitExact<C, O>(
  title: string,
  configs: [string, C, number][],
  opArb: fc.Arbitrary<O>,
  /** Runs ops on a fresh table of configuration c, checking each step; returns the operations done. */
  run: (c: C, ops: O[]) => number,
  /** Outcome kind → times reached, filled by run. */
  seen: ReadonlyMap<string, number>,
  outcomes: string[],
): void {
  describe(title, () => {
    let total = 0;
    for (const [name, c, runs] of configs) {
      it(`${name}: ${runs} runs of ${OPS_PER_RUN} random operations`, () => {
        fc.assert(
          fc.property(fc.array(opArb, { minLength: OPS_PER_RUN, maxLength: OPS_PER_RUN }), (ops) => {
            total += run(c, ops);
          }),
          { numRuns: runs },
        );
      });
    }
    it('ran at least 10^5 operations and reached every kind of outcome', () => {
      expect(total).toBeGreaterThanOrEqual(100_000);
      for (const k of outcomes) expect(seen.get(k) ?? 0, k).toBeGreaterThan(0);
    });
  });
}
