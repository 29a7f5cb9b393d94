/**
 * Every example script, run the way a user runs it: through the real CLI in a child process, on
 * the preset the script names (a `// soc: <preset>` line, or the `--soc resources/socs/<preset>`
 * of its usage line). Each must exit 0; the problem scenarios must also type-check against the
 * .d.ts the console generates for their preset. Plus the CLI's exit codes for a failing test, a bad config and an endless loop.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/sim/session';
import { ROOT, runCli } from '../support/cli';

const EXAMPLES = join(ROOT, 'resources', 'examples');

function scripts(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? scripts(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

function presetOf(file: string): string {
  const text = readFileSync(file, 'utf8');
  const m = /^\/\/ soc: (\S+)/m.exec(text) ?? /--soc resources\/socs\/(\S+)\.soc\.json/.exec(text);
  if (!m) throw new Error(`${file}: names no SoC preset (add a '// soc: <preset>' line)`);
  return join(ROOT, 'resources', 'socs', `${m[1]}.soc.json`);
}

const cli = (args: string[]) => runCli(args);

/** Type errors of a script against the generated script API for a preset. */
function typeErrors(script: string, preset: string): string[] {
  const session = new Session({ emit: () => {}, heartbeat: () => {} });
  const loaded = session.loadConfig(readFileSync(preset, 'utf8'), preset);
  if (!loaded.ok) throw new Error(`${preset}: ${JSON.stringify(loaded.errors)}`);
  const files: Record<string, string> = { '/soc-console.d.ts': session.scriptTypes(), '/script.ts': readFileSync(script, 'utf8') };
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.ESNext, lib: ['lib.es2020.d.ts'], types: [] };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError) => (name in files ? ts.createSourceFile(name, files[name]!, lang) : getSourceFile(name, lang, onError));
  host.fileExists = (name) => name in files || ts.sys.fileExists(name);
  host.readFile = (name) => files[name] ?? ts.sys.readFile(name);
  const program = ts.createProgram(['/soc-console.d.ts', '/script.ts'], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return `${d.file?.fileName ?? ''}:${pos ? pos.line + 1 : '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

const all = scripts(EXAMPLES);

describe('example scripts through the real CLI', () => {
  it('covers the problem scenarios P1 to P9', () => {
    const names = all.map((f) => relative(EXAMPLES, f));
    for (const p of [
      'p1-rockchip-zap-order',
      'p1-rockchip-zap-order-explore',
      'p2-v7s-table-install-race',
      'p3-v7s-split-race',
      'p4-lpae-block-replaces-table',
      'p5-dma-double-unmap',
      'p6-h6-unflushed-tables',
      'p7-h6-free-live-domain',
      'p8-h6-runtime-pm',
      'p8-rk-device-link',
      'p9-h6-domain-switch',
    ]) {
      expect(names).toContain(join('problems', `${p}.ts`));
    }
  });

  for (const file of all) {
    const name = relative(EXAMPLES, file);
    it.concurrent(`${name} passes (exit 0)`, async () => {
      const r = await cli(['--soc', presetOf(file), file]);
      expect(r.stdout).not.toContain('✗');
      expect({ code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ code: 0, out: '' });
    });
    if (name.startsWith('problems') || name.startsWith('fidelity')) {
      it(`${name} type-checks against the generated API`, () => {
        expect(typeErrors(file, presetOf(file))).toEqual([]);
      });
    }
  }
});

describe('CLI exit codes with the real engine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'soc-cli-'));
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const h6 = join(ROOT, 'resources', 'socs', 'sun50i-h6.soc.json');

  it.concurrent('a failing test exits 1, naming it', async () => {
    const script = write('fails.ts', `test('maps nothing', async () => {\n  const d = await kernel.domainAlloc('iommu0');\n  expect(await kernel.iovaToPhys(d, 0x1000)).toBe(0x1000);\n});\n`);
    const r = await cli(['--soc', h6, script]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('maps nothing');
  });

  it.concurrent('an untaken error finding fails its test, exit 1', async () => {
    const script = write('finding.ts', `test('faults', async () => {\n  expect((await soc.device('de').dma.read(0x7000_0000, 4)).ok).toBe(false);\n});\n`);
    const r = await cli(['--soc', h6, script]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('fault');
  });

  it.concurrent('a bad config exits 2, naming the field', async () => {
    const cfg = JSON.parse(readFileSync(h6, 'utf8')) as { iommus: { model: string }[] };
    cfg.iommus[0]!.model = 'sun50i-h7';
    const bad = write('bad.soc.json', JSON.stringify(cfg, null, 2));
    const script = write('ok.ts', `test('ok', () => {});\n`);
    const r = await cli(['--soc', bad, script]);
    expect(r.code).toBe(2);
    expect(r.stderr + r.stdout).toMatch(/iommus\/0\/model/);
  });

  it.concurrent('an endless loop is stopped at its timeout, exit 1', async () => {
    const script = write('loop.ts', `test('spins', () => {\n  for (;;) {}\n});\n`);
    const t0 = Date.now();
    const r = await cli(['--soc', h6, '--timeout', '500', script]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/stopped at its 500 ms timeout/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});

describe('explore through the CLI', () => {
  it.concurrent('prints each failing schedule with the explore.replay call to paste back', async () => {
    const script = join(EXAMPLES, 'problems', 'p1-rockchip-zap-order-explore.ts');
    const r = await cli(['--soc', presetOf(script), script]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/explore: 1 failing schedule in \d+ runs?\n {2}schedule: \[[\d,]+\] {2}check: .*\n {4}replay: explore\.replay\(\[[\d,]+\], spec\)/);
  });
});
