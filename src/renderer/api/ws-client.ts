import {
  MAX_MESSAGE_BYTES,
  SESSION_METHODS,
  decodeJson,
  encodeJson,
  type RpcPush,
  type RpcRequest,
  type RpcResponse,
  type SessionApi,
  type SessionEvent,
  type SessionMethod,
} from '../../shared/session-api';
import type { ConnectionState, SocApi } from './types';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 4000;

/**
 * The session API over the web server's WebSocket (/api). Calls made before the first connection
 * wait for it; calls made while a lost connection is being re-established fail at once (the host
 * that comes back may be a new one, with no SoC loaded: queued work must not run against it), and
 * calls in flight when it drops fail, because the host may have run them.
 * The views watch the connection state to resynchronise after a reconnect (the host may be new).
 */
export function createWsClient(url: string, onState: (s: ConnectionState) => void): SocApi {
  const listeners = new Set<(e: SessionEvent) => void>();
  const pending = new Map<number, Pending>();
  const waiters: ((ws: WebSocket) => void)[] = [];
  let current: WebSocket | null = null;
  let nextId = 1;
  let backoff = MIN_BACKOFF_MS;
  let everConnected = false;

  const emit = (e: SessionEvent): void => {
    for (const l of listeners) l(e);
  };

  const connect = (): void => {
    onState(everConnected ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(url);
    ws.onopen = () => {
      current = ws;
      backoff = MIN_BACKOFF_MS;
      onState('connected');
      everConnected = true;
      for (const w of waiters.splice(0)) w(ws);
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') onMessage(m.data);
    };
    ws.onclose = (ev) => {
      if (current === ws) current = null;
      // The server names why it closed a connection (a message over its size limit, a flood).
      const lost = new Error(ev.reason ? `the session host closed the connection: ${ev.reason}` : 'connection to the session host was lost');
      for (const p of pending.values()) p.reject(lost);
      pending.clear();
      onState(everConnected ? 'reconnecting' : 'connecting');
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
  };

  const whenOpen = (): Promise<WebSocket> => {
    if (current) return Promise.resolve(current);
    if (everConnected) return Promise.reject(new Error('not connected to the session host (reconnecting)'));
    return new Promise((resolve) => waiters.push(resolve));
  };

  const onMessage = (text: string): void => {
    const msg = decodeJson(text) as RpcResponse | RpcPush;
    if ('event' in msg) {
      emit(msg.event);
      return;
    }
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.value);
    else p.reject(new Error(msg.error));
  };

  const call = async (method: SessionMethod, args: unknown[]): Promise<unknown> => {
    const ws = await whenOpen();
    const id = nextId++;
    const req: RpcRequest = { id, method, args };
    const text = encodeJson(req);
    // The server would close the connection (and fail every call in flight) on a larger message.
    const bytes = text.length * 3 <= MAX_MESSAGE_BYTES ? text.length : new TextEncoder().encode(text).length;
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new Error(`${method}: the request is ${(bytes / (1024 * 1024)).toFixed(1)} MiB, more than the ${MAX_MESSAGE_BYTES / (1024 * 1024)} MiB the session host accepts`);
    }
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      ws.send(text);
    });
  };

  connect();

  // One forwarding function per method of the contract, so the object is exactly SessionApi.
  const api = Object.fromEntries(
    (Object.keys(SESSION_METHODS) as SessionMethod[]).map((m) => [m, (...args: unknown[]) => call(m, args)]),
  ) as unknown as SessionApi;

  return Object.assign(api, {
    onEvent(cb: (e: SessionEvent) => void): () => void {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
  });
}
