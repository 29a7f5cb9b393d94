// The Node side of the console (CLI, web server, sim worker, explore helpers) as built JavaScript
// in out/node/, so `npm run bringup` starts like a tool instead of transpiling the engine with tsx
// on every start. Rebuilt when any source under src/ (the renderer aside) is newer than the build;
// `node scripts/node-build.mjs` builds unconditionally.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const OUT = join(ROOT, 'out', 'node');
const STAMP = join(OUT, '.built');

/** Bundle name → source entry. The host and the sim worker find each other as siblings in OUT. */
const ENTRIES = {
  bringup: 'src/main/cli/bringup.ts',
  serve: 'src/main/web/serve.ts',
  'sim-worker': 'src/main/host/sim-worker.ts',
  'explore-worker': 'src/main/host/explore-worker.ts',
  'cdriver-worker': 'src/main/host/cdriver-worker.ts',
};

/**
 * CommonJS packages loaded with require() rather than import: Node's ESM loader would scan their
 * source for named exports first (cjs-module-lexer), which for TypeScript's 9 MB is most of the
 * sim worker's start. Only their default import is used. TypeScript also goes through a V8 code
 * cache (src/main/host/code-cache.ts): compiling it is the next largest part of a cold start.
 */
const REQUIRED = ['typescript', 'ajv'];
const CODE_CACHED = new Set(['typescript']);
const CODE_CACHE = JSON.stringify(join(ROOT, 'src', 'main', 'host', 'code-cache.ts'));
const requirePlugin = {
  name: 'require-cjs',
  setup(b) {
    const filter = new RegExp(`^(${REQUIRED.join('|')})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'require-cjs' }));
    b.onLoad({ filter: /.*/, namespace: 'require-cjs' }, (args) => ({
      contents: CODE_CACHED.has(args.path)
        ? `import { requireCached } from ${CODE_CACHE};\nexport default requireCached(import.meta.url, ${JSON.stringify(args.path)});\n`
        : `import { createRequire } from 'node:module';\nexport default createRequire(import.meta.url)(${JSON.stringify(args.path)});\n`,
      loader: 'js',
      resolveDir: ROOT,
    }));
  },
};

function newestSource(dir, skip) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== skip) newest = Math.max(newest, newestSource(p, skip));
    } else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

export function isFresh() {
  if (!existsSync(STAMP)) return false;
  const built = statSync(STAMP).mtimeMs;
  const inputs = [join(ROOT, 'package-lock.json'), join(ROOT, 'scripts', 'node-build.mjs')].map((f) => statSync(f).mtimeMs);
  return Math.max(newestSource(join(ROOT, 'src'), join(ROOT, 'src', 'renderer')), ...inputs) <= built;
}

/**
 * Builds into a private folder and renames each file into place, so a run that starts while
 * another builds reads whole files.
 */
export async function build() {
  const { build: esbuild } = await import('esbuild');
  const tmp = `${OUT}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await esbuild({
      absWorkingDir: ROOT,
      entryPoints: ENTRIES,
      outdir: tmp,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: true,
      plugins: [requirePlugin],
      logLevel: 'warning',
    });
    mkdirSync(OUT, { recursive: true });
    for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(OUT, f));
    writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function ensureBuilt() {
  if (!isFresh()) await build();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await build();
