/**
 * C driver builds for the session: read the driver, its include folders and our Linux API subset,
 * look the content hash up in the user's cache folder ($XDG_CACHE_HOME/soc-console or
 * ~/.cache/soc-console), and compile in a worker thread on a miss.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CFLAGS, LDFLAGS, type CompileInput, type CompileOutput } from '../../sim/kernel/cdriver/toolchain';
import type { DriverBuild, DriverBuildRequest } from '../../sim/kernel/cdriver/build-api';
import { resourcesDir } from './resources';
import type { WorkerEntry } from './host';

/** Bumped when the instrumentation or the runtime ABI changes. */
const BUILD_FORMAT = 'cdriver-2';

export function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'soc-console');
}

function cdriverWorkerEntry(): WorkerEntry {
  const self = new URL(import.meta.url);
  return self.pathname.endsWith('.ts') ? { ts: new URL('./cdriver-worker.ts', self) } : { js: new URL('./cdriver-worker.js', self) };
}

/** Every file under dir (headers of an include folder), as relative path → text. */
function readTree(dir: string, exts = /\.(h|c|inc)$/): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (exts.test(name)) out[relative(dir, p).split('\\').join('/')] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

function toolchainVersions(): string {
  const v = (pkg: string): string => {
    try {
      return (JSON.parse(readFileSync(join(resourcesDir(), '..', 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  return `${v('@yowasp/clang')}+${v('binaryen')}`;
}

export interface CDriverBuilderOptions {
  cacheDir?: string;
  /** The Linux API subset (default: resources/linux). */
  kapiDir?: string;
}

export class CDriverBuilder {
  private readonly cacheDir: string;
  private readonly kapiDir: string;

  constructor(opts: CDriverBuilderOptions = {}) {
    this.cacheDir = join(opts.cacheDir ?? defaultCacheDir(), 'cdriver');
    this.kapiDir = opts.kapiDir ?? join(resourcesDir(), 'linux');
  }

  /** The compile input for a request, or a diagnostic naming what could not be read. */
  private input(req: DriverBuildRequest): CompileInput | DriverBuild {
    let source: string;
    try {
      source = readFileSync(req.source, 'utf8');
    } catch (e) {
      return { ok: false, diagnostics: [{ file: req.source, line: 0, column: 0, severity: 'error', message: `cannot read the driver source: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}` }] };
    }
    const includes: CompileInput['includes'] = [];
    for (const dir of req.includes) {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) return { ok: false, diagnostics: [{ file: dir, line: 0, column: 0, severity: 'error', message: 'include folder not found' }] };
      includes.push({ dir, files: readTree(dir) });
    }
    return { source, file: req.source, defines: req.defines, includes, kapi: readTree(this.kapiDir) };
  }

  async build(req: DriverBuildRequest): Promise<DriverBuild> {
    const input = this.input(req);
    if ('ok' in input) return input;
    const hash = createHash('sha256')
      .update(JSON.stringify({ BUILD_FORMAT, tools: toolchainVersions(), CFLAGS, LDFLAGS, input }))
      .digest('hex');
    const cached = join(this.cacheDir, `${hash}.wasm`);
    if (existsSync(cached)) return { ok: true, wasm: new Uint8Array(readFileSync(cached)), cached: true };
    const out = await this.compileInWorker(input);
    if (!out.ok) return { ok: false, diagnostics: out.diagnostics };
    mkdirSync(this.cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, out.wasm);
    renameSync(tmp, cached);
    return { ok: true, wasm: out.wasm, cached: false, warnings: out.warnings };
  }

  private compileInWorker(input: CompileInput): Promise<CompileOutput> {
    const entry = cdriverWorkerEntry();
    const worker =
      'js' in entry
        ? new Worker(entry.js, { workerData: { input }, stdout: true })
        : new Worker(new URL('./tsx-bootstrap.mjs', import.meta.url), { workerData: { input, tsEntry: entry.ts.href }, stdout: true });
    // The compiler's own progress lines ("fetched 100%") are not the user's business.
    worker.stdout.resume();
    return new Promise((resolve, reject) => {
      worker.once('message', (m: { out?: CompileOutput; error?: string }) => {
        void worker.terminate();
        if (m.out) resolve(m.out);
        else reject(new Error(`C driver compile failed: ${m.error ?? 'unknown error'}`));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`C driver compile worker exited (code ${code})`)));
    });
  }
}
