/**
 * require() through a V8 code cache, for the large CommonJS packages the sim worker loads at start
 * (TypeScript is 9 MB of JavaScript: compiling it was a quarter of a cold CLI start). The cache
 * lives in node_modules/.cache/soc-console/v8, keyed by the file's size and mtime; a cache V8
 * rejects (another Node version) is rewritten. The cache is only an optimisation: any failure to
 * read or write it leaves a plain compile.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { basename, dirname, join } from 'node:path';
import vm from 'node:vm';
import { resourcesDir } from './resources';

type Wrapped = (exports: unknown, require: NodeRequire, module: { exports: unknown }, filename: string, dirname: string) => void;

export function requireCached(from: string, id: string): unknown {
  const file = createRequire(from).resolve(id);
  const st = statSync(file);
  const dir = join(dirname(resourcesDir()), 'node_modules', '.cache', 'soc-console', 'v8');
  const cacheFile = join(dir, `${basename(file)}-${st.size}-${Math.floor(st.mtimeMs)}-${process.version}.bin`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, ...(cachedData ? { cachedData } : {}) });
  const fn = script.runInThisContext() as Wrapped;
  const mod = { exports: {} as unknown };
  fn.call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  if (!cachedData || script.cachedDataRejected) {
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      // A read-only install: compile each time.
    }
  }
  return mod.exports;
}
