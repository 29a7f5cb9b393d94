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
  MAX_MESSAGE_BYTES,
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
  /** Per-connection limits; the defaults suit the console (tests make them small). */
  limits?: Partial<ConnectionLimits>;
  /** Open WebSocket connections at most (each may hold its limits' worth of memory); default 32. */
  maxConnections?: number;
}

/** What one WebSocket client may make the server hold for it; beyond, requests are refused. */
export interface ConnectionLimits {
  /** Requests received and not yet answered. */
  maxInFlight: number;
  /** Bytes of those requests (a loadConfig or runScript carries up to 16 MiB of text). */
  maxInFlightBytes: number;
  /**
   * Bytes sent to the client that its socket has not taken yet (ws bufferedAmount). Past it new
   * requests and replies that would go beyond are refused; past twice it the client is not
   * reading at all, and its connection is closed.
   */
  maxQueuedBytes: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxInFlight: 256,
  maxInFlightBytes: 64 * 1024 * 1024,
  maxQueuedBytes: 64 * 1024 * 1024,
};

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

export { MAX_MESSAGE_BYTES };

const MiB = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/**
 * The reason sent with each close code ws's receiver uses for a frame it rejects (too large,
 * invalid UTF-8, a bad close code or opcode, an unmasked frame): ws closes with the code alone.
 */
const CLOSE_REASONS: Readonly<Record<number, string>> = {
  1002: 'malformed WebSocket frame (protocol error)',
  1007: 'text message is not valid UTF-8',
  1009: `message larger than ${MiB(MAX_MESSAGE_BYTES)}`,
};

/** A server-side socket that names why it closes when ws gives only a code. */
class ApiSocket extends WebSocket {
  override close(code?: number, data?: string | Buffer): void {
    super.close(code, data ?? (code === undefined ? undefined : CLOSE_REASONS[code]));
  }
}

/** One connection's bookkeeping for the limits. */
interface Connection {
  ws: WebSocket;
  limits: ConnectionLimits;
  inFlight: number;
  inFlightBytes: number;
}

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

  const limits: ConnectionLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const maxConnections = opts.maxConnections ?? 32;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, WebSocket: ApiSocket });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node hands over the socket without its error listener: a reset during the refusal below
    // would otherwise be an uncaught error (ws adds its own once it takes the socket).
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    const hostHeader = req.headers.host ?? '';
    const origin = req.headers.origin ?? '';
    if (path !== '/api' || !allowedHosts.has(hostHeader) || origin !== `http://${hostHeader}`) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    if (wss.clients.size >= maxConnections) {
      const text = `the session host has ${wss.clients.size} connections open, its limit`;
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    // A bad frame is this client's problem: ws has already sent the close frame (with a reason,
    // ApiSocket) and drops the socket. Without a listener the error would end the process.
    ws.on('error', () => undefined);
    const conn: Connection = { ws, limits, inFlight: 0, inFlightBytes: 0 };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return reply(conn, { id: -1, ok: false, error: 'binary messages are not supported' });
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      void handleCall(session, conn, bytes);
    });
  });

  const unsubscribe = session.onEvent((event) => {
    const msg = encodeJson({ event } satisfies RpcPush);
    for (const client of wss.clients) if (client.readyState === WebSocket.OPEN && !dropIfNotReading(client, limits)) client.send(msg);
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

async function handleCall(session: WebSession, conn: Connection, bytes: Buffer): Promise<void> {
  let msg: unknown;
  try {
    msg = decodeJson(bytes.toString('utf8'));
  } catch {
    return reply(conn, { id: -1, ok: false, error: 'malformed JSON' });
  }
  const m = (typeof msg === 'object' && msg !== null ? msg : {}) as Record<string, unknown>;
  const id = typeof m.id === 'number' && Number.isSafeInteger(m.id) ? m.id : -1;
  if (id < 0) return reply(conn, { id: -1, ok: false, error: 'request without a valid id' });
  const busy = busyReason(conn, bytes.length);
  if (busy) return reply(conn, { id, ok: false, error: busy });
  const invalid = validateCall(m.method, m.args);
  if (invalid) return reply(conn, { id, ok: false, error: invalid });
  const method = m.method as SessionMethod;
  conn.inFlight++;
  conn.inFlightBytes += bytes.length;
  try {
    const fn = session[method] as (...args: unknown[]) => Promise<unknown>;
    const value = await fn.apply(session, m.args as unknown[]);
    reply(conn, { id, ok: true, value });
  } catch (e) {
    reply(conn, { id, ok: false, error: e instanceof Error ? e.message : String(e) });
  } finally {
    conn.inFlight--;
    conn.inFlightBytes -= bytes.length;
  }
}

/** Why a request of this size is refused now, or null. */
function busyReason(conn: Connection, size: number): string | null {
  const { limits } = conn;
  if (conn.inFlight >= limits.maxInFlight) {
    return `server busy: ${conn.inFlight} requests of this connection are still being answered (limit ${limits.maxInFlight}); wait for replies before sending more`;
  }
  if (conn.inFlightBytes + size > limits.maxInFlightBytes) {
    return `server busy: ${MiB(conn.inFlightBytes)} of this connection's requests are still being answered (limit ${MiB(limits.maxInFlightBytes)}); wait for replies before sending more`;
  }
  const queued = conn.ws.bufferedAmount;
  if (queued > limits.maxQueuedBytes) {
    return `server busy: ${MiB(queued)} of replies are queued for this connection and not yet read (limit ${MiB(limits.maxQueuedBytes)})`;
  }
  return null;
}

/** Close a client that has twice the queue limit unread: it is not reading at all. */
function dropIfNotReading(ws: WebSocket, limits: ConnectionLimits): boolean {
  if (ws.bufferedAmount <= 2 * limits.maxQueuedBytes) return false;
  ws.close(1008, 'the client does not read its replies');
  return true;
}

function reply(conn: Connection, res: RpcResponse): void {
  const { ws, limits } = conn;
  if (ws.readyState !== WebSocket.OPEN || dropIfNotReading(ws, limits)) return;
  let text = encodeJson(res);
  const size = Buffer.byteLength(text);
  const queued = ws.bufferedAmount;
  if (queued + size > limits.maxQueuedBytes) {
    text = encodeJson({
      id: res.id,
      ok: false,
      error: `reply of ${MiB(size)} refused: ${MiB(queued)} of replies are already queued for this connection and not yet read (limit ${MiB(limits.maxQueuedBytes)})`,
    } satisfies RpcResponse);
  }
  ws.send(text);
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
    'X-Frame-Options': 'DENY',
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
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY' });
  res.end(text);
}
