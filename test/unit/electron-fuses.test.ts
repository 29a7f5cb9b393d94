/**
 * The packaged app's fuses (electron/electron-builder.yml, applied by electron-builder through
 * @electron/fuses). Packaging needs the Electron binary, so this checks the configuration, and
 * that the built main process does nothing the fuses would break.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The `electronFuses:` block of the builder config, as key → boolean. */
function fuses(): Record<string, boolean> {
  const lines = readFileSync(join(ROOT, 'electron/electron-builder.yml'), 'utf8').split('\n');
  const start = lines.findIndex((l) => /^electronFuses:\s*$/.test(l));
  expect(start, 'electron-builder.yml has an electronFuses block').toBeGreaterThanOrEqual(0);
  const out: Record<string, boolean> = {};
  for (const l of lines.slice(start + 1)) {
    const m = /^ {2}(\w+):\s*(true|false)\s*$/.exec(l);
    if (!m) break;
    out[m[1]!] = m[2] === 'true';
  }
  return out;
}

describe('Electron fuses of the packaged app', () => {
  it('turn off running as Node.js, NODE_OPTIONS and --inspect, and load only from the asar', () => {
    expect(fuses()).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableCookieEncryption: true,
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
    });
  });

  it('the built main process never forks (with runAsNode off, fork cannot start a child)', () => {
    const dir = join(ROOT, 'out/main');
    if (!existsSync(dir)) throw new Error('out/main is missing: run `npm run build` first (npm test does)');
    const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((f) => f.isFile() && f.name.endsWith('.js'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(readFileSync(join(f.parentPath, f.name), 'utf8')).not.toMatch(/child_process/);
  });
});
