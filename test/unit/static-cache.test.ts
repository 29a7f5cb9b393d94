import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebServer, type WebServer } from '../../src/main/web/server';
import { FakeSession } from '../support/fake-session';

let dir: string;
let server: WebServer;
const JS = `export const big = ${JSON.stringify('x'.repeat(50_000))};\n`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'soc-static-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'assets', 'index-B3xk_9aZ.js'), JS);
  writeFileSync(join(dir, 'assets', 'logo.png'), new Uint8Array([0x89, 0x50, 0x4e, 0x47]));
  server = await startWebServer({ host: '127.0.0.1', port: 0, rendererDir: dir, session: new FakeSession() });
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, encoding?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, headers: encoding ? { 'accept-encoding': encoding } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('static files: caching and compression', () => {
  it('lets browsers keep content-hashed assets for good, and revalidate the page', async () => {
    expect((await get('/assets/index-B3xk_9aZ.js')).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get('/')).headers['cache-control']).toBe('no-cache');
    expect((await get('/assets/logo.png')).headers['cache-control']).toBe('no-cache');
  });

  it('gzips text for clients that take it, and only for them', async () => {
    const z = await get('/assets/index-B3xk_9aZ.js', 'gzip, deflate, br');
    expect(z.headers['content-encoding']).toBe('gzip');
    expect(z.headers.vary).toBe('Accept-Encoding');
    expect(Number(z.headers['content-length'])).toBe(z.body.length);
    expect(z.body.length).toBeLessThan(JS.length / 10);
    expect(gunzipSync(z.body).toString()).toBe(JS);
    const plain = await get('/assets/index-B3xk_9aZ.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(JS);
    expect((await get('/assets/logo.png', 'gzip')).headers['content-encoding']).toBeUndefined();
  });
});
