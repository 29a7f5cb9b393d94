/**
 * The built Electron app without the Electron binary (it cannot start here): the main bundle
 * runs against a stub `electron` module and the built preload runs in a vm context wired to the
 * IPC handlers main registered (test/support/electron-stub). Needs `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSP } from '../../src/main/web/csp';
import { SESSION_METHODS } from '../../src/shared/session-api';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = join(ROOT, 'out');
const DRIVER = join(ROOT, 'test/support/electron-stub/run-main.mjs');

interface Settled {
  value?: unknown;
  error?: string;
}
interface Report {
  fatal?: string;
  windows: { webPreferences: Record<string, unknown> }[];
  loads: { kind: 'file' | 'url'; target: string }[];
  channels: string[];
  permissionRequest: unknown;
  permissionCheck: unknown;
  devicePermission: unknown;
  headers: Record<string, string[]>;
  socKeys: string[];
  probes: ({ method: string; channels: string[] } & Settled)[];
  listPresets: Settled;
  simTime: Settled;
  onEvent: { returnsUnsubscribe: boolean; listens: string[] };
  untrusted: Settled;
  devSender?: Settled;
  socFilesKeys: string[];
  files: Record<'openSession' | 'openConfig' | 'badName' | 'save' | 'saveConfig', Settled>;
  fileChannels: string[];
  quit: boolean;
}

let tmp: string;

function runMain(env: Record<string, string>): Promise<Report> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    delete base.ELECTRON_RENDERER_URL;
    execFile(process.execPath, [DRIVER], { cwd: ROOT, timeout: 60_000, env: { ...base, OUT_DIR: OUT, STUB_USER_DATA: tmp, ...env } }, (err, stdout, stderr) => {
      const line = stdout.split('\n').find((l) => l.startsWith('REPORT '));
      if (!line) return reject(new Error(`the main bundle did not report (${err?.message ?? 'no error'}):\n${stdout}\n${stderr}`));
      const report = JSON.parse(line.slice('REPORT '.length)) as Report;
      if (report.fatal) return reject(new Error(`the main bundle failed:\n${report.fatal}`));
      resolve(report);
    });
  });
}

const insideOut = (p: string): boolean => !relative(OUT, p).startsWith('..') && !relative(OUT, p).startsWith(sep);

beforeAll(() => {
  for (const f of ['main/index.js', 'main/sim-worker.js', 'preload/index.cjs', 'renderer/index.html']) {
    if (!existsSync(join(OUT, f))) throw new Error(`out/${f} is missing: these tests check the built app; run \`npm run build\` first (npm test does)`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'soc-electron-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('the built Electron app (stub electron module)', () => {
  let report: Report;
  let readOnly: string;
  beforeAll(async () => {
    readOnly = join(tmp, 'locked.socsession.json');
    writeFileSync(readOnly, 'keep me');
    chmodSync(readOnly, 0o444);
    report = await runMain({ STUB_SAVE_PATH: readOnly });
  }, 90_000);

  it('hands BrowserWindow a preload and loadFile a page that exist in out/, in a locked-down window', () => {
    expect(report.windows).toHaveLength(1);
    const prefs = report.windows[0]!.webPreferences;
    expect(prefs).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true });
    const preload = prefs.preload as string;
    expect(insideOut(preload)).toBe(true);
    expect(existsSync(preload)).toBe(true);
    expect(report.loads).toEqual([{ kind: 'file', target: join(OUT, 'renderer/index.html') }]);
    for (const l of report.loads) expect(existsSync(l.target)).toBe(true);
  });

  it('the preload is one CommonJS file that needs only electron (a sandboxed preload cannot load ESM or chunks)', () => {
    const code = readFileSync(report.windows[0]!.webPreferences.preload as string, 'utf8');
    expect(code).not.toMatch(/^\s*(import|export)\s/m);
    const requires = [...code.matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
    expect(new Set(requires)).toEqual(new Set(['electron']));
  });

  it('window.soc exposes the whole session API, and every call reaches soc:call, which main validates', () => {
    expect([...report.socKeys].sort()).toEqual([...Object.keys(SESSION_METHODS), 'onEvent'].sort());
    expect(report.probes.map((p) => p.method).sort()).toEqual(Object.keys(SESSION_METHODS).sort());
    for (const p of report.probes) {
      expect(p.channels).toEqual(['soc:call']);
      expect(p.error).toBe(`${p.method}: expected ${SESSION_METHODS[p.method as keyof typeof SESSION_METHODS].length} argument(s)`);
    }
    expect(report.channels).toContain('soc:call');
    expect(report.onEvent).toEqual({ returnsUnsubscribe: true, listens: ['soc:event'] });
  });

  it('valid calls reach the real session host (and its worker) and answer', () => {
    expect(report.listPresets.value).toEqual(expect.arrayContaining(['sun50i-h6']));
    expect(report.simTime).toEqual({ value: 0 });
  });

  it('refuses IPC from a frame that is not the app', () => {
    expect(report.untrusted).toEqual({ error: 'IPC from an untrusted frame' });
  });

  it('window.socFiles reaches handled, validated channels; a failed save comes back as an error', () => {
    expect([...report.socFilesKeys].sort()).toEqual(['onMenu', 'openConfig', 'openSession', 'saveConfig', 'saveSession']);
    for (const c of report.fileChannels) expect(report.channels).toContain(c);
    expect(report.files.openSession).toEqual({ value: null });
    expect(report.files.openConfig).toEqual({ value: null });
    expect(report.files.badName.error).toMatch(/files:save-session: argument 2 must be a plain file name/);
    expect(report.files.save.error).toMatch(/cannot save locked\.socsession\.json: the file is read-only/);
    expect(readFileSync(readOnly, 'utf8')).toBe('keep me');
  });

  it('denies every permission request and check', () => {
    expect(report.permissionRequest).toBe(false);
    expect(report.permissionCheck).toEqual([false, false, false, false]);
    expect(report.devicePermission).toBe(false);
  });

  it('sends the CSP with frame-ancestors and X-Frame-Options on responses', () => {
    expect(report.headers).toEqual({ 'X-Other': ['1'], 'Content-Security-Policy': [CSP], 'X-Frame-Options': ['DENY'] });
    expect(CSP).toContain("frame-ancestors 'none'");
  });

  it('quits after disposing the host when the window closes', () => {
    expect(report.quit).toBe(true);
  });
});

describe('ELECTRON_RENDERER_URL', () => {
  it('is ignored by a packaged app: it loads its own files and refuses IPC from that URL', async () => {
    const r = await runMain({ STUB_PACKAGED: '1', ELECTRON_RENDERER_URL: 'http://127.0.0.1:9/' });
    expect(r.loads).toEqual([{ kind: 'file', target: join(OUT, 'renderer/index.html') }]);
    expect(r.devSender).toEqual({ error: 'IPC from an untrusted frame' });
  }, 90_000);

  it('is the dev server in an unpackaged app (electron-vite dev); saves go to the picked file', async () => {
    const target = join(tmp, 'saved.socsession.json');
    const r = await runMain({ ELECTRON_RENDERER_URL: 'http://127.0.0.1:9/', STUB_SAVE_PATH: target });
    expect(r.loads).toEqual([{ kind: 'url', target: 'http://127.0.0.1:9/' }]);
    expect(r.devSender?.value).toEqual(expect.arrayContaining(['sun50i-h6']));
    expect(r.files.save).toEqual({ value: 'saved.socsession.json' });
    expect(r.files.saveConfig).toEqual({ value: 'saved.socsession.json' });
    expect(readFileSync(target, 'utf8')).toBe('{"config":true}');
  }, 90_000);
});
