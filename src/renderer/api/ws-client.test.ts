/** The WebSocket transport's failure messages, against a scripted stand-in for the browser's WebSocket. */
import { beforeAll, describe, expect, it } from 'vitest';
import { createWsClient } from './ws-client';

class ScriptedSocket {
  static last: ScriptedSocket | null = null;
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  sent: string[] = [];
  constructor(readonly url: string) {
    ScriptedSocket.last = this;
  }
  send(text: string): void {
    this.sent.push(text);
  }
}

// Left in place after the tests: a closed client keeps reconnecting on a timer (vitest isolates files).
beforeAll(() => {
  Object.assign(globalThis, { WebSocket: ScriptedSocket });
});

describe('ws-client', () => {
  it('a call in flight when the server closes the connection fails with the reason the server gave', async () => {
    const api = createWsClient('ws://127.0.0.1:1/api', () => undefined);
    const ws = ScriptedSocket.last!;
    ws.onopen!();
    const call = api.runScript({ source: 'x', fileName: 'a.ts' });
    await Promise.resolve();
    expect(ws.sent).toHaveLength(1);
    ws.onclose!({ code: 1009, reason: 'message larger than 17.0 MiB' });
    await expect(call).rejects.toThrow('the session host closed the connection: message larger than 17.0 MiB');
  });

  it('refuses a request larger than the server accepts before sending it (JSON escaping counted)', async () => {
    const api = createWsClient('ws://127.0.0.1:1/api', () => undefined);
    const ws = ScriptedSocket.last!;
    ws.onopen!();
    // 9 MiB of quotes: each is escaped, so the message is 18 MiB.
    await expect(api.loadConfig('"'.repeat(9 * 1024 * 1024), 'big.soc.json')).rejects.toThrow('loadConfig: the request is 18.0 MiB, more than the 17 MiB the session host accepts');
    expect(ws.sent).toEqual([]);
    void api.loadConfig('{}', 'small.soc.json');
    await expect.poll(() => ws.sent.length).toBe(1);
  });

  it('without a reason it says the connection was lost', async () => {
    const api = createWsClient('ws://127.0.0.1:1/api', () => undefined);
    const ws = ScriptedSocket.last!;
    ws.onopen!();
    const call = api.listPresets();
    await Promise.resolve();
    ws.onclose!({ code: 1006, reason: '' });
    await expect(call).rejects.toThrow('connection to the session host was lost');
  });
});
