import { relative } from 'node:path';
import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';

/** The closing counts of a run, and the files that failed without a failed test to show for it. */
export interface Summary {
  passed: number;
  failed: number;
  skipped: number;
  /** "file: why" for every file that failed to load, or whose hooks failed, with no failed test. */
  failedFiles: string[];
}

/**
 * Counts a run so that a red run never reads "0 failed": a file that fails to load or whose
 * beforeAll throws (its tests then show as skipped) counts as one failure, named; an unhandled
 * error counts as one; a run vitest ends as failed with nothing else counted counts as one.
 */
export function summarize(modules: ReadonlyArray<TestModule>, unhandledErrors: number, reason: TestRunEndReason, root: string): Summary {
  const s: Summary = { passed: 0, failed: unhandledErrors, skipped: 0, failedFiles: [] };
  for (const m of modules) {
    let failedTests = 0;
    for (const t of m.children.allTests()) {
      const state = t.result().state;
      if (state === 'passed') s.passed++;
      else if (state === 'failed') failedTests++;
      else s.skipped++;
    }
    s.failed += failedTests;
    if (m.state() === 'failed' && failedTests === 0) {
      s.failed++;
      const why = m.errors()[0]?.message ?? [...m.children.allSuites()].flatMap((x) => x.errors())[0]?.message ?? 'failed';
      s.failedFiles.push(`${relative(root, m.moduleId)}: ${why.split('\n')[0]}`);
    }
  }
  if (reason === 'failed' && s.failed === 0) {
    s.failed = 1;
    s.failedFiles.push('(vitest ended the run as failed without naming a test)');
  }
  return s;
}

/** Ends the run with one plain line, "N passed, N failed, N skipped", that any CI can read. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>, reason: TestRunEndReason): void {
    const s = summarize(testModules, unhandledErrors.length, reason, process.cwd());
    const named = s.failedFiles.map((f) => `failed to run: ${f}\n`).join('');
    process.stdout.write(`\n${named}vitest: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped\n`);
  }
}
