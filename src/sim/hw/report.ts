import type { FindingSink } from '../core/findings';
import type { RegisterHooks } from '../regs/dsl';

/**
 * The register DSL's reserved-write hook as every model reports it: a warning naming the block,
 * the register, the value and the bits that may not be set (`what` says why, e.g. read-only too).
 */
export function reservedWriteReporter(findings: FindingSink, block: () => string, what = 'reserved'): NonNullable<RegisterHooks['onReservedWrite']> {
  return (r, written, bits) =>
    findings.report({
      kind: 'reserved-bits',
      severity: 'warning',
      message: `${block()}: wrote 0x${written.toString(16)} to ${r.name}: bits 0x${bits.toString(16)} are ${what}`,
      where: { block: block(), reg: r.name },
    });
}
