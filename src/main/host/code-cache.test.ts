import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { requireCached } from './code-cache';
import { resourcesDir } from './resources';

const CACHE = join(dirname(resourcesDir()), 'node_modules', '.cache', 'soc-console', 'v8');
const dir = mkdtempSync(join(tmpdir(), 'soc-code-cache-'));
const name = `cached-module-${process.pid}.cjs`;
writeFileSync(join(dir, name), "const path = require('node:path'); module.exports = { answer: 42, sep: path.sep, file: __filename };\n");
const from = pathToFileURL(join(dir, 'from.js')).href;

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const f of existsSync(CACHE) ? readdirSync(CACHE) : []) if (f.startsWith(name)) rmSync(join(CACHE, f));
});

describe('requireCached', () => {
  it('loads a CommonJS module with its own require and __filename, and keeps a code cache for the next load', () => {
    expect(requireCached(from, `./${name}`)).toEqual({ answer: 42, sep: '/', file: join(dir, name) });
    expect(readdirSync(CACHE).some((f) => f.startsWith(name))).toBe(true);
    expect(requireCached(from, `./${name}`)).toEqual({ answer: 42, sep: '/', file: join(dir, name) });
  });
});
