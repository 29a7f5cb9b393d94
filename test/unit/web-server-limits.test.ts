/**
 * What one client can do to the web server: a bad frame closes its own connection (with a
 * reason) and nothing else; a flood is refused with a clear error instead of growing the server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeJson, encodeJson, type RpcResponse } from '../../src/shared/session-api';
import { MAX_MESSAGE_BYTES, startWebServer, type ConnectionLimits, type WebServer } from '../../src/main/web/server';
import { FakeSession } from '../support/fake-session';
import { closeFrame, frame, OP, rawConnect, type RawClient } from '../support/raw-ws';

const open: { server: WebServer; dir: string }[] = [];

async function serve(session = new FakeSession(), limits?: Partial<ConnectionLimits>, maxConnections?: number): Promise<WebServer> {
  const dir = mkdtempSync(join(tmpdir(), 'soc-web-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  const server = await startWebServer({ host: '127.0.0.1', port: 0, rendererDir: dir, session, limits, maxConnections });
  open.push({ server, dir });
  return server;
}

afterEach(async () => {
  for (const { server, dir } of open.splice(0)) {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A well-formed client: the ws library, from the server's own origin. */
function client(server: WebServer): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api`, { origin: `http://127.0.0.1:${server.port}` });
    // call() listens per request; the in-flight tests have dozens outstanding.
    ws.setMaxListeners(100);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function call(ws: WebSocket, id: number, method: string, args: unknown[]): Promise<RpcResponse> {
  return new Promise((resolve) => {
    const onMessage = (d: Buffer): void => {
      const m = decodeJson(d.toString()) as RpcResponse;
      if (m.id !== id) return;
      ws.off('message', onMessage);
      resolve(m);
    };
    ws.on('message', onMessage);
    ws.send(encodeJson({ id, method, args }));
  });
}

/** The JSON replies among a raw client's frames. */
const replies = (c: RawClient): RpcResponse[] => c.frames.filter((f) => f.opcode === OP.text).map((f) => decodeJson(f.payload.toString()) as RpcResponse);

/** A session whose readMemory and loadConfig wait until released, so requests stay in flight. */
class GatedSession extends FakeSession {
  private waiting: (() => void)[] = [];
  get waitingCount(): number {
    return this.waiting.length;
  }
  release(): void {
    for (const w of this.waiting.splice(0)) w();
  }
  private gate(): Promise<void> {
    return new Promise((r) => this.waiting.push(r));
  }
  override async readMemory(pa: number, len: number) {
    await this.gate();
    return super.readMemory(pa, len);
  }
  override async loadConfig(text: string, file: string) {
    await this.gate();
    return super.loadConfig(text, file);
  }
}

describe('web server: a bad frame drops only its own connection', () => {
  const cases: { what: string; bytes: () => Buffer; code: number; reason: RegExp }[] = [
    // The header alone announces the size; the server refuses before any payload arrives.
    { what: 'a frame over the size limit', bytes: () => frame(OP.text, '', { claimedLength: MAX_MESSAGE_BYTES + 1 }), code: 1009, reason: /larger than 17\.0 MiB/ },
    { what: 'a text frame with invalid UTF-8', bytes: () => frame(OP.text, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), code: 1007, reason: /not valid UTF-8/ },
    { what: 'close code 999', bytes: () => closeFrame(999), code: 1002, reason: /malformed WebSocket frame/ },
    { what: 'an unmasked frame', bytes: () => frame(OP.text, '{}', { mask: false }), code: 1002, reason: /malformed/ },
    { what: 'a reserved bit', bytes: () => frame(OP.text, '{}', { rsv: 4 }), code: 1002, reason: /malformed/ },
    { what: 'an unknown opcode', bytes: () => frame(0x3, 'x'), code: 1002, reason: /malformed/ },
  ];

  for (const c of cases) {
    it(`${c.what}: close ${c.code} with a reason, other clients keep their answers`, async () => {
      const server = await serve();
      const good = await client(server);
      const bad = await rawConnect(server.port);
      bad.send(c.bytes());
      expect(await bad.closed).toEqual({ code: c.code, reason: expect.stringMatching(c.reason) });
      expect(await call(good, 1, 'listPresets', [])).toEqual({ id: 1, ok: true, value: ['sun50i-h6'] });
      // And the server still takes new connections.
      const again = await client(server);
      expect(await call(again, 2, 'listPresets', [])).toMatchObject({ ok: true });
      good.close();
      again.close();
    });
  }

  it('a client that resets during a refused upgrade does not take the server down', async () => {
    const server = await serve();
    const { connect } = await import('node:net');
    for (let i = 0; i < 20; i++) {
      const s = connect(server.port, '127.0.0.1');
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(`GET /api HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nOrigin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      s.resetAndDestroy();
    }
    const good = await client(server);
    expect(await call(good, 1, 'listPresets', [])).toMatchObject({ ok: true });
    good.close();
  });
});

describe('web server: connections', () => {
  it('refuses connections beyond its limit with 503, and takes one again when a client leaves', async () => {
    const server = await serve(new FakeSession(), undefined, 2);
    const a = await client(server);
    const b = await client(server);
    await expect(client(server)).rejects.toThrow(/503/);
    expect(await call(b, 1, 'listPresets', [])).toMatchObject({ ok: true });
    a.close();
    await expect.poll(async () => client(server).then((c) => (c.close(), 'open'), (e: Error) => e.message)).toBe('open');
    b.close();
  });
});

describe('web server: backpressure per connection', () => {
  it('refuses requests beyond the in-flight limit with a clear error, and answers the rest', async () => {
    const session = new GatedSession();
    const server = await serve(session, { maxInFlight: 8 });
    const ws = await client(server);
    const answers = Array.from({ length: 20 }, (_, i) => call(ws, i + 1, 'readMemory', [0, 16, 'ram']));
    const refused = await Promise.all(answers.slice(8));
    for (const r of refused) expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/server busy: 8 requests of this connection are still being answered \(limit 8\)/) });
    session.release();
    for (const r of await Promise.all(answers.slice(0, 8))) expect(r).toMatchObject({ ok: true });
    // Once answered, the connection may send again.
    const later = call(ws, 100, 'readMemory', [0, 4, 'ram']);
    await expect.poll(() => session.waitingCount).toBe(1);
    session.release();
    expect(await later).toMatchObject({ ok: true });
    ws.close();
  });

  it('bounds the bytes of requests in flight', async () => {
    const session = new GatedSession();
    const server = await serve(session, { maxInFlightBytes: 1024 * 1024 });
    const ws = await client(server);
    const text = 'x'.repeat(600 * 1024);
    const first = call(ws, 1, 'loadConfig', [text, 'a.soc.json']);
    await expect.poll(() => session.waitingCount).toBe(1);
    const second = await call(ws, 2, 'loadConfig', [text, 'b.soc.json']);
    expect(second).toMatchObject({ ok: false, error: expect.stringMatching(/requests are still being answered \(limit 1\.0 MiB\)/) });
    session.release();
    expect(await first).toMatchObject({ ok: true });
    ws.close();
  });

  it('refuses replies a client that does not read would pile up, and closes it when it never reads', async () => {
    const session = new FakeSession();
    const limit = 1024 * 1024;
    const server = await serve(session, { maxQueuedBytes: limit });
    const slow = await rawConnect(server.port);
    slow.socket.pause();
    const n = 60;
    for (let i = 1; i <= n; i++) slow.send(frame(OP.text, encodeJson({ id: i, method: 'readMemory', args: [0, 256 * 1024, 'ram'] })));
    // Let the server answer everything it will while the client reads nothing.
    const good = await client(server);
    for (let i = 0; i < 5; i++) expect(await call(good, 1000 + i, 'listPresets', [])).toMatchObject({ ok: true });
    await new Promise((r) => setTimeout(r, 200));
    slow.socket.resume();
    await expect.poll(() => replies(slow).length, { timeout: 20_000 }).toBe(n);
    const all = replies(slow);
    const ok = all.filter((r) => r.ok);
    const refused = all.filter((r) => !r.ok);
    expect(ok.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/(queued for this connection and not yet read|server busy)/) });

    // Events cannot be refused: a client that lets twice the limit pile up is closed, with a reason.
    good.close();
    slow.socket.destroy();
    const stuck = await rawConnect(server.port);
    stuck.socket.pause();
    const text = 'y'.repeat(256 * 1024);
    for (let i = 0; i < 200 && stuck.socket.readyState === 'open'; i++) {
      session.emit({ type: 'output', runId: 1, stream: 'log', text });
      await new Promise((r) => setImmediate(r));
    }
    stuck.socket.resume();
    expect(await stuck.closed).toEqual({ code: 1008, reason: 'the client does not read its replies' });
    const after = await client(server);
    expect(await call(after, 2000, 'listPresets', [])).toMatchObject({ ok: true });
    after.close();
  });
});
