/**
 * Test reports for one or more script runs: pretty (people), TAP version 13 and JUnit XML (CI).
 * Pure functions of the results, so every transport (CLI, UI export) reports the same way.
 */
import type { Finding } from '../core/findings';
import type { ScriptError, ScriptRunResult, TestResult } from '../../shared/session-api';

export type ReporterName = 'pretty' | 'tap' | 'junit';
export const REPORTERS: readonly ReporterName[] = ['pretty', 'tap', 'junit'];

export interface FileRun {
  /** The script file as the user named it. */
  file: string;
  result: Omit<ScriptRunResult, 'runId'>;
}

export function report(name: ReporterName, runs: FileRun[]): string {
  switch (name) {
    case 'pretty':
      return prettyReport(runs);
    case 'tap':
      return tapReport(runs);
    case 'junit':
      return junitReport(runs);
  }
}

const where = (e: ScriptError): string => (e.line !== undefined ? `${e.file}:${e.line}${e.column !== undefined ? `:${e.column}` : ''}` : e.file);
const ms = (n: number): string => `${Math.round(n)} ms`;
const findingLine = (f: Finding): string => `${f.severity} ${f.kind}: ${f.message}`;
const indent = (text: string, pad: string): string =>
  text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');

function counts(runs: FileRun[]): { passed: number; failed: number; broken: number } {
  const tests = runs.flatMap((r) => r.result.tests);
  const passed = tests.filter((t) => t.status === 'passed').length;
  return { passed, failed: tests.length - passed, broken: runs.filter((r) => r.result.error).length };
}

export function prettyReport(runs: FileRun[]): string {
  const out: string[] = [];
  for (const { file, result } of runs) {
    out.push(file);
    for (const t of result.tests) {
      out.push(`  ${t.status === 'passed' ? '✓' : '✗'} ${t.fullName} (${ms(t.durationMs)})`);
      if (t.error) {
        out.push(indent(t.error.message, '      '));
        out.push(`      at ${where(t.error)}`);
      }
      if (t.findings.length > 0) {
        out.push('      findings:');
        for (const f of t.findings) out.push(`        ${findingLine(f)}`);
      }
    }
    if (result.error) {
      out.push(`  ✗ ${result.tests.length === 0 ? 'the script did not load' : 'the run did not finish'}`);
      out.push(indent(result.error.message, '      '));
      out.push(`      at ${where(result.error)}`);
    }
  }
  const c = counts(runs);
  const total = runs.reduce((s, r) => s + r.result.durationMs, 0);
  const parts = [`${c.passed} passed`, `${c.failed} failed`];
  if (c.broken > 0) parts.push(`${c.broken} script${c.broken > 1 ? 's' : ''} with errors`);
  out.push('', `${parts.join(', ')} (${runs.length} file${runs.length === 1 ? '' : 's'}, ${ms(total)})`);
  return out.join('\n') + '\n';
}

/** A YAML double-quoted scalar (JSON strings are valid ones). */
const yamlStr = (s: string): string => JSON.stringify(s);

/** A test point's description on one line: '#' would start a directive, a line break a new point. */
const tapName = (name: string): string => name.replace(/#/g, '\\#').replace(/\r/g, '\\r').replace(/\n/g, '\\n');

export function tapReport(runs: FileRun[]): string {
  const points: { ok: boolean; name: string; error?: ScriptError; findings: Finding[] }[] = [];
  for (const { file, result } of runs) {
    for (const t of result.tests) points.push({ ok: t.status === 'passed', name: `${file} > ${t.fullName}`, error: t.error, findings: t.findings });
    if (result.error) points.push({ ok: false, name: `${file} (script)`, error: result.error, findings: [] });
  }
  const out = ['TAP version 13', `1..${points.length}`];
  points.forEach((p, i) => {
    out.push(`${p.ok ? 'ok' : 'not ok'} ${i + 1} - ${tapName(p.name)}`);
    if (!p.error && p.findings.length === 0) return;
    out.push('  ---');
    if (p.error) {
      out.push(`  message: ${yamlStr(p.error.message)}`);
      out.push(`  at: ${yamlStr(where(p.error))}`);
    }
    if (p.findings.length > 0) {
      out.push('  findings:');
      for (const f of p.findings) out.push(`    - ${yamlStr(findingLine(f))}`);
    }
    out.push('  ...');
  });
  return out.join('\n') + '\n';
}

const xml = (s: string): string =>
  // Characters XML 1.0 cannot carry at all are dropped.
  s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '').replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
const secs = (n: number): string => (n / 1000).toFixed(3);

function testcase(file: string, t: TestResult): string {
  const open = `    <testcase classname="${xml(file)}" name="${xml(t.fullName)}" time="${secs(t.durationMs)}"`;
  const findings = t.findings.length > 0 ? `\n      <system-out>${xml(t.findings.map(findingLine).join('\n'))}</system-out>` : '';
  if (!t.error) return findings ? `${open}>${findings}\n    </testcase>` : `${open}/>`;
  const body = `${t.error.message}\n    at ${where(t.error)}${t.error.stack ? `\n${t.error.stack}` : ''}`;
  return `${open}>\n      <failure message="${xml(t.error.message)}">${xml(body)}</failure>${findings}\n    </testcase>`;
}

export function junitReport(runs: FileRun[]): string {
  const c = counts(runs);
  const total = runs.reduce((s, r) => s + r.result.durationMs, 0);
  const suites = runs.map(({ file, result }) => {
    const failed = result.tests.filter((t) => t.status === 'failed').length;
    const cases = result.tests.map((t) => testcase(file, t));
    if (result.error) {
      const e = result.error;
      cases.push(`    <testcase classname="${xml(file)}" name="(script)" time="0">\n      <error message="${xml(e.message)}">${xml(`${e.message}\n    at ${where(e)}`)}</error>\n    </testcase>`);
    }
    const head = `  <testsuite name="${xml(file)}" tests="${cases.length}" failures="${failed}" errors="${result.error ? 1 : 0}" time="${secs(result.durationMs)}">`;
    return [head, ...cases, '  </testsuite>'].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="soc-console" tests="${c.passed + c.failed + c.broken}" failures="${c.failed}" errors="${c.broken}" time="${secs(total)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}
