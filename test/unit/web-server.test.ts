import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeJson, encodeJson, type RpcPush, type RpcResponse } from '../../src/shared/session-api';
import { CSP, CSP_META } from '../../src/main/web/csp';
import { startWebServer, type WebServer } from '../../src/main/web/server';
import { FakeSession } from '../support/fake-session';

let dir: string;
let server: WebServer;
const session = new FakeSession();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'soc-web-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'x.wasm'), new Uint8Array([0, 0x61, 0x73, 0x6d]));
  server = await startWebServer({ host: '127.0.0.1', port: 0, rendererDir: dir, session });
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const origin = (): string => `http://127.0.0.1:${server.port}`;
const wsUrl = (path = '/api'): string => `ws://127.0.0.1:${server.port}${path}`;

/** Open a socket; resolves with it, or rejects with the HTTP status of a refused upgrade. */
function connect(opts: { origin?: string; path?: string } = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(opts.path), opts.origin === undefined ? {} : { origin: opts.origin });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<RpcResponse | RpcPush> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(decodeJson(d.toString()) as RpcResponse | RpcPush)));
}

async function rpc(ws: WebSocket, raw: string): Promise<RpcResponse> {
  const reply = nextMessage(ws);
  ws.send(raw);
  return (await reply) as RpcResponse;
}

function get(path: string, host?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('latin1')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web server: session API over WebSocket', () => {
  it('carries a valid call to the session and returns its value', async () => {
    const ws = await connect({ origin: origin() });
    expect(await rpc(ws, encodeJson({ id: 1, method: 'listPresets', args: [] }))).toEqual({ id: 1, ok: true, value: ['sun50i-h6'] });
    const mem = await rpc(ws, encodeJson({ id: 2, method: 'readMemory', args: [0x1000, 4, 'ram'] }));
    expect(mem).toEqual({ id: 2, ok: true, value: new Uint8Array([0xab, 0xab, 0xab, 0xab]) });
    ws.close();
  });

  it('rejects unknown methods and invalid arguments before they reach the session', async () => {
    const ws = await connect({ origin: origin() });
    const before = session.calls.length;
    expect(await rpc(ws, encodeJson({ id: 3, method: 'constructor', args: [] }))).toMatchObject({ id: 3, ok: false, error: expect.stringMatching(/unknown method/) });
    expect(await rpc(ws, encodeJson({ id: 4, method: 'readRegisters', args: [42] }))).toMatchObject({ id: 4, ok: false, error: expect.stringMatching(/argument 1 is invalid/) });
    expect(await rpc(ws, encodeJson({ id: 5, method: 'readRegisters', args: [] }))).toMatchObject({ id: 5, ok: false, error: expect.stringMatching(/expected 1 argument/) });
    expect(await rpc(ws, encodeJson({ id: 6, method: 'writeRegister', args: ['iommu0', 'TTB', -1] }))).toMatchObject({ id: 6, ok: false });
    expect(await rpc(ws, encodeJson({ id: 7, method: 'runScript', args: [{ source: 1, fileName: 'a.ts' }] }))).toMatchObject({ id: 7, ok: false });
    expect(await rpc(ws, '{not json')).toMatchObject({ id: -1, ok: false, error: 'malformed JSON' });
    expect(await rpc(ws, encodeJson({ method: 'listPresets', args: [] }))).toMatchObject({ id: -1, ok: false });
    expect(session.calls.length).toBe(before);
    ws.close();
  });

  it('returns a host error as ok:false', async () => {
    const ws = await connect({ origin: origin() });
    expect(await rpc(ws, encodeJson({ id: 8, method: 'loadPreset', args: ['nope'] }))).toEqual({ id: 8, ok: false, error: 'no preset named "nope"' });
    ws.close();
  });

  it('pushes session events to every client', async () => {
    const a = await connect({ origin: origin() });
    const b = await connect({ origin: origin() });
    const got = Promise.all([nextMessage(a), nextMessage(b)]);
    session.emit({ type: 'output', runId: 1, stream: 'log', text: 'hello' });
    for (const m of await got) expect(m).toEqual({ event: { type: 'output', runId: 1, stream: 'log', text: 'hello' } });
    a.close();
    b.close();
  });

  it('refuses upgrades from a foreign or missing Origin, and on other paths', async () => {
    await expect(connect({ origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(connect({ origin: `http://127.0.0.1:${server.port + 1}` })).rejects.toThrow('HTTP 403');
    await expect(connect({})).rejects.toThrow('HTTP 403');
    await expect(connect({ origin: origin(), path: '/other' })).rejects.toThrow('HTTP 403');
  });
});

describe('web server: static files', () => {
  it('serves index.html with the CSP header and .wasm with its MIME type', async () => {
    const index = await get('/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toMatch(/^text\/html/);
    expect(index.headers['content-security-policy']).toBe(CSP);
    expect((await get('/x.wasm')).headers['content-type']).toBe('application/wasm');
  });

  it('cannot be framed by another page: frame-ancestors none and X-Frame-Options DENY', async () => {
    for (const path of ['/', '/x.wasm', '/missing.js']) {
      const r = await get(path);
      expect(r.headers['x-frame-options']).toBe('DENY');
    }
    expect((await get('/')).headers['content-security-policy']).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
  });

  it("the renderer's CSP meta tag is the header's policy less frame-ancestors (which a meta tag cannot carry)", () => {
    const html = readFileSync(new URL('../../src/renderer/index.html', import.meta.url), 'utf8');
    const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html);
    expect(meta?.[1]).toBe(CSP_META);
    expect(CSP).toBe(`${CSP_META}; frame-ancestors 'none'`);
  });

  it('stays inside the renderer folder and refuses foreign Host headers', async () => {
    expect((await get('/../package.json')).status).not.toBe(200);
    expect((await get('/%2e%2e/%2e%2e/package.json')).status).toBe(404);
    expect((await get('/..%2f..%2fpackage.json')).status).toBe(403);
    expect((await get('/missing.js')).status).toBe(404);
    expect((await get('/', 'evil.example:80')).status).toBe(421);
  });
});
