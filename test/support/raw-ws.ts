/**
 * A WebSocket client that writes frames byte by byte, for tests that must send what a
 * well-behaved client library refuses to: oversize, invalid UTF-8, bad close codes, unmasked or
 * reserved-bit frames, fragments, raw garbage.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface FrameOptions {
  fin?: boolean;
  /** Clients must mask; false sends an unmasked frame (a protocol error). */
  mask?: boolean;
  /** RSV1-3 bits (no extension is negotiated, so any set bit is a protocol error). */
  rsv?: number;
  /** Claim this payload length in the header instead of the real one. */
  claimedLength?: number;
}

/** One frame as a client sends it. */
export function frame(opcode: number, payload: Uint8Array | string, o: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const len = o.claimedLength ?? data.length;
  const mask = o.mask ?? true;
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | (((o.rsv ?? 0) & 7) << 4) | (opcode & 0xf)];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 0x10000) head.push(m | 126, len >> 8, len & 0xff);
  else {
    head.push(m | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(len));
    head.push(...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame with a code and an optional reason. */
export function closeFrame(code: number, reason: Uint8Array | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : Buffer.from(reason);
  const body = Buffer.alloc(2 + r.length);
  body.writeUInt16BE(code & 0xffff);
  r.copy(body, 2);
  return frame(OP.close, body);
}

export interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

export interface RawClient {
  socket: Socket;
  /** Every frame the server sent so far (the parser runs as data arrives). */
  frames: ServerFrame[];
  /** The server's close frame, once it sent one. */
  closed: Promise<{ code: number; reason: string } | null>;
  /** The socket has ended (either side). */
  ended: Promise<void>;
  send(bytes: Uint8Array): void;
}

/** Open /api with a valid handshake from the server's own origin; resolves after the 101. */
export function rawConnect(port: number, opts: { origin?: string } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const host = `127.0.0.1:${port}`;
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const frames: ServerFrame[] = [];
    let closeResolve!: (v: { code: number; reason: string } | null) => void;
    const closed = new Promise<{ code: number; reason: string } | null>((r) => (closeResolve = r));
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('close', () => closeResolve(null));
    socket.on('error', (e) => {
      if (!upgraded) reject(e);
    });
    // Chunks are joined only once a whole frame is there: a large reply arrives in many chunks.
    const chunks: Buffer[] = [];
    let buffered = 0;
    let need = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      buffered += chunk.length;
      if (buffered < need) return;
      buf = Buffer.concat([buf, ...chunks.splice(0)]);
      buffered = 0;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          return reject(new Error(head.split('\r\n')[0]));
        }
        upgraded = true;
        resolve({ socket, frames, closed, ended, send: (b) => void socket.write(b) });
      }
      for (;;) {
        const f = parseFrame(buf);
        if (typeof f === 'number') {
          need = f - buf.length;
          break;
        }
        need = 0;
        buf = buf.subarray(f.size);
        frames.push({ opcode: f.opcode, payload: f.payload });
        if (f.opcode === OP.close) {
          closeResolve(f.payload.length >= 2 ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') } : { code: 1005, reason: '' });
        }
      }
    });
    socket.once('connect', () => {
      socket.write(
        [
          'GET /api HTTP/1.1',
          `Host: ${host}`,
          `Origin: ${opts.origin ?? `http://${host}`}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      );
    });
  });
}

/** An unmasked server frame at the start of buf, or the bytes needed when it is not complete yet. */
function parseFrame(buf: Buffer): { opcode: number; payload: Buffer; size: number } | number {
  if (buf.length < 2) return 2;
  const opcode = buf[0]! & 0xf;
  let len = buf[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return 4;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return 10;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  if (buf.length < off + len) return off + len;
  return { opcode, payload: buf.subarray(off, off + len), size: off + len };
}
