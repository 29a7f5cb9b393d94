/**
 * `npm run serve` as a user runs it: a separate process with the real session host. Bad frames
 * must close their own connection and leave the process serving (before, each one ended it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeJson, encodeJson, type RpcResponse } from '../../src/shared/session-api';
import { closeFrame, frame, OP, rawConnect } from '../support/raw-ws';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

let child: ChildProcess;
let port = 0;
let exited: { code: number | null; signal: string | null } | null = null;

beforeAll(async () => {
  child = spawn(TSX, [join(ROOT, 'src/main/web/serve.ts'), '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('exit', (code, signal) => (exited = { code, signal }));
  let out = '';
  port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /web mode\): http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', () => reject(new Error(`serve exited before listening:\n${out}`)));
  });
}, 60_000);

afterAll(() => {
  child.kill('SIGTERM');
});

function listPresets(): Promise<RpcResponse> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api`, { origin: `http://127.0.0.1:${port}` });
    ws.once('error', reject);
    ws.once('open', () => ws.send(encodeJson({ id: 1, method: 'listPresets', args: [] })));
    ws.once('message', (d: Buffer) => {
      resolve(decodeJson(d.toString()) as RpcResponse);
      ws.close();
    });
  });
}

describe('npm run serve survives bad frames', () => {
  it('a frame over 17 MiB, invalid UTF-8 and close code 999 each close one connection; the server goes on', async () => {
    const bad = [
      { bytes: frame(OP.text, '', { claimedLength: 17 * 1024 * 1024 + 1 }), code: 1009 },
      { bytes: frame(OP.text, new Uint8Array([0xc3, 0x28])), code: 1007 },
      { bytes: closeFrame(999), code: 1002 },
    ];
    for (const b of bad) {
      const c = await rawConnect(port);
      c.send(b.bytes);
      const closed = await c.closed;
      expect(closed?.code).toBe(b.code);
      expect(closed?.reason.length).toBeGreaterThan(0);
      await c.ended;
      const answer = await listPresets();
      expect(answer).toMatchObject({ id: 1, ok: true, value: expect.arrayContaining(['sun50i-h6']) });
    }
    expect(exited).toBeNull();
  });
});
