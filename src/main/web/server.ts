import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  decodeJson,
  encodeJson,
  validateCall,
  type RpcPush,
  type RpcResponse,
  type SessionApi,
  type SessionEvent,
  type SessionMethod,
} from '../../shared/session-api';
import { CSP } from './csp';
import { cacheControl, gzipped, wantsGzip } from './static-cache';

/** What the web server needs from the host: the session API plus its event stream. */
export interface WebSession extends SessionApi {
  onEvent(listener: (e: SessionEvent) => void): () => void;
}

export interface WebServerOptions {
  /** Interface to bind; loopback by default, since the API can drive the whole session. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** The built renderer (out/renderer). */
  rendererDir: string;
  session: WebSession;
}

export interface WebServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.d.ts': 'text/plain; charset=utf-8',
};

/** Scripts are the largest legitimate message; SESSION_METHODS caps a source at 16 MiB. */
const MAX_MESSAGE_BYTES = 17 * 1024 * 1024;

/**
 * Web mode: serves the built renderer and carries the session API over a WebSocket at /api.
 * Every call is validated against the contract before it reaches the host, and only pages served
 * by this server (same origin) may open the socket: the API can load files and run scripts, so a
 * foreign page in the same browser must not reach it (and DNS rebinding is stopped by the Host check).
 */
export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const host = opts.host ?? '127.0.0.1';
  const root = resolve(opts.rendererDir);
  const { session } = opts;
  let allowedHosts = new Set<string>();

  const http = createServer((req, res) => {
    if (!allowedHosts.has(req.headers.host ?? '')) return plain(res, 421, 'unknown host');
    void serveStatic(root, req, res);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    const hostHeader = req.headers.host ?? '';
    const origin = req.headers.origin ?? '';
    if (path !== '/api' || !allowedHosts.has(hostHeader) || origin !== `http://${hostHeader}`) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return reply(ws, { id: -1, ok: false, error: 'binary messages are not supported' });
      void handleCall(session, ws, data.toString());
    });
  });

  const unsubscribe = session.onEvent((event) => {
    const msg = encodeJson({ event } satisfies RpcPush);
    for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(msg);
  });

  await new Promise<void>((ok, fail) => {
    http.once('error', fail);
    http.listen(opts.port, host, () => ok());
  });
  const port = (http.address() as AddressInfo).port;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `${host}:${port}`]);

  return {
    url: `http://${host}:${port}/`,
    port,
    async close() {
      unsubscribe();
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((ok) => http.close(() => ok()));
    },
  };
}

async function handleCall(session: WebSession, ws: WebSocket, text: string): Promise<void> {
  let msg: unknown;
  try {
    msg = decodeJson(text);
  } catch {
    return reply(ws, { id: -1, ok: false, error: 'malformed JSON' });
  }
  const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>;
  const id = typeof m.id === 'number' && Number.isSafeInteger(m.id) ? m.id : -1;
  if (id < 0) return reply(ws, { id: -1, ok: false, error: 'request without a valid id' });
  const invalid = validateCall(m.method, m.args);
  if (invalid) return reply(ws, { id, ok: false, error: invalid });
  const method = m.method as SessionMethod;
  try {
    const fn = session[method] as (...args: unknown[]) => Promise<unknown>;
    const value = await fn.apply(session, m.args as unknown[]);
    reply(ws, { id, ok: true, value });
  } catch (e) {
    reply(ws, { id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
}

function reply(ws: WebSocket, res: RpcResponse): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(encodeJson(res));
}

async function serveStatic(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'method not allowed');
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  } catch {
    return plain(res, 400, 'bad path');
  }
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(root, path));
  // Never serve outside the renderer folder, whatever the path says.
  if (!file.startsWith(root + sep)) return plain(res, 403, 'forbidden');
  let size: number;
  let mtimeMs: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) return plain(res, 404, 'not found');
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch {
    return plain(res, 404, 'not found');
  }
  const headers = {
    'Content-Type': mimeOf(file),
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': cacheControl(path),
    Vary: 'Accept-Encoding',
  };
  if (wantsGzip(req.headers['accept-encoding'], file)) {
    const body = await gzipped(file, mtimeMs);
    res.writeHead(200, { ...headers, 'Content-Encoding': 'gzip', 'Content-Length': body.length });
    return void res.end(req.method === 'HEAD' ? undefined : body);
  }
  res.writeHead(200, { ...headers, 'Content-Length': size });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file).pipe(res);
}

function mimeOf(file: string): string {
  return MIME[file.endsWith('.d.ts') ? '.d.ts' : extname(file).toLowerCase()] ?? 'application/octet-stream';
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(text);
}
