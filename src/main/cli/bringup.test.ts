/**
 * The CLI against an in-process stand-in for the session host: the real script runtime with a
 * fake `soc`, and a config loader that only checks a name. (The host and worker are tested with
 * the engine; here the CLI's options, exit codes and reports are.)
 */
import { describe, expect, it } from 'vitest';
import type { LoadConfigResult, ScriptError, ScriptRunRequest, ScriptRunResult, SessionEvent } from '../../shared/session-api';
import { runScript } from '../../sim/script/run';
import { transpileScript } from '../../sim/script/transpile';
import { scriptApiDts } from '../../sim/script/api-types';
import { bringup, type CliDeps, type CliSession } from './bringup';

class FakeHost implements CliSession {
  private listeners = new Set<(e: SessionEvent) => void>();
  private runId = 0;
  disposed = false;

  async loadConfig(text: string, file: string): Promise<LoadConfigResult> {
    const cfg = JSON.parse(text) as { name?: unknown };
    if (typeof cfg.name !== 'string') return { ok: false, errors: [{ file, path: '/name', message: 'must be a string', line: 2 }] };
    return { ok: true, name: cfg.name, file };
  }

  async runScript(req: ScriptRunRequest): Promise<ScriptRunResult> {
    const runId = ++this.runId;
    const out = await runScript({
      source: req.source,
      fileName: req.fileName,
      timeoutMs: req.timeoutMs,
      bindings: { soc: { readl: async (pa: number) => pa, now: () => req.seed ?? 0, kernelMode: () => req.kernel ?? 'default' } },
      onOutput: (stream, text) => this.listeners.forEach((l) => l({ type: 'output', runId, stream, text })),
    });
    return { runId, ...out };
  }

  async checkScript(source: string, fileName: string): Promise<ScriptError | null> {
    const t = transpileScript(source, fileName);
    return t.ok ? null : t.error;
  }

  async scriptTypes(): Promise<string> {
    return scriptApiDts([]);
  }

  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

const GOOD_SOC = '{\n  "name": "test-soc"\n}';
const PASSING = `import { test, expect, soc } from 'soc-console';\ntest('reads', async () => { expect(await soc.readl(4)).toBe(4); console.log('hello'); });\n`;
const FAILING = `test('ok', () => {});\ndescribe('grp', () => {\n  test('bad', async () => {\n    expect(await soc.readl(4)).toBe(5);\n  });\n});\n`;

async function cli(argv: string[], files: Record<string, string> = {}) {
  const written: Record<string, string> = {};
  let stdout = '';
  let stderr = '';
  const host = new FakeHost();
  const deps: CliDeps = {
    createSession: async () => host,
    readFile: async (p) => {
      if (!(p in files)) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return files[p]!;
    },
    writeFile: async (p, text) => void (written[p] = text),
    isDirectory: async (p) => p === '.' || p === 'out',
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
  };
  const code = await bringup(argv, deps);
  return { code, stdout, stderr, written, host };
}

describe('bringup CLI', () => {
  it('exits 0 when every test passes, with a pretty report on stdout and script output on stderr', async () => {
    const r = await cli(['--soc', 'h6.soc.json', 'a.ts'], { 'h6.soc.json': GOOD_SOC, 'a.ts': PASSING });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^a\.ts\n {2}✓ reads \(\d+ ms\)\n\n1 passed, 0 failed \(1 file, \d+ ms\)\n$/);
    expect(r.stderr).toBe('[a.ts] hello\n');
    expect(r.host.disposed).toBe(true);
  });

  it('exits 1 when a test fails, naming the failure and where it is', async () => {
    const r = await cli(['--soc', 'h6.soc.json', 'a.ts', 'b.ts'], { 'h6.soc.json': GOOD_SOC, 'a.ts': PASSING, 'b.ts': FAILING });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('  ✗ grp > bad');
    expect(r.stdout).toContain('      expected 4 to be 5\n      at b.ts:4:36\n');
    expect(r.stdout).toContain('2 passed, 1 failed (2 files');
  });

  it('reports an endless loop as stopped at its timeout, exit 1', async () => {
    const r = await cli(['--soc', 'h6.soc.json', '--timeout', '150', 'loop.ts'], { 'h6.soc.json': GOOD_SOC, 'loop.ts': `test('spins', () => {\n  for (;;) {}\n});\n` });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('test "spins" was stopped at its 150 ms timeout while running without a pause (an endless loop?)');
  });

  it('writes TAP version 13', async () => {
    const r = await cli(['--soc', 'h6.soc.json', '--reporter', 'tap', 'b.ts'], { 'h6.soc.json': GOOD_SOC, 'b.ts': FAILING });
    expect(r.stdout).toBe(
      ['TAP version 13', '1..2', 'ok 1 - b.ts > ok', 'not ok 2 - b.ts > grp > bad', '  ---', '  message: "expected 4 to be 5"', '  at: "b.ts:4:36"', '  ...', ''].join('\n'),
    );
  });

  it('TAP keeps a test name with line breaks on its one line', async () => {
    const r = await cli(['--soc', 'h6.soc.json', '--reporter', 'tap', 'n.ts'], { 'h6.soc.json': GOOD_SOC, 'n.ts': `test('two\\nok 2 - lines # x', () => {});\n` });
    expect(r.stdout).toBe(['TAP version 13', '1..1', 'ok 1 - n.ts > two\\nok 2 - lines \\# x', ''].join('\n'));
  });

  it('writes JUnit XML to --out and the types to --emit-types', async () => {
    const r = await cli(['--soc', 'h6.soc.json', '--reporter', 'junit', '--out', 'report.xml', '--emit-types', 'soc-console.d.ts', 'b.ts'], {
      'h6.soc.json': GOOD_SOC,
      'b.ts': FAILING,
    });
    expect(r.stdout).toBe('');
    const x = r.written['report.xml']!;
    expect(x).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="soc-console" tests="2" failures="1" errors="0"/);
    expect(x).toContain('<testsuite name="b.ts" tests="2" failures="1" errors="0"');
    expect(x).toContain('<testcase classname="b.ts" name="grp &gt; bad"');
    expect(x).toContain('<failure message="expected 4 to be 5">');
    expect(r.written['soc-console.d.ts']).toContain("declare module 'soc-console'");
  });

  it('passes --seed to the run', async () => {
    const r = await cli(['--soc', 'h6.soc.json', '--seed', '42', 's.ts'], { 'h6.soc.json': GOOD_SOC, 's.ts': `test('seed', () => { expect(soc.now()).toBe(42); });` });
    expect(r.code).toBe(0);
  });

  it('passes --kernel to the run', async () => {
    const r = await cli(['--soc', 'h6.soc.json', '--kernel', 'none', 's.ts'], { 'h6.soc.json': GOOD_SOC, 's.ts': `test('mode', () => { expect((soc as any).kernelMode()).toBe('none'); });` });
    expect(r.code).toBe(0);
  });

  describe('bad input exits 2 with a message naming what is wrong', () => {
    const files = { 'h6.soc.json': GOOD_SOC, 'a.ts': PASSING };
    it.each([
      [['--soc', 'h6.soc.json', '--colour', 'a.ts'], /Unknown option '--colour'/],
      [['a.ts'], /--soc <config\.soc\.json> is required/],
      [['--soc', 'h6.soc.json'], /no script given/],
      [['--soc', 'h6.soc.json', '--reporter', 'html', 'a.ts'], /--reporter must be one of pretty, tap, junit, got 'html'/],
      [['--soc', 'h6.soc.json', '--seed', '1.5', 'a.ts'], /--seed must be an integer/],
      [['--soc', 'h6.soc.json', '--timeout', '0', 'a.ts'], /--timeout must be an integer from 1/],
      [['--soc', 'h6.soc.json', '--kernel', 'later', 'a.ts'], /--kernel must be one of none, lazy, eager, got 'later'/],
      [['--soc', 'missing.soc.json', 'a.ts'], /missing\.soc\.json: cannot read the SoC config: no such file/],
      [['--soc', 'h6.soc.json', 'a.ts', 'nope.ts'], /nope\.ts: cannot read the script: no such file/],
      [['--soc', 'h6.soc.json', '--out', 'missing/report.xml', 'a.ts'], /--out missing\/report\.xml: the folder missing does not exist/],
      [['--soc', 'h6.soc.json', '--emit-types', 'gone/api.d.ts', 'a.ts'], /--emit-types gone\/api\.d\.ts: the folder gone does not exist/],
    ])('%j', async (argv, message) => {
      const r = await cli(argv, files);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    });

    it('an invalid config, naming file, line and field', async () => {
      const r = await cli(['--soc', 'bad.soc.json', 'a.ts'], { 'bad.soc.json': '{\n  "name": 3\n}', 'a.ts': PASSING });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('bad.soc.json:2: /name: must be a string\n');
    });

    it('a script syntax error, naming file, line and column', async () => {
      const r = await cli(['--soc', 'h6.soc.json', 'a.ts', 'syn.ts'], { 'h6.soc.json': GOOD_SOC, 'a.ts': PASSING, 'syn.ts': `test('x', () => {\n  const = 1;\n});\n` });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bringup: syn\.ts:2:9: syntax error: /);
    });
  });
});
