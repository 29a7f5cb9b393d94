/**
 * Caching and compression for the web server's static files. Vite names built assets
 * name-<hash>.ext under /assets/: their content never changes under that name, so browsers may keep
 * them for good; everything else (index.html) is revalidated. Text assets are gzipped once per file
 * version and kept in memory: the renderer is ~20 MB of JavaScript, mostly Monaco, which compresses
 * to a quarter.
 */
import { readFile } from 'node:fs/promises';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);

/** A content hash in a built asset's name: index-B3xk_9aZ.js, ts.worker-Dq1w2e3r.js. */
const HASHED = /^\/assets\/.+-[\w-]{8,}\.\w+$/;
const COMPRESSIBLE = /\.(js|mjs|css|html|json|svg|map|ts|txt|wasm)$/;

export function cacheControl(path: string): string {
  return HASHED.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache';
}

/** Whether the client takes gzip and the file is worth compressing. */
export function wantsGzip(acceptEncoding: string | string[] | undefined, file: string): boolean {
  const accept = Array.isArray(acceptEncoding) ? acceptEncoding.join(',') : (acceptEncoding ?? '');
  return COMPRESSIBLE.test(file) && /\bgzip\b/.test(accept);
}

const cache = new Map<string, { mtimeMs: number; body: Promise<Buffer> }>();

/** The gzipped file, compressed once per version (mtime) of it. */
export function gzipped(file: string, mtimeMs: number): Promise<Buffer> {
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === mtimeMs) return hit.body;
  const body = readFile(file).then((b) => gzipAsync(b, { level: 6 }));
  body.catch(() => cache.delete(file));
  cache.set(file, { mtimeMs, body });
  return body;
}
